"""`python -m server`: the local HTTPS inference server. Subcommands: trust, untrust, rotate-token,
update-fetcher, scan (batch checks on Ray: server/scan.py, its own options), feedback (personal
calibration and export of your answers: server/feedback.py, its own options)."""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from .config import VERSION, Config
from .fetch import parse_browser_spec


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    d = Config()  # the defaults are Config's: named once, there
    p = argparse.ArgumentParser(prog="python -m server", description="Deepfake Check's local inference server.")
    p.add_argument("command", nargs="?", default="serve",
                   choices=["serve", "trust", "untrust", "rotate-token", "update-fetcher"],
                   help="serve (default); trust / untrust the local CA in this user's browsers; rotate-token; "
                        "update-fetcher: update yt-dlp and its JavaScript challenge solver in place, then check them; "
                        "scan INPUT... --out FILE: check many files or URLs on Ray (`scan --help`); "
                        "feedback calibrate|export: your answers (`feedback --help`)")
    p.add_argument("--version", action="store_true",
                   help="print the server's and the fetcher's versions (yt-dlp, yt-dlp-ejs, deno) and exit")
    p.add_argument("--dry-run", action="store_true",
                   help="update-fetcher: say what would be installed and check the fetcher as it is; change nothing")
    p.add_argument("--allow-index", action="store_true",
                   help="update-fetcher: take the files from whatever index pip is configured with (another index, "
                        "a folder of wheels), not only from PyPI")
    p.add_argument("--port", type=int, default=d.port, help="port on 127.0.0.1 (default %(default)s)")
    p.add_argument("--host-only", default=d.host, choices=["127.0.0.1", "::1"],
                   help="loopback address to listen on (default %(default)s)")
    p.add_argument("--weights", default=d.weights,
                   help="model checkpoint file or registered name (default: the shipped model)")
    p.add_argument("--device", default=d.device, help="torch device, e.g. cpu or cuda (default: cuda when available)")
    p.add_argument("--frames", type=int, default=d.frames,
                   help="frames per check when a request does not say (default %(default)s)")
    p.add_argument("--allow-private-fetch", action="store_true", default=d.allow_private_fetch,
                   help="allow fetching URLs on loopback/private networks (off: a web page cannot aim the server at your router)")
    p.add_argument("--allow-origin", action="append", default=list(d.allow_origins), metavar="ORIGIN",
                   help="an extra allowed CORS origin besides chrome-extension:// and moz-extension:// (repeatable)")
    p.add_argument("--config-dir", type=Path, default=d.config_dir, help="token and TLS files (default %(default)s)")
    p.add_argument("--data-dir", type=Path, default=d.data_dir, help="cache and temporary media (default %(default)s)")
    p.add_argument("--temp-dir", type=Path, default=None,
                   help="where a decrypted file lives during its check (default: a new folder in RAM for each run, "
                        "/dev/shm/deepfake-check-<random>)")
    p.add_argument("--rotate-cert", action="store_true", help="make a new CA and certificate (run `trust` again after)")
    p.add_argument("--max-upload-mb", type=int, default=d.max_upload_mb,
                   help="upload and download size limit (default %(default)s)")
    p.add_argument("--deadline", type=float, default=d.deadline_s,
                   help="seconds a check may take, download included (default %(default)s)")
    p.add_argument("--max-duration", type=float, default=d.max_duration_s,
                   help="longest video fetched, seconds (default %(default)s)")
    p.add_argument("--max-downloads", type=int, default=d.max_downloads,
                   help="downloads running at once (default %(default)s)")
    p.add_argument("--queue-size", type=int, default=d.queue_size,
                   help="unfinished checks before 503 busy (default %(default)s)")
    p.add_argument("--rate-limit", type=int, default=d.rate_limit_per_min, metavar="PER_MIN",
                   help="requests a minute per token before 429 rate_limited (default %(default)s)")
    p.add_argument("--auth-failures", type=int, default=d.auth_failures_per_min, metavar="PER_MIN",
                   help="wrong tokens a minute per client before 429 rate_limited for its requests with a token "
                        "(default %(default)s)")
    p.add_argument("--worker-memory-mb", type=int, default=d.worker_memory_mb,
                   help="memory the model worker may use; a check that needs more fails as too large (default %(default)s, 0: no cap)")
    p.add_argument("--backend", choices=["local", "ray"], default=d.backend,
                   help="where checks run: local (one worker process, the default) or ray (a Ray Serve deployment: "
                        "an embedded Ray on this machine, or a cluster with --ray-address)")
    p.add_argument("--ray-address", default=d.ray_address,
                   help="--backend ray: the cluster (auto, or ray://HOST:10001); default: an embedded local Ray")
    p.add_argument("--replicas", type=int, default=d.replicas,
                   help="--backend ray: model replicas, each loads the model once (default %(default)s)")
    p.add_argument("--gpus-per-replica", type=float, default=d.gpus_per_replica,
                   help="--backend ray: GPUs per replica (default %(default)s: CPU)")
    p.add_argument("--cookies-from-browser", type=_browser_spec, default=d.cookies_from_browser,
                   metavar="BROWSER[+KEYRING][:PROFILE]",
                   help="fetch posts behind a login with your browser's cookies, for the sites you turn on in the "
                        "extension's options: only that site's cookies are read into memory for its check, and sent "
                        "only to that site (off by default; see docs/server.md). BROWSER: "
                        "brave, chrome, chromium, edge, firefox, opera, safari, vivaldi, whale")
    p.add_argument("--c2pa-trust-anchors", type=Path, default=d.c2pa_trust_anchors, metavar="FILE.pem",
                   help="CA certificates whose Content Credentials (C2PA) signers count as trusted, e.g. the "
                        "C2PA trust list (default: none; intact credentials then say 'not verified against a trust list')")
    p.add_argument("--fetcher-max-age", type=int, default=d.fetcher_max_age_days, metavar="DAYS",
                   help="call the fetcher stale (the popup says so) when its yt-dlp is older than this (default %(default)s)")
    p.add_argument("--log-urls", action="store_true", default=d.log_urls, help="log the URLs checked (off by default)")
    p.add_argument("-v", "--verbose", action="store_true")
    return p.parse_args(argv)


def _browser_spec(text: str) -> str:
    try:
        parse_browser_spec(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix("--cookies-from-browser: ")) from None
    return text


def config_from(a: argparse.Namespace) -> Config:
    return Config(
        port=a.port, host=a.host_only, weights=a.weights, device=a.device, frames=a.frames,
        allow_private_fetch=a.allow_private_fetch, allow_origins=tuple(a.allow_origin),
        config_dir=a.config_dir, data_dir=a.data_dir, plain_dir=a.temp_dir, max_upload_mb=a.max_upload_mb, log_urls=a.log_urls,
        deadline_s=a.deadline, max_duration_s=a.max_duration, queue_size=a.queue_size, rate_limit_per_min=a.rate_limit,
        auth_failures_per_min=a.auth_failures,
        max_downloads=a.max_downloads, worker_memory_mb=a.worker_memory_mb,
        fetcher_max_age_days=a.fetcher_max_age, cookies_from_browser=a.cookies_from_browser,
        c2pa_trust_anchors=a.c2pa_trust_anchors,
        backend=a.backend, ray_address=a.ray_address, replicas=max(1, a.replicas), gpus_per_replica=a.gpus_per_replica,
    )


def serve(config: Config, rotate_cert: bool) -> int:
    import asyncio

    from aiohttp import web

    from .app import create_app
    from .fetch import self_check
    from .keys import FETCHER, PAIRING, WORKER
    from .private import NotOwnDir
    from .tls import ensure_certs
    from .worker import ModelUnavailable

    certs, ca_new = ensure_certs(config.tls_dir, rotate=rotate_cert)
    app = create_app(config)
    host = "[::1]" if config.host == "::1" else config.host
    base = f"https://{host}:{config.port}"

    app[FETCHER].seed(asyncio.run(self_check()))  # before the banner, which says how the fetcher is
    def banner(_msg: str) -> None:
        info, code = app[WORKER].info, app[PAIRING].code
        print(
            f"Deepfake Check server {base}\n"
            f"  model:        {info.get('name')} ({info.get('backbone')}, {info.get('mode')}) on {info.get('device')}"
            + (f", {config.replicas} Ray Serve replica(s)" if config.backend == "ray" else "") + "\n"
            f"  fetcher:      {fetcher_line(app[FETCHER].describe(app[FETCHER].report))}\n"
            + (f"  cookies:      from {parse_browser_spec(config.cookies_from_browser)[0]}, for the sites turned on in "
               "the extension's options\n" if config.cookies_from_browser else "") +
            (f"  C2PA trust:   {config.c2pa_trust_anchors}\n" if config.c2pa_trust_anchors else "") +
            f"  TLS SPKI:     {certs.spki_sha256()}   (sha256, base64, for --ignore-certificate-errors-spki-list)\n"
            f"  local CA:     {certs.ca_cert}" + (f"   NEW: in another terminal (keep this one running), run `{this_python()} -m server trust` once"
                                           if ca_new else "") + "\n"
            f"  pairing code: {code}   (valid 10 minutes, one use)\n"
            f"  pairing link: {base}/pair#code={code}\n"
            f"Press Ctrl-C to stop.",
            flush=True,
        )

    try:
        web.run_app(app, host=config.host, port=config.port, ssl_context=certs.ssl_context(),
                    print=banner, access_log=None, handle_signals=True, shutdown_timeout=10)
    except (ModelUnavailable, ValueError, NotOwnDir) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"error: cannot listen on {config.host}:{config.port} ({e.strerror or e}). "
              "Is the server already running? Use --port to pick another.", file=sys.stderr)
        return 1
    return 0


def this_python() -> str:
    """How to run this server's Python from where it was started: `.venv/bin/python` from the
    repository (what `make serve` runs and the README says), else `python`."""
    rel = os.path.relpath(sys.executable)
    return rel if not rel.startswith("..") and not os.path.isabs(rel) else "python"


def fetcher_line(f: dict | None) -> str:
    """The fetcher as the banner and --version describe it (f: FetcherMonitor.describe())."""
    if f is None:
        return "checking… (see /v1/health)"
    age = f" ({f['age_days']} days old)" if f["age_days"] is not None else ""
    line = f"yt-dlp {f['yt_dlp']}{age}, yt-dlp-ejs {f['ejs'] or '-'}, deno {f['deno'] or '-'}"
    if f["challenge_solver"] and not f["problems"]:
        line += "; YouTube's JavaScript challenges: OK"
    else:
        line += "\n  WARNING:      YouTube downloads may fail: " + "; ".join(f["problems"] or ["the challenge solver failed"])
    if f["stale"]:
        line += f"\n  WARNING:      site downloads may fail: the fetcher is {f['age_days']} days old. Update it: {f['update_command']}"
    return line


def version(config: Config) -> int:
    import asyncio

    from .fetch import FetcherMonitor, self_check

    report = asyncio.run(self_check())
    monitor = FetcherMonitor(config.fetcher_max_age_days, config.cookies_from_browser)
    print(f"Deepfake Check server {VERSION}\n  fetcher:      {fetcher_line(monitor.describe(report))}")
    return 0 if report.ok else 1


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["scan"]:
        from .scan import main as scan_main

        logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        return scan_main(args[1:])
    if args[:1] == ["feedback"]:
        from .feedback import main as feedback_main

        return feedback_main(args[1:])
    a = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if a.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = config_from(a)
    if a.version:
        return version(config)
    if a.command == "update-fetcher":
        from .update import update_fetcher

        return update_fetcher(dry_run=a.dry_run, allow_index=a.allow_index)
    if a.command == "serve":
        return serve(config, a.rotate_cert)
    if a.command == "rotate-token":
        from .auth import PairedOrigin, TokenStore

        TokenStore(config.token_path).rotate()
        PairedOrigin(config.paired_origin_path).clear()  # a new token is a new pairing, by any extension
        print("New token written; the old one stops working now (a running server picks it up at once).\n"
              "Restart the server for a pairing code and pair the extension again.")
        return 0
    from . import trust as trust_mod
    from .tls import ensure_certs

    certs, _ = ensure_certs(config.tls_dir)
    if a.command == "trust":
        lines, ok = trust_mod.trust(certs.ca_cert, Path.home())
        print("\n".join(lines))
        return 0 if ok else 1
    print("\n".join(trust_mod.untrust(Path.home())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
