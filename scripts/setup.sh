#!/usr/bin/env bash
# Sets up everything the project needs on a fresh machine, idempotently:
#   system packages (Debian: chromium and firefox-esr for the browser tests, libnss3-tools for
#   `server trust` and the Firefox tests' certificate databases),
#   the Python virtual environment .venv/ from requirements.txt and requirements-fetcher.txt
#   (+ requirements-dev.txt with --dev),
#   the npm tools for package.sh and lint (web-ext, eslint).
# The venv lives in a cache directory keyed by the requirements' hash and .venv is a symlink
# to it, so a fresh clone (CI) reuses an identical environment instead of reinstalling ~6 GB.
# Usage: scripts/setup.sh [--dev] [--with-browser]
#   --dev: also the tools for tests, training and lint (requirements-dev.txt), into the same venv
set -euo pipefail
cd "$(dirname "$0")/.."

with_browser=0 dev=0
for arg in "$@"; do
  case "$arg" in
    --with-browser) with_browser=1 ;;
    --dev) dev=1 ;;
    *) echo "usage: scripts/setup.sh [--dev] [--with-browser]" >&2; exit 2 ;;
  esac
done

log() { printf '[setup] %s\n' "$*" >&2; }

# --- system packages ---------------------------------------------------------------------
apt_pkgs=(libnss3-tools zip)
[ "$with_browser" = 1 ] && apt_pkgs+=(chromium firefox-esr)
missing=()
for p in "${apt_pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing system packages: ${missing[*]}"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    log "please install these system packages: ${missing[*]} (e.g. sudo apt-get install ${missing[*]})"
  fi
fi

# --- Python virtual environment ------------------------------------------------------------
PY=${PYTHON:-python3}
hash=$(cat requirements.txt requirements-nodeps.txt | sha256sum | cut -c1-16)
cache=${DEEPFAKE_CHECK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/deepfake-check}
venv="$cache/venv-$hash"
if [ ! -f "$venv/.complete" ]; then
  log "creating Python environment in $venv (first run: a few minutes)"
  rm -rf "$venv"
  mkdir -p "$cache"
  "$PY" -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip wheel
  "$venv/bin/pip" install -q -r requirements.txt
  "$venv/bin/pip" install -q --no-deps -r requirements-nodeps.txt
  "$venv/bin/python" -c "import torch, torchvision, face_recognition, av, cv2, aiohttp" \
    || { log "environment check failed"; exit 1; }
  touch "$venv/.complete"
fi
# the fetcher goes on top, once per version of requirements-fetcher.txt: `make update-fetcher` may
# move it past these pins later (sites change weekly), and nothing here moves it back until the
# project's own pins change
fetchhash=$(sha256sum requirements-fetcher.txt | cut -c1-16)
if [ ! -f "$venv/.fetcher-$fetchhash" ]; then
  log "installing the fetcher (yt-dlp, its JavaScript challenge solver and runtime)"
  "$venv/bin/pip" install -q -r requirements-fetcher.txt
  "$venv/bin/python" -c "import yt_dlp, yt_dlp_ejs, deno" || { log "fetcher check failed"; exit 1; }
  rm -f "$venv"/.fetcher-*
  touch "$venv/.fetcher-$fetchhash"
fi
# the development tools go into the same environment (one torch install, not two), once per
# version of requirements-dev.txt
if [ "$dev" = 1 ]; then
  devhash=$(sha256sum requirements-dev.txt | cut -c1-16)
  if [ ! -f "$venv/.dev-$devhash" ]; then
    log "installing test, training and lint tools"
    "$venv/bin/pip" install -q --no-warn-conflicts -r requirements.txt -r requirements-dev.txt
    rm -f "$venv"/.dev-*
    touch "$venv/.dev-$devhash"
  fi
fi
if [ "$(readlink .venv 2>/dev/null)" != "$venv" ]; then
  rm -rf .venv
  ln -s "$venv" .venv
fi

# --- npm tools (web-ext for package.sh, eslint/tsc for lint, puppeteer-core for the Firefox tests) --
if [ -f package.json ] && command -v npm >/dev/null; then
  lockhash=$(cat package.json package-lock.json 2>/dev/null | sha256sum | cut -c1-16)
  if [ "$(cat node_modules/.lockhash 2>/dev/null)" != "$lockhash" ]; then
    log "installing npm tools"
    npm ci --no-audit --no-fund --loglevel=error >/dev/null
    echo "$lockhash" > node_modules/.lockhash
  fi
fi
log "ready"
