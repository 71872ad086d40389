"""A check that cannot judge says why, through the real server and its inference worker: the result
carries `reason` (a code of the OpenAPI file) and `reason_text`, and no P(fake)."""
from __future__ import annotations

import json

import aiohttp
import media
import numpy as np
import pytest
import pytest_asyncio
import torch
from server_support import wait_done

from model.evidence import REASONS, Cuts, reason_text
from model.network import DeepfakeDetector
from model.spec import CropSpec, ModelSpec
from model.weights import save_checkpoint
from server.app import create_app
from server.keys import TOKENS

pytestmark = pytest.mark.asyncio
CUTS = Cuts(min_face_px=64, min_brightness=45.0, min_sharpness=40.0)


@pytest.fixture(scope="module")
def judging_worker(tmp_path_factory):
    """A real worker whose (untrained) model has abstention cuts in its calibration, like a measured one."""
    from server.worker import InferenceWorker

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "judging.pt"
    spec = ModelSpec(name="judging", crop=CropSpec(detector="yunet"))
    save_checkpoint(path, DeepfakeDetector(spec), extra={"calibration": {"abstain": CUTS.to_dict()}})
    w = InferenceWorker(str(path), "cpu", tmp_path_factory.mktemp("plain"))
    w.start()
    yield w
    w.stop(grace_s=5)


@pytest_asyncio.fixture
async def judging_api(aiohttp_client, tmp_path, judging_worker):
    from server.config import Config

    config = Config(config_dir=tmp_path / "config", data_dir=tmp_path / "data", plain_dir=judging_worker.plain_dir)
    app = create_app(config, worker=judging_worker)
    client = await aiohttp_client(app)
    return client, {"Authorization": f"Bearer {app[TOKENS].token}"}


async def _check(client, auth, path) -> dict:
    fd = aiohttp.FormData()
    fd.add_field("file", path.read_bytes(), filename=path.name, content_type="video/mp4")
    r = await client.post("/v1/checks/upload", data=fd, headers=auth)
    assert r.status in (200, 202), await r.text()
    body = await r.json()
    done = body if body["status"] == "done" else await wait_done(client, auth, body["id"], timeout=120)
    assert done["status"] == "done", done
    return done["result"]


async def test_a_dark_clip_is_uncertain_with_its_reason_and_no_score(judging_api, tmp_path):
    client, auth = judging_api
    dark = [np.clip(f.astype(np.float32) * 0.2, 0, 255).astype(np.uint8) for f in media.face_frames(20)]
    result = await _check(client, auth, media.write_clip(tmp_path / "dark.mp4", dark))
    assert result["verdict"] == "UNCERTAIN" and result["reason"] == "too_dark"
    assert result["reason_text"] == reason_text("too_dark") and result["p_fake"] is None and result["confidence"] is None
    assert [f["code"] for f in result["faces_not_scored"]] == ["too_dark"]
    assert result["faces_not_scored"][0]["evidence"]["brightness"] < CUTS.min_brightness


async def test_a_clear_clip_is_judged_and_says_how_good_its_face_was(judging_api, tmp_path):
    client, auth = judging_api
    result = await _check(client, auth, media.write_clip(tmp_path / "clear.mp4", media.face_frames(20)))
    assert result["reason"] is None and result["reason_text"] is None and result["p_fake"] is not None
    assert result["faces"][0]["evidence"]["face_px"] > CUTS.min_face_px


async def test_every_reason_code_is_in_the_openapi_file(judging_api):
    client, auth = judging_api
    spec = json.loads(await (await client.get("/v1/openapi.json", headers=auth)).text())
    result = spec["components"]["schemas"]["Result"]["properties"]
    assert set(REASONS) | {None} == set(result["reason"]["enum"])
    unscored = spec["components"]["schemas"]["UnscoredFace"]["properties"]["code"]["enum"]
    assert set(REASONS) <= set(unscored) and {"secondary_brief", "secondary_small"} <= set(unscored)
