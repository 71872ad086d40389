"""The shipped default model: registered, verified by sha256, reproducing its model card's reference value."""
import re

import numpy as np
import pytest

from model import available_models, load_model
from model.check import score_crops
from model.weights import DEFAULT_MODEL, REGISTRY, WEIGHTS_DIR, CheckpointError, reference_input, sha256_file


def test_a_default_model_is_registered_and_its_files_exist():
    assert DEFAULT_MODEL in available_models()
    entry = REGISTRY[DEFAULT_MODEL]
    assert entry.path.is_file() and (WEIGHTS_DIR / entry.card).is_file()
    assert entry.path.stat().st_size < 12 * 1024 * 1024  # small enough to ship in the repo


def test_default_weights_match_their_recorded_sha256():
    entry = REGISTRY[DEFAULT_MODEL]
    assert sha256_file(entry.path) == entry.sha256


def test_default_model_loads_with_no_arguments_and_matches_its_registry_entry():
    loaded = load_model(device="cpu")
    entry = REGISTRY[DEFAULT_MODEL]
    assert loaded.name == entry.name
    assert (loaded.spec.backbone, loaded.spec.mode, loaded.spec.crop.size) == (entry.backbone, entry.mode, entry.input_size)


def test_default_model_gives_the_p_fake_recorded_in_its_model_card():
    entry = REGISTRY[DEFAULT_MODEL]
    card = (WEIGHTS_DIR / entry.card).read_text()
    p = score_crops(load_model(device="cpu"), reference_input())
    if isinstance(p, dict):  # a two-head model: each head's raw output is recorded
        for head, value in p.items():
            m = re.search(rf"reference P\(fake\) of the {head} head[^:]*:\s*`?([0-9.]+)", card)
            assert m, f"the model card must record the {head} head's reference P(fake)"
            assert value == pytest.approx(float(m.group(1)), abs=1e-4), head
        return
    m = re.search(r"reference P\(fake\)[^:]*:\s*`?([0-9.]+)", card)
    assert m, "the model card must record the reference P(fake)"
    assert p == pytest.approx(float(m.group(1)), abs=1e-4)


def test_a_tampered_default_file_is_refused(tmp_path, monkeypatch):
    import model.weights as w

    entry = REGISTRY[DEFAULT_MODEL]
    bad = tmp_path / entry.file
    data = bytearray(entry.path.read_bytes())
    data[-100] ^= 0xFF
    bad.write_bytes(bytes(data))
    monkeypatch.setattr(w, "WEIGHTS_DIR", tmp_path)
    with pytest.raises(CheckpointError, match="does not match the registry"):
        w.load_model(entry.name, device="cpu")


def test_reference_input_is_fixed():
    assert np.array_equal(reference_input(), reference_input())
