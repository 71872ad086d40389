"""`python -m server`'s command line: its defaults are Config's, so the two cannot drift apart."""
from __future__ import annotations

from server.__main__ import config_from, parse_args
from server.config import Config


def test_command_line_without_options_gives_configs_defaults():
    assert config_from(parse_args([])) == Config()


def test_command_line_options_reach_the_config(tmp_path):
    a = parse_args(["--port", "9000", "--frames", "40", "--allow-origin", "https://a.example", "--allow-origin",
                    "https://b.example", "--data-dir", str(tmp_path), "--max-upload-mb", "5", "--queue-size", "3"])
    c = config_from(a)
    assert (c.port, c.frames, c.allow_origins, c.data_dir, c.max_upload_mb, c.queue_size) == (
        9000, 40, ("https://a.example", "https://b.example"), tmp_path, 5, 3)


def test_a_temp_dir_that_is_a_symlink_stops_the_server_with_a_clear_message(tmp_path):
    import subprocess
    import sys

    from testenv import ROOT

    (tmp_path / "target").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "target")
    r = subprocess.run([sys.executable, "-m", "server", "--port", "0", "--config-dir", str(tmp_path / "cfg"),
                        "--data-dir", str(tmp_path / "data"), "--temp-dir", str(tmp_path / "link")],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "not a directory (a symlink or a file?)" in r.stderr, r.stderr[-500:]


def test_fetcher_options_reach_the_config():
    c = config_from(parse_args(["--cookies-from-browser", "firefox", "--fetcher-max-age", "30"]))
    assert (c.cookies_from_browser, c.fetcher_max_age_days) == ("firefox", 30)


def test_an_unknown_browser_for_cookies_is_refused_with_the_choices(capsys):
    import pytest

    with pytest.raises(SystemExit):
        parse_args(["--cookies-from-browser", "netscape"])
    assert "unknown browser 'netscape'; use one of brave, chrome, chromium" in capsys.readouterr().err


def test_version_reports_the_fetchers_versions_and_its_javascript_runtime():
    import subprocess
    import sys
    from importlib.metadata import version

    from testenv import ROOT

    r = subprocess.run([sys.executable, "-m", "server", "--version"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr[-500:]
    assert f"yt-dlp {version('yt-dlp')}" in r.stdout
    assert f"yt-dlp-ejs {version('yt-dlp-ejs')}, deno {version('deno')}" in r.stdout
    assert "YouTube's JavaScript challenges: OK" in r.stdout
