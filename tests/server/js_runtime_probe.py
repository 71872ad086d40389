"""Starts programs from a process set up as the fetch child sets itself up (server/fetch.py main():
its audit hook, the JS runtime's environment, yt-dlp's options) and prints what happened as one JSON
line. For test_fetcher.py, which needs to hand that process a script or a command line, and to watch
it for network use, where `python -m server.fetch` takes only a FetchJob or a SelfCheck.

    python tests/server/js_runtime_probe.py js        JavaScript on stdin, run by yt-dlp's Deno provider
    python tests/server/js_runtime_probe.py popen     a JSON argv on stdin, started with subprocess.run
    python tests/server/js_runtime_probe.py self-check-without-ejs   the self-check, yt-dlp-ejs hidden
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

NETWORK_EVENTS = ("socket.connect", "socket.getaddrinfo", "urllib.Request", "http.client.connect")


def main() -> None:
    mode = sys.argv[1]
    if mode == "self-check-without-ejs":
        sys.modules["yt_dlp_ejs"] = None  # import yt_dlp_ejs now raises ImportError, as if not installed
    from server.fetch import _Log, _programs_guard, _sandbox_env, _self_check, _ydl_options, deno_binary

    runtime = deno_binary()
    sys.addaudithook(_programs_guard(runtime))
    network: list[str] = []
    sys.addaudithook(lambda event, args: network.append(event) if event in NETWORK_EVENTS else None)
    out: dict = {"runtime": runtime}
    if mode == "self-check-without-ejs":
        report = _self_check(runtime)
        out.update(challenge_solver=report.challenge_solver, problems=report.problems)
    elif mode == "popen":
        argv = json.loads(sys.stdin.read())
        try:
            r = subprocess.run(argv, input="console.log('ran')", capture_output=True, text=True, timeout=60)
            out.update(started=True, stdout=r.stdout, stderr=r.stderr[-500:])
        except OSError as e:
            out.update(started=False, error=str(e))
    elif mode == "js":
        import yt_dlp

        script = sys.stdin.read()
        with tempfile.TemporaryDirectory() as tmp:
            _sandbox_env(tmp)
            with yt_dlp.YoutubeDL(_ydl_options(runtime, _Log())) as ydl:
                ie = ydl.get_info_extractor("Youtube")
                ie.initialize()
                provider = next(p for p in ie._jsc_director.providers.values() if p.PROVIDER_NAME == "deno")
                try:
                    out.update(stdout=provider._run_js_runtime(script))  # yt-dlp's own command line for Deno
                except Exception as e:
                    out.update(error=f"{type(e).__name__}: {e}")
    out["network"] = sorted(set(network))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
