"""Fuzzing the API from its own OpenAPI file (server/openapi.json, what /v1/openapi.json serves)
with schemathesis, against a real `python -m server` process over TLS on loopback.

Bounded: a fixed number of generated requests per operation. Asserted for every one: no 5xx,
and the status code is one the contract documents. Afterwards the server still analyses a clip."""
from __future__ import annotations

import time

import aiohttp
import pytest
import requests
import schemathesis
from corpus import MULTIPART_CASES
from hypothesis import HealthCheck, Phase, given, settings
from robust_support import fresh_face_clip, start_server
from schemathesis import checks
from testenv import ROOT

MAX_EXAMPLES = 50

# schemathesis' own pytest plugin does not run under pytest 9, so the loop over operations is ours
SCHEMA = schemathesis.openapi.from_path(ROOT / "server" / "openapi.json")
OPERATIONS = [r.ok() for r in SCHEMA.get_all_operations()]
POSITIVE, NEGATIVE = schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE
# invalid requests can only be made for operations that take input
CASES = [(op, mode) for op in OPERATIONS for mode in (POSITIVE, NEGATIVE)
         if mode is POSITIVE or op.body or any(True for _ in op.iter_parameters())]


@pytest.fixture(scope="module")
def fuzz_server(tiny_checkpoint, tmp_path_factory):
    # a short deadline and a small queue keep the downloads that fuzzed URLs start cheap and few;
    # the rate limits are lifted: on a fast machine the fuzzer sends more than 600 requests a minute
    # (and may send wrong tokens), and a 429 would hide the answers under test (the limits have
    # their own tests: tests/server/test_rate_limits_tls.py)
    sp = start_server(tiny_checkpoint, tmp_path_factory.mktemp("fuzz"), "--deadline", "10", "--queue-size", "4",
                      "--rate-limit", "1000000", "--auth-failures", "1000000")
    yield sp
    sp.stop()


@pytest.fixture(scope="module")
def session(fuzz_server):
    s = requests.Session()
    s.verify = str(fuzz_server.config_dir / "tls" / "ca.pem")
    s.headers["Authorization"] = f"Bearer {fuzz_server.stored_token}"
    yield s
    s.close()


@pytest.mark.timeout(300)
@pytest.mark.parametrize("operation,mode", CASES, ids=[f"{op.method.upper()} {op.path} {m.value}" for op, m in CASES])
def test_no_generated_request_gets_a_server_error_or_an_undocumented_status(operation, mode, session, fuzz_server):
    calls = []

    @settings(max_examples=MAX_EXAMPLES, deadline=None, phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck), derandomize=True, database=None)
    @given(case=operation.as_strategy(generation_mode=mode))
    def fuzz(case):
        calls.append(1)
        response = case.call(base_url=fuzz_server.base, session=session, timeout=30, verify=session.verify)
        # 503 busy (queue full, with Retry-After) is the documented answer to load, not a server error
        busy = response.status_code == 503 and response.json().get("error") == "busy" and any(k.lower() == "retry-after" for k in response.headers)
        assert response.status_code < 500 or busy, f"{response.status_code}: {response.text[:300]}"
        case.validate_response(response, checks=[checks.status_code_conformance])

    fuzz()
    assert calls, "no request was generated"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", MULTIPART_CASES, ids=[c.name for c in MULTIPART_CASES])
def test_odd_multipart_uploads_get_a_4xx_json_error_never_a_server_error(case, session, fuzz_server):
    r = session.post(f"{fuzz_server.base}/v1/checks/upload", data=case.body, headers={"Content-Type": case.content_type},
                     timeout=30, verify=session.verify)
    assert r.status_code in (400, 413, 415) and set(r.json()) == {"error", "message"}, (r.status_code, r.text[:300])


@pytest.mark.asyncio
@pytest.mark.timeout(120)
async def test_after_fuzzing_the_server_still_analyses_a_clip(fuzz_server, tmp_path):
    clip = fresh_face_clip(tmp_path)
    auth = {"Authorization": f"Bearer {fuzz_server.stored_token}"}
    async with aiohttp.ClientSession() as s:
        deadline = time.monotonic() + 60
        while True:  # fuzzed URL checks may still fill the small queue: wait for room
            fd = aiohttp.FormData()
            fd.add_field("file", clip.read_bytes(), filename="clip.mp4")
            r = await s.post(f"{fuzz_server.base}/v1/checks/upload", data=fd, headers=auth, ssl=fuzz_server.ssl_context())
            if r.status != 503 or time.monotonic() > deadline:
                break
            await __import__("asyncio").sleep(1)
        assert r.status == 202, await r.text()
        cid = (await r.json())["id"]
        while True:
            body = await (await s.get(f"{fuzz_server.base}/v1/checks/{cid}", headers=auth, ssl=fuzz_server.ssl_context())).json()
            if body["status"] in ("done", "failed"):
                break
            assert time.monotonic() < deadline, body
            await __import__("asyncio").sleep(0.1)
    assert body["status"] == "done", body
    assert fuzz_server.proc.poll() is None
