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
