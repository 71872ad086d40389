"""Fixtures for the robustness tests: the generated bad-input corpus, one real inference worker
(the tiny untrained model: outcomes are asserted, verdicts never), in-process apps on loopback,
and a real `python -m server` process for the end-to-end security and fuzzing tests."""
from __future__ import annotations

from pathlib import Path

import pytest

import corpus
from robust_support import Api, start_server
from server.app import create_app
from server.config import Config
from server.keys import TOKENS
from server.worker import InferenceWorker


@pytest.fixture(scope="session")
def bad_inputs(tmp_path_factory) -> Path:
    return corpus.build(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="session")
def rworker(tiny_checkpoint, tmp_path_factory):
    w = InferenceWorker(str(tiny_checkpoint), "cpu", tmp_path_factory.mktemp("plain"))
    w.start()
    yield w
    w.stop(grace_s=5)


@pytest.fixture
def make_api(aiohttp_client, tmp_path, rworker):
    async def start(worker: InferenceWorker | None = None, **kw) -> Api:
        w = worker or rworker
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
