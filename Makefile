# The two commands: `make serve` (set up, then run the server with the default model)
# and `make test` (set up, then run the whole test suite). `make update-fetcher` updates yt-dlp
# and its JavaScript challenge solver alone, in place, then checks them (sites change weekly).
PY := .venv/bin/python

.PHONY: serve test lint setup bench package clean update-fetcher
serve:
	@scripts/setup.sh
	$(PY) -m server

test:
	@scripts/setup.sh --dev --with-browser
	@$(MAKE) --no-print-directory lint
	$(PY) -m pytest

lint:
	$(PY) -m ruff check .
	npx --no-install eslint extension tests/extension eslint.config.js
	npx --no-install tsc -p extension/jsconfig.json

setup:
	@scripts/setup.sh --dev --with-browser

update-fetcher:
	@scripts/setup.sh
	$(PY) -m server update-fetcher

bench:
	@scripts/setup.sh --dev
	$(PY) -m bench.pipeline

package:
	./package.sh

clean:
	rm -rf dist .pytest_cache
