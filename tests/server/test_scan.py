"""`python -m server scan` on a real local Ray (started once for the module, shut down after):
folders with bad files, agreement with `python -m model check`, resume, URL lists from a local
HTTP server. The tiny untrained model: verdicts are compared with the CLI's, never asserted."""
from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess
import sys

import pytest
from server_support import listening_sockets
from testenv import ROOT

from server import scan
from server.media import RAM_DIR
from server.report import assets_path, html_path

pytestmark = pytest.mark.slow
CLI_FIELDS = {"file", "verdict", "p_fake", "confidence", "faces", "faces_not_scored", "frames_analysed",
              "frames_with_face", "model", "mode", "threshold", "uncertain_band", "width", "height", "duration",
              "timings_ms", "error", "provenance", "reason", "reason_text", "signals", "signal"}
SAME_AS_CLI = ("verdict", "frames_analysed", "frames_with_face", "width", "height", "error", "provenance")
# A model actor runs torch on one thread and batches face tracks: sums run in another order than
# in the CLI, which can move the sixth decimal of P(fake) (measured: 1e-6 on 2 of 50 real clips).
P_TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    scan.start_ray(None, num_cpus=2)
    yield ray
    scan.stop_ray()


def run_scan(local_ray, inputs, out, tiny_checkpoint, **kw) -> dict:
    o = scan.ScanOptions(inputs=[str(i) for i in inputs], out=out, weights=str(tiny_checkpoint), **kw)
    return scan.scan(o)


def rows(out) -> dict[str, dict]:
    lines = out.read_text().splitlines()
    parsed = [json.loads(line) for line in lines]
    by_input = {r["input"]: r for r in parsed}
    assert len(by_input) == len(parsed), "an input was answered twice"
    return by_input


def cli_check(paths, tiny_checkpoint, *options: str) -> dict[str, dict]:
    r = subprocess.run([sys.executable, "-m", "model", "check", "--json", "--weights", str(tiny_checkpoint),
                        *options, *map(str, paths)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    return {v["file"]: v for v in map(json.loads, r.stdout.splitlines())}


def test_a_folder_scan_answers_every_input_like_the_cli_and_bad_files_become_error_rows(
        local_ray, media_dir, tiny_checkpoint, tmp_path):
    folder = tmp_path / "archive"
    (folder / "sub").mkdir(parents=True)
    for name in ("face.mp4", "noface.mp4", "notes.mp4", "truncated.mp4"):
        shutil.copy(media_dir / name, folder / name)
    shutil.copy(media_dir / "twofaces.mp4", folder / "sub" / "twofaces.mp4")
    (folder / "README.txt").write_text("not media, not named like media: skipped\n")
    missing = tmp_path / "gone.mp4"
    out = tmp_path / "results.jsonl"

    summary = run_scan(local_ray, [folder, missing], out, tiny_checkpoint)

    got = rows(out)
    files = sorted(p.resolve() for p in folder.rglob("*.mp4"))
    assert set(got) == {str(p) for p in files} | {str(missing)}
    for r in got.values():
        assert set(r) == CLI_FIELDS | {"input", "error_kind"}
    kinds = {k.rsplit("/", 1)[1]: r["error_kind"] for k, r in got.items()}
    assert kinds == {"face.mp4": None, "twofaces.mp4": None, "noface.mp4": "no_face", "notes.mp4": "not_media",
                     "truncated.mp4": "not_media", "gone.mp4": "not_found"}
    cli = cli_check(files, tiny_checkpoint)
    for p in files:
        mine, theirs = got[str(p)], cli[str(p)]
        assert {k: mine[k] for k in SAME_AS_CLI} == {k: theirs[k] for k in SAME_AS_CLI}, p.name
        for k in ("p_fake", "confidence"):
            assert mine[k] == (None if theirs[k] is None else pytest.approx(theirs[k], abs=P_TOLERANCE)), (p.name, k)
        assert [f["p_fake"] for f in mine["faces"]] == pytest.approx([f["p_fake"] for f in theirs["faces"]], abs=P_TOLERANCE)
    assert summary["errors"] == {"not_media": 2, "not_found": 1} and summary["verdicts"]["NO_FACE"] == 1
    report = html_path(out).read_text()
    assert "<svg" in report and "gone.mp4" in report and "truncated.mp4" in report
    assert "data:image/jpeg;base64," in report  # the thumbnails of the clips with faces


def test_an_interrupted_scan_resumes_and_answers_each_input_exactly_once(local_ray, media_dir, tiny_checkpoint, tmp_path):
    folder = tmp_path / "clips"
    folder.mkdir()
    for i in range(3):
        shutil.copy(media_dir / "noface.mp4", folder / f"noface-{i}.mp4")
    for i in range(2):
        shutil.copy(media_dir / "oneframe.mp4", folder / f"face-{i}.mp4")
    out = tmp_path / "results.jsonl"

    first = run_scan(local_ray, [folder], out, tiny_checkpoint, limit=2)  # stopped after two rows
    assert first["new"] == 2 and len(rows(out)) == 2
    with open(out, "a") as f:
        f.write('{"input": "' + str(folder / "face-0.mp4"))  # a row cut short by a kill mid-write

    second = run_scan(local_ray, [folder], out, tiny_checkpoint)

    got = rows(out)  # every line whole: the cut-short one was dropped, its input scanned again
    assert set(got) == {str(p.resolve()) for p in folder.iterdir()}
    assert second["new"] == 3 and second["inputs"] == 5
    third = run_scan(local_ray, [folder], out, tiny_checkpoint)  # nothing left: no Ray work at all
    assert third["new"] == 0 and len(out.read_text().splitlines()) == 5
    assert assets_path(out).stat().st_mode & 0o077 == 0


def test_a_url_list_is_fetched_with_allow_private_fetch_and_refused_without(
        local_ray, media_server, media_dir, tiny_checkpoint, tmp_path):
    urls = tmp_path / "urls.txt"
    urls.write_text(f"# a desk's list\n{media_server}/face.mp4\n\n{media_server}/notes.mp4\nftp://example.invalid/x\n")

    refused = tmp_path / "refused.jsonl"
    run_scan(local_ray, [urls], refused, tiny_checkpoint)
    got = rows(refused)
    assert {r["error_kind"] for k, r in got.items() if k.startswith("http")} == {"private_address"}
    assert got["ftp://example.invalid/x"]["error_kind"] == "bad_url"

    allowed = tmp_path / "allowed.jsonl"
    run_scan(local_ray, [urls], allowed, tiny_checkpoint, allow_private_fetch=True)
    got = rows(allowed)
    face = got[f"{media_server}/face.mp4"]
    cli = next(iter(cli_check([media_dir / "face.mp4"], tiny_checkpoint).values()))
    assert (face["verdict"], face["file"]) == (cli["verdict"], f"{media_server}/face.mp4")
    assert face["p_fake"] == pytest.approx(cli["p_fake"], abs=P_TOLERANCE)
    assert "fetch" in face["timings_ms"]
    assert got[f"{media_server}/notes.mp4"]["error_kind"] == "not_media"
    assert not list(RAM_DIR.glob("deepfake-check-scan-*"))  # the downloads were deleted at once


def test_rows_carry_the_files_content_credentials_judged_against_the_trust_anchors_as_the_cli_does(
        local_ray, c2pa_files, tiny_checkpoint, tmp_path):
    folder = tmp_path / "signed"
    folder.mkdir()
    for name in ("ai.jpg", "trusted.jpg", "tampered.jpg", "plain.jpg"):
        shutil.copy(c2pa_files[name], folder / name)
    out = tmp_path / "results.jsonl"
    anchors = c2pa_files["anchor.pem"]

    run_scan(local_ray, [folder], out, tiny_checkpoint, trust_anchors=anchors, report=False)

    got = {k.rsplit("/", 1)[1]: r["provenance"] for k, r in rows(out).items()}
    assert {k: p and (p["state"], p["ai_generated"]) for k, p in got.items()} == {
        "ai.jpg": ("untrusted-signer", True), "trusted.jpg": ("valid", False), "tampered.jpg": ("invalid", False),
        "plain.jpg": None}
    assert got["tampered.jpg"]["ai_generated_claimed"] is True  # a broken claim: kept as a claim only
    assert got["ai.jpg"]["signer"]["issuer"] == "Example AI Inc"
    cli = cli_check(sorted(folder.iterdir()), tiny_checkpoint, "--c2pa-trust-anchors", str(anchors))
    assert {k.rsplit("/", 1)[1]: v["provenance"] for k, v in cli.items()} == got


def test_scan_takes_c2pa_trust_anchors_and_refuses_a_file_without_certificates(tiny_checkpoint, tmp_path, capsys):
    assert scan.parse_args(["x.mp4", "--out", "r.jsonl", "--c2pa-trust-anchors", "a.pem"]).trust_anchors.name == "a.pem"
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate\n")
    assert scan.main([str(tmp_path), "--out", str(tmp_path / "r.jsonl"), "--weights", str(tiny_checkpoint),
                      "--c2pa-trust-anchors", str(bad)]) == 2
    assert "holds no PEM certificate" in capsys.readouterr().err


def test_the_embedded_ray_listens_on_loopback_only(local_ray):
    @local_ray.remote
    def pid() -> int:
        return os.getpid()

    local_ray.get(pid.remote())  # a worker process up, listening as it does
    sockets = listening_sockets(os.getpid())
    assert {"gcs_server", "raylet"} <= {name for _, _, name in sockets}, sockets
    assert [s for s in sockets if not ipaddress.ip_address(s[0]).is_loopback] == []


def test_a_killed_scans_download_folder_is_removed_by_the_next_scan_and_a_running_ones_kept(
        local_ray, media_server, tiny_checkpoint, tmp_path):
    """A scan killed mid-download leaves its folder (in RAM) with a partial download in plaintext;
    the next scan removes it, leaves a running scan's alone, and removes its own at the end."""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    parent = scan.scan_dir().parent
    killed = parent / f"{scan.SCAN_DIR_PREFIX}{int(dead.stdout)}-0123456789ab"
    running = parent / f"{scan.SCAN_DIR_PREFIX}{os.getpid()}-ba9876543210"
    for d in (killed, running):
        (d / "tmpdownload").mkdir(parents=True, mode=0o700)
        (d / "tmpdownload" / "media.mp4.part").write_bytes(b"\0" * 1024)
    try:
        urls = tmp_path / "urls.txt"
        urls.write_text(f"{media_server}/face.mp4\n")
        run_scan(local_ray, [urls], tmp_path / "out.jsonl", tiny_checkpoint, allow_private_fetch=True, report=False)
        assert not killed.exists() and running.exists()
        assert sorted(parent.glob(f"{scan.SCAN_DIR_PREFIX}*")) == [running]  # this scan's own folder is gone
    finally:
        shutil.rmtree(killed, ignore_errors=True)
        shutil.rmtree(running, ignore_errors=True)


def test_the_embedded_ray_serves_no_metrics_and_keeps_its_files_private(local_ray):
    """Before: three Prometheus endpoints (the autoscaler's, the dashboard process's, the agent's)
    answered anyone on this machine without Ray's token, and /tmp/ray's session folders were 0777."""
    import stat
    import urllib.request

    @local_ray.remote
    def pid() -> int:
        return os.getpid()

    local_ray.get(pid.remote())
    answered = []
    for address, port, name in listening_sockets(os.getpid()):
        try:
            with urllib.request.urlopen(f"http://{address}:{port}/metrics", timeout=5) as r:
                answered.append((port, name, r.status))
        except Exception:  # refused, 401 (Ray's token), or no HTTP at all (gRPC): BadStatusLine and kin
            pass
    assert answered == []
    session = local_ray._private.worker._global_node.get_session_dir_path()
    private = os.path.dirname(os.path.dirname(session))  # Ray's temp dir is inside it
    st = os.stat(private)
    assert stat.S_IMODE(st.st_mode) == 0o700 and st.st_uid == os.getuid(), (private, oct(st.st_mode))
    assert os.path.basename(private).startswith("dfc-ray-")
