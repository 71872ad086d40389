"""Content Credentials (C2PA) read beside the verdict: files signed in the test (tests/credentials.py)
as an AI generator, a camera and an editor sign them, one changed after signing, one under a
trust anchor, one without credentials; malformed manifests; the reader's time and crash bounds."""
import json
import os
import random
import subprocess
import sys
import time

import credentials
import pytest
from testenv import ROOT

from model import provenance
from model.provenance import load_trust_anchors, read_provenance


def test_ai_generated_jpeg_is_declared_with_its_signer_and_untrusted_without_anchors(c2pa_files):
    p = read_provenance(c2pa_files["ai.jpg"])
    assert p.state == "untrusted-signer" and p.ai_generated and not p.edited and p.errors == []
    assert (p.signer.issuer, p.signer.common_name) == ("Example AI Inc", "Imagine Video signer")
    assert p.claim_generator == "Imagine Video 1.0"
    assert p.actions == [{"action": "c2pa.created", "software_agent": "Imagine Video 1.0",
                          "digital_source_type": "trainedAlgorithmicMedia", "when": None}]


def test_ai_generated_mp4_is_declared(c2pa_files):
    p = read_provenance(c2pa_files["ai.mp4"])
    assert p.state == "untrusted-signer" and p.ai_generated


def test_camera_capture_is_intact_and_not_ai_generated(c2pa_files):
    p = read_provenance(c2pa_files["camera.jpg"])
    assert p.state == "untrusted-signer" and not p.ai_generated and not p.edited
    assert p.actions[0]["digital_source_type"] == "digitalCapture" and p.actions[0]["when"] == "2026-11-30T10:00:00Z"


def test_edited_credentials_say_edited_and_list_the_edits(c2pa_files):
    p = read_provenance(c2pa_files["edited.jpg"])
    assert p.edited and not p.ai_generated
    assert [a["action"] for a in p.actions] == ["c2pa.created", "c2pa.edited", "c2pa.cropped"]


def test_an_edit_of_an_ai_generated_file_keeps_the_declaration_of_its_ingredient(c2pa_files, tmp_path):
    editor = credentials.CA.make("Test Editor CA").signer("Example Software", "Editor")
    p = read_provenance(credentials.edit_of(c2pa_files["ai.jpg"], tmp_path / "edited-ai.jpg", editor))
    assert p.state == "untrusted-signer" and p.ai_generated and p.edited
    assert p.signer.issuer == "Example Software" and [a["action"] for a in p.actions] == ["c2pa.opened", "c2pa.cropped"]


def test_bytes_changed_after_signing_make_the_credentials_invalid(c2pa_files):
    p = read_provenance(c2pa_files["tampered.jpg"])
    assert p.state == "invalid" and "assertion.dataHash.mismatch" in p.errors


@pytest.mark.parametrize("name", ["tampered.jpg", "bad-signature.jpg"])
def test_the_ai_claim_of_broken_credentials_is_not_reported_as_a_fact(c2pa_files, name):
    """An AI generator's credentials, the file or the signature changed after signing: the claim is
    kept as a claim (ai_generated_claimed), never as ai_generated."""
    p = read_provenance(c2pa_files[name])
    assert (p.state, p.ai_generated, p.ai_generated_claimed) == ("invalid", False, True), p
    assert ("claimSignature.mismatch" if name == "bad-signature.jpg" else "assertion.dataHash.mismatch") in p.errors


def test_signer_under_a_given_trust_anchor_is_valid_and_others_stay_untrusted(c2pa_files):
    anchors = load_trust_anchors(c2pa_files["anchor.pem"])
    assert read_provenance(c2pa_files["trusted.jpg"]).state == "untrusted-signer"
    assert read_provenance(c2pa_files["trusted.jpg"], anchors).state == "valid"
    assert read_provenance(c2pa_files["ai.jpg"], anchors).state == "untrusted-signer"


def test_file_without_credentials_has_none(c2pa_files, media_dir):
    assert read_provenance(c2pa_files["plain.jpg"]) is None
    assert read_provenance(media_dir / "face.mp4") is None
    assert read_provenance(media_dir / "notes.mp4") is None


def test_ai_generated_png_is_declared(media_dir, tmp_path):
    signer = credentials.CA.make("Test PNG CA").signer("Example AI Inc", "png")
    png = credentials.sign(media_dir / "noface.png", tmp_path / "ai.png", signer, credentials.ai_generated())
    p = read_provenance(png)
    assert p.state == "untrusted-signer" and p.ai_generated


def test_mp4_jpeg_and_png_without_credentials_are_answered_from_their_headers(c2pa_files, media_dir, monkeypatch):
    """Only box, segment and chunk headers are read: the whole-file label search never runs."""
    def no_search(*a, **k):
        raise AssertionError("the file's bytes were searched")

    monkeypatch.setattr(provenance.mmap, "mmap", no_search)
    for path in (media_dir / "face.mp4", c2pa_files["plain.jpg"], media_dir / "noface.png"):
        assert provenance.has_marker(path) is False, path
    assert all(provenance.has_marker(c2pa_files[n]) for n in ("ai.jpg", "ai.mp4"))


def test_a_file_whose_headers_do_not_parse_is_searched_for_the_label(c2pa_files, tmp_path):
    data = c2pa_files["ai.mp4"].read_bytes()
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(data[:32] + b"\0\0\0\x02junk" + data[32:])  # a box too small to be one, then the store
    assert provenance.has_marker(broken)
    assert read_provenance(broken) is None or read_provenance(broken).state == "invalid"


def test_trust_anchor_file_without_a_certificate_is_refused_with_a_message(tmp_path):
    bad = tmp_path / "anchors.pem"
    bad.write_text("not a certificate\n")
    with pytest.raises(provenance.TrustAnchorsError, match="holds no PEM certificate"):
        load_trust_anchors(bad)
    with pytest.raises(provenance.TrustAnchorsError, match="cannot read"):
        load_trust_anchors(tmp_path / "missing.pem")


def test_malformed_manifests_end_invalid_or_none_never_in_a_crash(c2pa_files, tmp_path):
    """Bytes flipped inside the manifest store, stores cut short, a label with no store behind it:
    every file gets an answer of the documented shape, in bounded time."""
    data = (c2pa_files["ai.jpg"]).read_bytes()
    start = data.find(b"c2pa") - 64  # the JUMBF boxes of the store, in the JPEG's APP11 segments
    end = start + 24_000
    rng = random.Random(13)
    cases = [data[:start + n] for n in (8, 70, 500, 5000)]  # truncated stores
    cases.append(data[:start] + b"jumbjumd" + b"c2pa" * 64 + data[start + 300:])  # a bogus box
    for _ in range(24):
        mutated = bytearray(data)
        for _ in range(rng.choice((1, 4, 32))):
            mutated[rng.randrange(start, end)] = rng.randrange(256)
        cases.append(bytes(mutated))
    path = tmp_path / "fuzz.jpg"
    t0 = time.monotonic()
    for case in cases:
        path.write_bytes(case)
        p = read_provenance(path)
        assert p is None or (p.state in provenance.STATES and (p.state != "invalid" or p.errors))
    assert time.monotonic() - t0 < len(cases) * provenance.READ_TIMEOUT_S


@pytest.fixture
def reader_fault(monkeypatch):
    """Fault injection at the reader process's boundary: `use(code)` replaces the reader with a
    Python process running `code` (a native library stuck on, or crashing on, a hostile file)."""
    def use(code: str) -> None:
        provenance._READER.close()
        monkeypatch.setattr(provenance, "_reader_command", lambda fd: [sys.executable, "-c", code])

    yield use
    provenance._READER.close()  # the next read starts the real reader again


def test_a_reader_that_hangs_is_stopped_at_its_deadline(c2pa_files, reader_fault):
    reader_fault("import time; time.sleep(60)")
    t0 = time.monotonic()
    p = read_provenance(c2pa_files["ai.jpg"], timeout_s=0.5)
    assert p.state == "invalid" and p.errors == [provenance.TIMEOUT] and time.monotonic() - t0 < 5
    assert provenance._READER.proc is None  # stopped, not left running


def test_a_reader_that_crashes_fails_only_the_credentials_and_is_replaced(c2pa_files, reader_fault, monkeypatch):
    reader_fault("import os; os.abort()")
    p = read_provenance(c2pa_files["ai.jpg"])
    assert p.state == "invalid" and p.errors == [provenance.CRASHED]
    monkeypatch.undo()  # the real reader again: the next file is read by a new one
    assert read_provenance(c2pa_files["ai.jpg"]).state == "untrusted-signer"


def test_what_a_manifest_puts_in_a_result_is_bounded(c2pa_files, tmp_path):
    info = credentials.CA.make("Test Bulk CA").signer("x" * 5000, "y")
    edits = [{"action": "c2pa.edited", "softwareAgent": {"name": "e" * 5000}}] * 200
    many = credentials.manifest("z" * 5000, [{"action": "c2pa.created", "digitalSourceType": credentials.IPTC + "digitalCapture"},
                                             *edits])
    p = read_provenance(credentials.sign(c2pa_files["plain.jpg"], tmp_path / "many.jpg", info, many))
    assert len(p.actions) == provenance.MAX_ACTIONS and p.edited
    assert max(len(p.signer.issuer), len(p.claim_generator), len(p.actions[1]["software_agent"])) <= provenance.MAX_TEXT


def test_cli_json_shows_provenance_for_each_file(c2pa_files, tiny_checkpoint):
    names = ("ai.jpg", "ai.mp4", "camera.jpg", "edited.jpg", "tampered.jpg", "trusted.jpg", "plain.jpg")
    r = subprocess.run([sys.executable, "-m", "model", "check", "--json", "--frames", "10", "--weights",
                        str(tiny_checkpoint), "--c2pa-trust-anchors", str(c2pa_files["anchor.pem"]),
                        *(str(c2pa_files[n]) for n in names)],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    got = {os.path.basename(v["file"]): v["provenance"] for v in map(json.loads, r.stdout.splitlines())}
    states = {n: got[n] and (got[n]["state"], got[n]["ai_generated"], got[n]["edited"]) for n in names}
    assert states == {"ai.jpg": ("untrusted-signer", True, False), "ai.mp4": ("untrusted-signer", True, False),
                      "camera.jpg": ("untrusted-signer", False, False), "edited.jpg": ("untrusted-signer", False, True),
                      "tampered.jpg": ("invalid", False, False), "trusted.jpg": ("valid", False, False),
                      "plain.jpg": None}
    assert got["tampered.jpg"]["errors"] == ["assertion.dataHash.mismatch"]


def test_cli_refuses_a_trust_anchors_file_without_a_certificate(tiny_checkpoint, c2pa_files, tmp_path):
    bad = tmp_path / "bad.pem"
    bad.write_text("nothing\n")
    r = subprocess.run([sys.executable, "-m", "model", "check", "--weights", str(tiny_checkpoint),
                        "--c2pa-trust-anchors", str(bad), str(c2pa_files["ai.jpg"])],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "holds no PEM certificate" in r.stderr


def test_the_cli_line_says_what_the_credentials_declare(c2pa_files):
    ai, tampered = (provenance.describe(read_provenance(c2pa_files[n])) for n in ("ai.jpg", "tampered.jpg"))
    assert ai == ("Content Credentials: AI-generated (declared) with Imagine Video 1.0, "
                  "signed by Example AI Inc (not verified against a trust list)")
    assert tampered.startswith("Content Credentials don't match this file (changed after signing")
    assert tampered.endswith("they claim it is AI-generated, but broken credentials prove nothing")
    assert provenance.describe(read_provenance(c2pa_files["plain.jpg"])) is None
