"""Rate limits against the real server (`python -m server` over TLS): the per-token limit counts
every spelling of the token's header, and wrong tokens are limited per client (issue 23, item 2)."""
from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
import pytest_asyncio
from server_support import start_server

pytestmark = [pytest.mark.slow, pytest.mark.asyncio]
PER_MIN = 60  # both limits: one request a second refills each bucket


@pytest.fixture(scope="module")
def server(tiny_checkpoint, tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("limits"), "--weights", str(tiny_checkpoint), "--device", "cpu",
                       "--rate-limit", str(PER_MIN), "--auth-failures", str(PER_MIN))
    srv.pair()
    yield srv
    srv.stop()


@pytest_asyncio.fixture
async def get(server):
    async with aiohttp.ClientSession() as s:
        async def call(authorization: str | None) -> tuple[int, dict, dict]:
            headers = {} if authorization is None else {"Authorization": authorization}
            async with s.get(f"{server.base}/v1/model", headers=headers, ssl=server.ssl_context()) as r:
                return r.status, await r.json(), dict(r.headers)

        yield call


async def until_429(call, authorization: str, most: int) -> int:
    """Requests made before the first 429 (AssertionError if none came within `most`)."""
    for n in range(most):
        status, body, _ = await call(authorization)
        if status == 429:
            return n
    raise AssertionError(f"no 429 after {most} requests")


async def test_the_token_limit_counts_every_spelling_of_the_token(server, get):
    token = server.token
    for spelling in (f"bearer {token}", f"Bearer  {token}", f"BEARER {token} "):
        assert (await get(spelling))[0] == 200  # each spelling is the token...
    t0 = time.monotonic()
    served = await until_429(get, f"Bearer {token}", 3 * PER_MIN)
    assert served <= PER_MIN + (time.monotonic() - t0) + 1
    for spelling in (f"bearer {token}", f"Bearer  {token}", f"BEARER {token} ", f"Bearer\t{token}"):
        status, body, headers = await get(spelling)  # ...so none of them starts a bucket of its own
        assert status == 429 and body["error"] == "rate_limited" and int(headers["Retry-After"]) >= 1, (spelling, status)


async def test_wrong_tokens_are_limited_per_client_and_the_limit_refills(server, get):
    status, _, _ = await get("Bearer not-the-token")
    assert status == 401  # a wrong token is refused as such...
    t0 = time.monotonic()
    refused = 1 + await until_429(get, "Bearer not-the-token", 3 * PER_MIN)
    assert refused <= PER_MIN + (time.monotonic() - t0) + 1  # ...until the client has guessed too often
    status, body, headers = await get(f"Bearer {server.token}")
    assert status == 429 and "wrong tokens" in body["message"]  # then no guess is compared, not even a right one
    assert (await get(None))[0] == 401  # a request without a token guesses nothing: not counted, not refused
    await asyncio.sleep(int(headers["Retry-After"]) + 0.5)
    assert (await get(f"Bearer {server.token}"))[0] == 200


def test_the_log_has_no_token(server):
    assert server.token not in server.output()
