"""Installing the local CA for the current user, the way mkcert does on Linux: certutil (libnss3-tools)
into Chromium/Chrome's NSS database ~/.pki/nssdb and every Firefox profile. macOS and Windows:
printed steps."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from .tls import CA_NAME

FIREFOX_ROOTS = (".mozilla/firefox", "snap/firefox/common/.mozilla/firefox", ".var/app/org.mozilla.firefox/.mozilla/firefox")


def nss_databases(home: Path) -> list[Path]:
    """Chromium's database (created by `trust` if missing) and existing Firefox profiles' databases."""
    dbs = [home / ".pki" / "nssdb"]
    for root in FIREFOX_ROOTS:
        dbs += sorted(p.parent for p in (home / root).glob("*/cert9.db"))
    return dbs


def _certutil(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["certutil", *args], capture_output=True, text=True, timeout=30)


def _remove_all(db: Path) -> int:
    n = 0
    while n < 20 and _certutil("-D", "-d", f"sql:{db}", "-n", CA_NAME).returncode == 0:
        n += 1
    return n


def manual_steps(ca: Path) -> str:
    return (
        "Other systems (run as the user who uses the browser):\n"
        f"  macOS:   security add-trusted-cert -r trustRoot -k ~/Library/Keychains/login.keychain-db \"{ca}\"\n"
        f"  Windows: certutil -user -addstore Root \"{ca}\"   (answer Yes to the prompt)\n"
        "  Firefox on macOS/Windows: Settings > Privacy & Security > Certificates > View Certificates >\n"
        f"           Authorities > Import... > {ca} > tick \"Trust this CA to identify websites\"\n"
        "The CA is name-constrained to localhost, 127.0.0.0/8 and ::1: it cannot vouch for any other site."
    )


def trust(ca: Path, home: Path) -> tuple[list[str], bool]:
    """Install ca into every NSS database; returns (report lines, all succeeded)."""
    if shutil.which("certutil") is None:
        return (["certutil not found: install libnss3-tools (Debian/Ubuntu) or nss-tools (Fedora), then run again.",
                 manual_steps(ca)], False)
    lines, ok = [], True
    for db in nss_databases(home):
        if not (db / "cert9.db").exists():
            db.mkdir(parents=True, exist_ok=True, mode=0o700)
            r = _certutil("-N", "-d", f"sql:{db}", "--empty-password")
            if r.returncode != 0:
                lines.append(f"could not create {db}: {r.stderr.strip()}")
                ok = False
                continue
        _remove_all(db)  # a CA from an earlier --rotate-cert goes first
        r = _certutil("-A", "-d", f"sql:{db}", "-t", "C,,", "-n", CA_NAME, "-i", str(ca))
        if r.returncode == 0:
            lines.append(f"trusted in {db}")
        else:
            ok = False
            lines.append(f"failed for {db}: {r.stderr.strip()}")
    lines.append("Restart the browser for it to take effect.")
    lines.append(manual_steps(ca))
    return lines, ok


def untrust(home: Path) -> list[str]:
    if shutil.which("certutil") is None:
        return ["certutil not found: nothing removed."]
    lines = []
    for db in nss_databases(home):
        if (db / "cert9.db").exists():
            n = _remove_all(db)
            lines.append(f"removed from {db}" if n else f"not present in {db}")
    return lines or ["no NSS databases found"]
