#!/usr/bin/env bash
# Builds the browser extension packages from the one source tree in extension/:
#   dist/deepfake-check-chrome-<version>.zip   (manifest as is: MV3 service worker)
#   dist/deepfake-check-firefox-<version>.zip  (background.scripts, browser_specific_settings.gecko, menus)
# and fails if `web-ext lint` reports errors for the Firefox package.
# Usage: ./package.sh        (needs node and npm; installs the npm tools with `npm ci` when they are missing)
set -euo pipefail
cd "$(dirname "$0")"

GECKO_ID=${GECKO_ID:-deepfake-check@deepfake-check.local}
out=dist
build=$out/build
rm -rf "$build"
mkdir -p "$build/chrome" "$build/firefox"

# The npm tools (web-ext) come from package-lock.json: installed here when missing (make serve does it too).
if [ ! -x node_modules/.bin/web-ext ]; then
  command -v npm >/dev/null || { echo "package.sh: needs node and npm (apt-get install nodejs npm), then run it again" >&2; exit 1; }
  echo "package.sh: installing the npm tools first (npm ci)" >&2
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
fi

# The same files for both browsers.
for b in chrome firefox; do
  cp -R extension/. "$build/$b/"
  find "$build/$b" -type f \( -name '.*' -o -name '*.md' \) -delete
done

# Per-browser manifests, derived from extension/manifest.json.
node - "$build" "$GECKO_ID" <<'JS'
const fs = require("fs");
const [build, geckoId] = process.argv.slice(2);
const base = JSON.parse(fs.readFileSync("extension/manifest.json", "utf8"));

const chrome = structuredClone(base);
fs.writeFileSync(`${build}/chrome/manifest.json`, JSON.stringify(chrome, null, 2) + "\n");

const ff = structuredClone(base);
// Firefox runs the background as an event page from the same module; Chrome's key stays for lint's sake.
ff.background = { scripts: [base.background.service_worker], type: "module" };
ff.permissions = ff.permissions.map((p) => (p === "contextMenus" ? "menus" : p));
delete ff.minimum_chrome_version;
ff.browser_specific_settings = {
  gecko: {
    id: geckoId,
    strict_min_version: "140.0",
    // Nothing is collected or sent to the developer: checks go only to the user's own server.
    data_collection_permissions: { required: ["none"] },
  },
  gecko_android: { strict_min_version: "142.0" },
};
fs.writeFileSync(`${build}/firefox/manifest.json`, JSON.stringify(ff, null, 2) + "\n");
JS

version=$(node -p 'require("./extension/manifest.json").version')
rm -f "$out"/deepfake-check-*.zip
for b in chrome firefox; do
  (cd "$build/$b" && zip -qrX "../../deepfake-check-$b-$version.zip" .)
done

echo "package.sh: web-ext lint (Firefox package)" >&2
node_modules/.bin/web-ext lint --source-dir "$build/firefox" --output json --no-config-discovery > "$out/lint-firefox.json" || true
node - "$out/lint-firefox.json" <<'JS'
const fs = require("fs");
const report = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const { errors = [], warnings = [], notices = [] } = report;
for (const m of [...errors, ...warnings]) console.error(`  ${errors.includes(m) ? "ERROR" : "warning"} ${m.code}: ${m.message} ${m.file ?? ""}`);
console.error(`package.sh: web-ext lint: ${errors.length} errors, ${warnings.length} warnings, ${notices.length} notices`);
process.exit(errors.length ? 1 : 0);
JS
ls -1 "$out"/deepfake-check-*.zip
