"""Fixtures for the robustness tests: the generated bad-input corpus, in-process apps on loopback
sharing the session's real inference worker (`worker`, tests/conftest.py: the tiny untrained model,
so outcomes are asserted, verdicts never), and a real `python -m server` process for the
end-to-end security and fuzzing tests."""
from __future__ import annotations

from pathlib import Path

import corpus
import pytest
from robust_support import Api, start_server

from server.app import create_app
from server.config import Config
from server.keys import TOKENS
from server.worker import InferenceWorker


@pytest.fixture(scope="session")
def bad_inputs(tmp_path_factory) -> Path:
    return corpus.build(tmp_path_factory.mktemp("corpus"))


@pytest.fixture
def make_api(aiohttp_client, tmp_path, worker):
    shared = worker

    async def start(worker: InferenceWorker | None = None, **kw) -> Api:
        w = worker or shared
        kw.setdefault("config_dir", tmp_path / "config")
        kw.setdefault("data_dir", tmp_path / "data")
        kw.setdefault("plain_dir", w.plain_dir)
        config = Config(**kw)
        app = create_app(config, worker=w)
        client = await aiohttp_client(app)
        return Api(client, app, config, {"Authorization": f"Bearer {app[TOKENS].token}"})

    return start


@pytest.fixture(scope="module")
def live_server(tiny_checkpoint, tmp_path_factory):
    sp = start_server(tiny_checkpoint, tmp_path_factory.mktemp("live"))
    yield sp
    sp.stop()
