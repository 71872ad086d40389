# The two commands: `make serve` (set up, then run the server with the default model)
# and `make test` (set up, then run the whole test suite).
PY := .venv/bin/python

.PHONY: serve test setup bench package clean
serve:
	@scripts/setup.sh
	$(PY) -m server

test:
	@scripts/setup.sh --with-browser
	$(PY) -m pytest

setup:
	@scripts/setup.sh --with-browser

bench:
	@scripts/setup.sh
	$(PY) -m model.bench

package:
	./package.sh

clean:
	rm -rf dist .pytest_cache
