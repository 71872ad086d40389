"""Every endpoint and error path through aiohttp's test client, on an app that shares one real
inference worker (the tiny untrained model: its verdicts are never asserted, only their shape)."""
from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from realserver import leftover_media
from server_support import wait_done

from server.keys import CONFIG, JOBS, PAIRING, PLAIN_DIR, TOKENS

pytestmark = pytest.mark.asyncio
VERDICTS = ("REAL", "FAKE", "UNCERTAIN", "NO_FACE")
# two installed extensions: a Chromium one (32 letters a-p) and a Firefox one (a per-profile UUID)
EXT_A, EXT_B = "chrome-extension://abcdefghijklmnopabcdefghijklmnop", "moz-extension://0f1e2d3c-aaaa-bbbb-cccc-0123456789ab"


def form(path, frames=None, name=None) -> aiohttp.FormData:
    fd = aiohttp.FormData()
    fd.add_field("file", path.read_bytes(), filename=name or path.name, content_type="application/octet-stream")
    if frames is not None:
        fd.add_field("frames", str(frames))
    return fd


# --- health, model, openapi -------------------------------------------------------------------
async def health_with_fetcher(client, timeout: float = 120.0) -> dict:
    """/v1/health once the fetcher's first self-check is done (its fetcher is null until then: the
    check starts a fetch process, seconds on a loaded machine)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        r = await client.get("/v1/health")
        assert r.status == 200
        body = await r.json()
        if body["fetcher"] is not None:
            return body
        assert asyncio.get_running_loop().time() < deadline, "the fetcher's self-check did not end"
        await asyncio.sleep(0.5)


async def test_health_needs_no_token_and_reveals_only_the_versions_and_the_fetchers_state(api):
    from importlib.metadata import version

    client, _, _ = api
    body = await health_with_fetcher(client)
    assert (body["ok"], body["version"]) == (True, "0.1.0")
    f = body["fetcher"]
    assert (f["yt_dlp"], f["ejs"], f["deno"]) == (version("yt-dlp"), version("yt-dlp-ejs"), version("deno"))
    assert f["challenge_solver"] is True and f["problems"] == []
    assert f["released"] == "-".join(version("yt-dlp").split(".")[:3]) and f["age_days"] >= 0
    assert (f["max_age_days"], f["update_command"], f["cookies_from"]) == (60, "make update-fetcher", None)
    assert set(body) == {"ok", "version", "fetcher"}


@pytest.mark.parametrize("max_age, stale", [(0, True), (100_000, False)])
async def test_health_calls_a_fetcher_older_than_the_limit_stale(app_factory, max_age, stale):
    client, _, _ = await app_factory(fetcher_max_age_days=max_age)
    f = (await health_with_fetcher(client))["fetcher"]
    assert f["stale"] is stale and f["max_age_days"] == max_age


async def test_health_names_the_browser_cookies_come_from_but_not_its_profile(app_factory, tmp_path):
    client, _, _ = await app_factory(cookies_from_browser=f"chromium:{tmp_path}/secret-profile")
    body = await health_with_fetcher(client)
    assert body["fetcher"]["cookies_from"] == "chromium" and "secret-profile" not in json.dumps(body)


async def test_model_endpoint_describes_the_loaded_model(api):
    client, _, auth = api
    r = await client.get("/v1/model", headers=auth)
    assert r.status == 200
    assert await r.json() == {"name": "tiny", "backbone": "mobilenet_v3_small", "mode": "temporal",
                              "frames": 20, "input_size": 112, "device": "cpu"}


async def test_openapi_is_served_and_documents_every_route(api):
    client, app, _ = api
    r = await client.get("/v1/openapi.json")
    spec = await r.json()
    assert r.status == 200 and spec["openapi"].startswith("3.")
    routes = {res.canonical for res in app.router.resources()}
    documented = set(spec["paths"]) | {"/pair"}  # the pairing page is HTML, not API
    assert routes == documented


# --- access control ---------------------------------------------------------------------------
async def test_missing_token_is_refused_with_401(api):
    client, _, _ = api
    r = await client.get("/v1/model")
    assert r.status == 401 and (await r.json())["error"] == "unauthorized"


async def test_wrong_token_is_refused_with_401(api):
    client, _, auth = api
    r = await client.get("/v1/model", headers={"Authorization": auth["Authorization"] + "x"})
    assert r.status == 401 and (await r.json())["error"] == "unauthorized"
    r = await client.get("/v1/model", headers={"Authorization": "Basic " + auth["Authorization"].split()[1]})
    assert r.status == 401


@pytest.mark.parametrize("host", ["evil.example", "evil.example:{port}", "127.0.0.1:1", "localhost", "192.168.1.2:{port}"])
async def test_foreign_host_header_is_refused_with_403_even_with_token(api, host):
    client, _, auth = api
    r = await client.get("/v1/model", headers={**auth, "Host": host.format(port=client.port)})
    assert r.status == 403 and (await r.json())["error"] == "forbidden_host"


@pytest.mark.parametrize("host", ["localhost:{port}", "127.0.0.1:{port}", "[::1]:{port}"])
async def test_loopback_host_headers_are_accepted(api, host):
    client, _, auth = api
    r = await client.get("/v1/model", headers={**auth, "Host": host.format(port=client.port)})
    assert r.status == 200


async def test_web_page_origin_is_refused_with_403(api):
    client, _, auth = api
    r = await client.get("/v1/model", headers={**auth, "Origin": "https://evil.example"})
    assert r.status == 403 and (await r.json())["error"] == "forbidden_origin"
    r = await client.options("/v1/checks", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert r.status == 403 and "Access-Control-Allow-Origin" not in r.headers


@pytest.mark.parametrize("origin", [EXT_A, EXT_B])
async def test_extension_origin_gets_preflight_and_cors_headers(api, origin):
    client, _, auth = api
    r = await client.options("/v1/checks", headers={"Origin": origin, "Access-Control-Request-Method": "POST",
                                                    "Access-Control-Request-Headers": "authorization, content-type"})
    assert r.status == 204
    assert r.headers["Access-Control-Allow-Origin"] == origin
    assert "Authorization" in r.headers["Access-Control-Allow-Headers"]
    r = await client.get("/v1/model", headers={**auth, "Origin": origin})
    assert r.status == 200 and r.headers["Access-Control-Allow-Origin"] == origin
    r = await client.get("/v1/model", headers={"Origin": origin})  # CORS does not replace the token
    assert r.status == 401 and r.headers["Access-Control-Allow-Origin"] == origin


async def pair_from(client, app, origin: str):
    return await client.post("/v1/pair", json={"code": app[PAIRING].code}, headers={"Origin": origin})


async def test_once_paired_only_the_paired_extensions_origin_is_accepted(api):
    client, app, auth = api
    assert (await pair_from(client, app, EXT_A)).status == 200
    r = await client.get("/v1/model", headers={**auth, "Origin": EXT_B})  # another installed extension, token or not
    assert r.status == 403 and (await r.json())["error"] == "forbidden_origin"
    assert "Access-Control-Allow-Origin" not in r.headers
    r = await client.options("/v1/pair", headers={"Origin": EXT_B, "Access-Control-Request-Method": "POST"})
    assert r.status == 403
    assert (await client.get("/v1/health", headers={"Origin": EXT_B})).status == 403
    r = await client.get("/v1/model", headers={**auth, "Origin": EXT_A})
    assert r.status == 200 and r.headers["Access-Control-Allow-Origin"] == EXT_A


async def test_a_new_pairing_records_the_new_extensions_origin(app_factory):
    """Firefox gives an extension a new origin per profile (and after a reinstall): pairing again
    with a fresh code (a restarted server) moves the server to the new origin."""
    client, app, auth = await app_factory()
    assert (await pair_from(client, app, EXT_A)).status == 200
    await client.close()
    client, app, auth = await app_factory()  # same config dir: a restart, a new pairing code
    assert (await pair_from(client, app, EXT_B)).status == 200
    assert (await client.get("/v1/model", headers={**auth, "Origin": EXT_B})).status == 200
    assert (await client.get("/v1/model", headers={**auth, "Origin": EXT_A})).status == 403


async def test_a_wrong_code_from_another_extension_records_nothing(app_factory):
    client, app, auth = await app_factory()
    assert (await pair_from(client, app, EXT_A)).status == 200
    await client.close()
    client, app, auth = await app_factory()  # a restart: a new code is out
    r = await client.post("/v1/pair", json={"code": "AAAA-AAAA"}, headers={"Origin": EXT_B})
    assert r.status == 401
    assert (await client.get("/v1/model", headers={**auth, "Origin": EXT_A})).status == 200
    assert (await client.get("/v1/model", headers={**auth, "Origin": EXT_B})).status == 403


async def test_an_install_paired_before_origins_were_recorded_adopts_the_first_extension_with_the_token(api):
    client, _, auth = api
    assert (await client.get("/v1/model", headers={**auth, "Origin": EXT_A})).status == 200
    assert (await client.get("/v1/model", headers={**auth, "Origin": EXT_B})).status == 403


async def test_configured_origin_is_allowed(app_factory):
    client, app, auth = await app_factory(allow_origins=("https://dev.example",))
    assert (await pair_from(client, app, EXT_A)).status == 200  # an --allow-origin stays allowed when paired
    r = await client.get("/v1/model", headers={**auth, "Origin": "https://dev.example"})
    assert r.status == 200 and r.headers["Access-Control-Allow-Origin"] == "https://dev.example"


async def test_requests_over_the_rate_limit_get_429_with_retry_after(app_factory):
    client, _, auth = await app_factory(rate_limit_per_min=5)
    statuses = [(await client.get("/v1/model", headers=auth)).status for _ in range(5)]
    r = await client.get("/v1/model", headers=auth)
    assert statuses == [200] * 5
    assert r.status == 429 and int(r.headers["Retry-After"]) >= 1 and (await r.json())["error"] == "rate_limited"


async def test_token_rotated_on_disk_takes_effect_at_once(api):
    client, app, auth = api
    app[TOKENS].rotate()
    assert (await client.get("/v1/model", headers=auth)).status == 401
    new = {"Authorization": f"Bearer {app[TOKENS].path.read_text().strip()}"}
    assert (await client.get("/v1/model", headers=new)).status == 200


# --- pairing ----------------------------------------------------------------------------------
async def test_pairing_code_is_exchanged_once_for_the_token(api):
    client, app, auth = api
    code = app[PAIRING].code
    r = await client.post("/v1/pair", json={"code": code.lower()})
    assert r.status == 200 and (await r.json())["token"] == auth["Authorization"].split()[1]
    r = await client.post("/v1/pair", json={"code": code})
    assert r.status == 401


async def test_wrong_pairing_codes_burn_the_code(api):
    client, app, _ = api
    for _ in range(5):
        r = await client.post("/v1/pair", json={"code": "AAAA-AAAA"})
        assert r.status == 401 and (await r.json())["error"] == "unauthorized"
    r = await client.post("/v1/pair", json={"code": app[PAIRING].code})
    assert r.status == 401 and "expired" in (await r.json())["message"]


async def test_pairing_page_is_public_html_without_the_code(api):
    client, app, _ = api
    r = await client.get("/pair")
    text = await r.text()
    assert r.status == 200 and r.content_type == "text/html" and app[PAIRING].code not in text


# --- request validation -----------------------------------------------------------------------
@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b"\xff\xfe"])
async def test_malformed_json_is_400_bad_request(api, body):
    client, _, auth = api
    r = await client.post("/v1/checks", data=body, headers={**auth, "Content-Type": "application/json"})
    assert r.status == 400 and (await r.json())["error"] == "bad_request"


@pytest.mark.parametrize("url", [None, 42, "", "not a url", "ftp://example.com/a.mp4", "file:///etc/passwd",
                                 "javascript:alert(1)", "https://", "http://example.com:99999/x"])
async def test_non_http_url_is_400_bad_url(api, url):
    client, _, auth = api
    r = await client.post("/v1/checks", json={"url": url}, headers=auth)
    assert r.status == 400 and (await r.json())["error"] == "bad_url"


@pytest.mark.parametrize("frames", [7, 0, "20", 20.5, True])
async def test_frames_outside_the_choices_is_400(api, frames):
    client, _, auth = api
    r = await client.post("/v1/checks", json={"url": "https://example.com/v.mp4", "frames": frames}, headers=auth)
    body = await r.json()
    assert r.status == 400 and body["error"] == "bad_request" and "10/20/40/60/80/100" in body["message"]


async def test_unknown_check_id_is_404(api):
    client, _, auth = api
    for path in ("/v1/checks/nope", "/v1/checks/nope/heatmap.png", "/v1/checks/nope/events",
                 "/v1/checks/AAAAAAAAAAAAAAAA", "/v1/checks/AAAAAAAAAAAAAAAA/heatmap.png",
                 "/v1/checks/AAAAAAAAAAAAAAAA/events"):
        r = await client.get(path, headers=auth)
        assert r.status == 404 and (await r.json())["error"] == "not_found"


async def test_unknown_endpoint_is_json_404(api):
    client, _, auth = api
    r = await client.get("/v1/nothing", headers=auth)
    assert r.status == 404 and (await r.json())["error"] == "not_found"


@pytest.mark.parametrize("url", ["http://127.0.0.1/v.mp4", "http://localhost:8080/", "http://10.0.0.1/v.mp4",
                                 "http://192.168.1.1/", "http://169.254.169.254/latest/meta-data/",
                                 "http://[::1]/v.mp4", "http://224.0.0.1/", "http://0.0.0.0/", "http://[::127.0.0.1]/v.mp4",
                                 "http://[::ffff:0:7f00:1]/", "http://[64:ff9b::7f00:1]/", "http://[2002:7f00:1::1]/"])
async def test_url_to_a_private_address_is_refused_with_403(api, url):
    client, _, auth = api
    r = await client.post("/v1/checks", json={"url": url}, headers=auth)
    assert r.status == 403 and (await r.json())["error"] == "private_address"


# --- uploads ----------------------------------------------------------------------------------
async def test_upload_over_limit_is_refused_with_413_and_nothing_is_kept(app_factory, tmp_path, media_dir):
    client, app, auth = await app_factory(max_upload_mb=1)
    big = tmp_path / "big.mp4"
    big.write_bytes((media_dir / "face.mp4").read_bytes() + bytes(2 * 1024 * 1024))
    r = await client.post("/v1/checks/upload", data=form(big), headers=auth)
    assert r.status == 413
    assert await r.json() == {"error": "too_large", "message": "File too large. Max limit 1MB."}
    assert leftover_media(app[CONFIG]) == []
    r = await client.post("/v1/checks/upload", data=form(media_dir / "face.jpg"), headers=auth)
    assert r.status in (200, 202)  # still serving


async def test_upload_over_limit_without_content_length_is_refused_while_streaming(app_factory):
    client, app, auth = await app_factory(max_upload_mb=1)

    async def body():
        yield b"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.mp4\"\r\n\r\n"
        yield b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2\x00\x00\x00\x00mdat"  # ftyp, then mdat to the end
        for _ in range(40):
            yield bytes(64 * 1024)
        yield b"\r\n--B--\r\n"

    r = await client.post("/v1/checks/upload", data=body(),
                          headers={**auth, "Content-Type": "multipart/form-data; boundary=B"})
    assert r.status == 413 and (await r.json())["error"] == "too_large"


async def test_text_file_named_mp4_is_refused_with_415(api, media_dir):
    client, _, auth = api
    r = await client.post("/v1/checks/upload", data=form(media_dir / "notes.mp4"), headers=auth)
    assert r.status == 415
    assert await r.json() == {"error": "unsupported_media", "message": "Only video or image files allowed."}


@pytest.mark.parametrize("first", [b"Good morning", b"Thisfree"])
async def test_text_that_starts_like_a_video_signature_is_refused_with_415(api, tmp_path, first):
    client, app, auth = api
    text = tmp_path / "notes.mp4"
    text.write_bytes(first + b" - and then an ordinary text file, line after line.\n" * 40)
    r = await client.post("/v1/checks/upload", data=form(text), headers=auth)
    assert r.status == 415 and (await r.json())["error"] == "unsupported_media"
    assert leftover_media(app[CONFIG]) == []


async def test_type_is_sniffed_from_content_not_the_file_name(api, media_dir):
    client, _, auth = api
    r = await client.post("/v1/checks/upload", data=form(media_dir / "face.jpg", name="holiday.txt"), headers=auth)
    assert r.status in (200, 202)


async def test_upload_without_file_part_or_not_multipart_is_400(api):
    client, _, auth = api
    fd = aiohttp.FormData()
    fd.add_field("frames", "20")
    fd.add_field("other", b"x", filename="x.bin")
    r = await client.post("/v1/checks/upload", data=fd, headers=auth)
    assert r.status == 400 and (await r.json())["error"] == "bad_request"
    r = await client.post("/v1/checks/upload", json={"file": "x"}, headers=auth)
    assert r.status == 400


async def test_upload_with_bad_frames_is_400(api, media_dir):
    client, app, auth = api
    r = await client.post("/v1/checks/upload", data=form(media_dir / "face.jpg", frames=13), headers=auth)
    assert r.status == 400 and (await r.json())["error"] == "bad_request"
    assert leftover_media(app[CONFIG]) == []


async def test_upload_is_checked_and_media_is_deleted_afterwards(api, media_dir):
    client, app, auth = api
    r = await client.post("/v1/checks/upload", data=form(media_dir / "face.mp4", frames=10), headers=auth)
    assert r.status == 202
    created = await r.json()
    body = await wait_done(client, auth, created["id"])
    assert body["status"] == "done" and body["source"] == "upload" and body["cached"] is False
    res = body["result"]
    assert res["verdict"] in VERDICTS and res["frames_analysed"] == 10 and res["model"] == "tiny"
    assert "file" not in res  # the worker's temp path is not reported
    assert res["heatmap_url"] == f"/v1/checks/{created['id']}/heatmap.png"
    r = await client.get(res["heatmap_url"], headers=auth)
    assert r.status == 200 and r.content_type == "image/png" and (await r.read()).startswith(b"\x89PNG")
    assert leftover_media(app[CONFIG]) == []


async def test_clip_without_face_is_done_with_no_face_verdict(api, media_dir):
    client, _, auth = api
    r = await client.post("/v1/checks/upload", data=form(media_dir / "noface.mp4", frames=10), headers=auth)
    body = await wait_done(client, auth, (await r.json())["id"])
    assert body["status"] == "done" and body["result"]["verdict"] == "NO_FACE"
    assert body["result"]["error"] == "No faces detected. Cannot process the video."
    assert body["result"]["heatmap_url"] is None


async def test_truncated_video_is_refused_before_queueing_and_server_keeps_serving(api, media_dir):
    client, _, auth = api
    r = await client.post("/v1/checks/upload", data=form(media_dir / "truncated.mp4", frames=10), headers=auth)
    body = await r.json()
    assert r.status == 415 and body["error"] == "unsupported_media" and "truncated" in body["message"], body
    r = await client.post("/v1/checks/upload", data=form(media_dir / "face.jpg", frames=10), headers=auth)
    body = await wait_done(client, auth, (await r.json())["id"])
    assert body["status"] == "done"


async def test_cache_hit_returns_the_same_verdict_without_running_the_model(app_factory, media_dir, worker):
    client, app, auth = await app_factory()
    r = await client.post("/v1/checks/upload", data=form(media_dir / "face.mp4", frames=10), headers=auth)
    first = await wait_done(client, auth, (await r.json())["id"])
    calls = worker.calls
    r = await client.post("/v1/checks/upload", data=form(media_dir / "face.mp4", name="renamed.mp4", frames=10), headers=auth)
    second = await r.json()
    assert r.status == 200 and second["status"] == "done" and second["cached"] is True
    assert second["result"]["verdict"] == first["result"]["verdict"]
    assert second["result"]["p_fake"] == first["result"]["p_fake"]
    assert worker.calls == calls
    # other frame counts are a different check
    r = await client.post("/v1/checks/upload", data=form(media_dir / "face.mp4", frames=20), headers=auth)
    assert r.status == 202


async def test_cache_survives_a_restart(app_factory, media_dir, worker, tmp_path):
    client, app, auth = await app_factory()
    r = await client.post("/v1/checks/upload", data=form(media_dir / "face.jpg", frames=10), headers=auth)
    first = await wait_done(client, auth, (await r.json())["id"])
    await client.close()  # runs the app's cleanup: the SQLite file is closed
    calls = worker.calls
    client2, _, auth2 = await app_factory()  # same data dir (tmp_path)
    r = await client2.post("/v1/checks/upload", data=form(media_dir / "face.jpg", frames=10), headers=auth2)
    body = await r.json()
    assert r.status == 200 and body["cached"] is True and body["result"]["p_fake"] == first["result"]["p_fake"]
    assert worker.calls == calls


async def test_a_url_checked_before_is_answered_from_the_cache_before_its_host_is_resolved(app_factory, media_server, worker):
    # checked once with private fetching allowed (the clip is served from 127.0.0.1) ...
    client, app, auth = await app_factory(allow_private_fetch=True)
    url = f"{media_server}/face.mp4"
    r = await client.post("/v1/checks", json={"url": url, "frames": 10}, headers=auth)
    first = await wait_done(client, auth, (await r.json())["id"])
    assert first["status"] == "done"
    await client.close()
    # ... the same URL is answered from the cache by a server that would refuse to fetch it: a
    # hit fetches nothing, so it neither resolves the host (no DNS lookup per hit) nor needs to
    calls = worker.calls
    client2, _, auth2 = await app_factory()
    r = await client2.post("/v1/checks", json={"url": url, "frames": 10}, headers=auth2)
    body = await r.json()
    assert r.status == 200 and body["cached"] is True and body["result"]["p_fake"] == first["result"]["p_fake"]
    assert worker.calls == calls
    # a URL not in the cache is still refused before any fetch
    r = await client2.post("/v1/checks", json={"url": f"{media_server}/noface.mp4", "frames": 10}, headers=auth2)
    assert r.status == 403 and (await r.json())["error"] == "private_address"


async def test_finished_checks_kept_in_memory_are_capped_oldest_first(app_factory, media_dir):
    client, app, auth = await app_factory(jobs_kept_max=3)
    r = await client.post("/v1/checks/upload", data=form(media_dir / "face.jpg", frames=10), headers=auth)
    ids = [(await wait_done(client, auth, (await r.json())["id"]))["id"]]
    for _ in range(4):  # cache hits: finished at once
        r = await client.post("/v1/checks/upload", data=form(media_dir / "face.jpg", frames=10), headers=auth)
        ids.append((await r.json())["id"])
        await asyncio.sleep(0.01)  # distinct finish times
    await app[JOBS].housekeeping()
    statuses = [(await client.get(f"/v1/checks/{cid}", headers=auth)).status for cid in ids]
    assert statuses == [404, 404, 200, 200, 200]


async def test_heatmaps_kept_in_memory_are_capped_in_bytes_newest_first(app_factory, media_dir):
    client, app, auth = await app_factory(heatmap_bytes_kept=100_000)  # the tiny model's heatmap: ~66 KB
    ids = []
    for name in ("face.jpg", "face.mp4"):
        r = await client.post("/v1/checks/upload", data=form(media_dir / name, frames=10), headers=auth)
        ids.append((await wait_done(client, auth, (await r.json())["id"]))["id"])
    statuses = [(await client.get(f"/v1/checks/{cid}/heatmap.png", headers=auth)).status for cid in ids]
    first = await (await client.get(f"/v1/checks/{ids[0]}", headers=auth)).json()
    assert statuses == [404, 200] and first["result"]["heatmap_url"] is None


async def test_cache_hits_keep_little_memory_each_however_many_there_are(app_factory, media_dir):
    """A burst of cache hits (one page of a feed, a load test) must not keep a copy of the result
    per check: finished checks stay readable for an hour, and memory must stay flat meanwhile."""
    import gc
    import tracemalloc

    client, app, auth = await app_factory()
    r = await client.post("/v1/checks/upload", data=form(media_dir / "face.mp4", frames=10), headers=auth)
    await wait_done(client, auth, (await r.json())["id"])
    only_jobs = [tracemalloc.Filter(True, "*/server/jobs.py", all_frames=True)]
    tracemalloc.start(10)
    try:
        gc.collect()
        before = tracemalloc.take_snapshot().filter_traces(only_jobs)
        for _ in range(200):
            r = await client.post("/v1/checks/upload", data=form(media_dir / "face.mp4", frames=10), headers=auth)
            assert r.status == 200
        gc.collect()
        after = tracemalloc.take_snapshot().filter_traces(only_jobs)
    finally:
        tracemalloc.stop()
    grown = sum(s.size_diff for s in after.compare_to(before, "filename"))
    assert grown / 200 < 1500, f"{grown / 200:.0f} bytes kept per cache hit"


async def test_the_default_ram_temp_dir_is_removed_at_shutdown(app_factory, media_dir):
    client, app, auth = await app_factory(plain_dir=None)  # the default: a directory in /dev/shm
    plain = app[PLAIN_DIR]
    assert plain.is_dir()
    r = await client.post("/v1/checks/upload", data=form(media_dir / "face.jpg", frames=10), headers=auth)
    assert r.status in (200, 202)
    await client.close()
    assert not plain.exists()


async def test_events_stream_pushes_status_changes_until_done(api, media_dir):
    client, _, auth = api
    r = await client.post("/v1/checks/upload", data=form(media_dir / "face.jpg", frames=10), headers=auth)
    check_id = (await r.json())["id"]
    r = await client.get(f"/v1/checks/{check_id}/events", headers=auth)
    assert r.status == 200 and r.headers["Content-Type"].startswith("text/event-stream")
    statuses = []
    async for line in r.content:
        if line.startswith(b"data: "):
            statuses.append(json.loads(line[6:])["status"])
    assert statuses[-1] == "done" and statuses.count("done") == 1
    assert all(s in ("queued", "detecting", "analysing", "done") for s in statuses)


# --- URLs -------------------------------------------------------------------------------------
async def test_identical_urls_in_flight_share_one_check(app_factory, hung_server):
    client, _, auth = await app_factory(allow_private_fetch=True, deadline_s=30)
    a = await (await client.post("/v1/checks", json={"url": hung_server}, headers=auth)).json()
    b = await (await client.post("/v1/checks", json={"url": hung_server + "#t=3"}, headers=auth)).json()
    assert a["id"] == b["id"]


async def test_full_queue_answers_503_with_retry_after(app_factory, hung_server, media_dir):
    client, _, auth = await app_factory(allow_private_fetch=True, queue_size=1, deadline_s=30)
    r = await client.post("/v1/checks", json={"url": hung_server}, headers=auth)
    assert r.status == 202
    r = await client.post("/v1/checks", json={"url": hung_server + "?other=1"}, headers=auth)
    assert r.status == 503 and r.headers["Retry-After"] == "10" and (await r.json())["error"] == "busy"
    r = await client.post("/v1/checks/upload", data=form(media_dir / "face.jpg"), headers=auth)
    assert r.status == 503


async def test_a_file_checked_before_is_answered_from_the_cache_even_when_the_queue_is_full(app_factory, hung_server, media_dir):
    client, app, auth = await app_factory(allow_private_fetch=True, queue_size=1, deadline_s=30)
    r = await client.post("/v1/checks/upload", data=form(media_dir / "face.jpg"), headers=auth)
    first = await wait_done(client, auth, (await r.json())["id"], timeout=60)
    assert first["status"] == "done"
    r = await client.post("/v1/checks", json={"url": hung_server}, headers=auth)  # fills the queue
    assert r.status == 202
    r = await client.post("/v1/checks/upload", data=form(media_dir / "face.jpg"), headers=auth)
    body = await r.json()
    assert r.status == 200 and body["cached"] and body["result"]["p_fake"] == first["result"]["p_fake"]
    r = await client.post("/v1/checks/upload", data=form(media_dir / "twofaces.mp4"), headers=auth)
    assert r.status == 503 and (await r.json())["error"] == "busy"
    assert [p for p in leftover_media(app[CONFIG]) if p.is_file()] == []  # the refused upload is not kept


async def test_hung_site_fails_the_check_with_timeout_at_the_deadline(app_factory, hung_server):
    client, app, auth = await app_factory(allow_private_fetch=True, deadline_s=3)
    t0 = asyncio.get_running_loop().time()
    r = await client.post("/v1/checks", json={"url": hung_server + "?hang"}, headers=auth)
    body = await wait_done(client, auth, (await r.json())["id"], timeout=30)
    assert body["status"] == "failed" and body["error"]["error"] == "timeout"
    assert asyncio.get_running_loop().time() - t0 < 15
    assert leftover_media(app[CONFIG]) == []


async def test_url_serving_a_non_video_fails_with_not_media(app_factory, media_server):
    client, app, auth = await app_factory(allow_private_fetch=True)
    r = await client.post("/v1/checks", json={"url": f"{media_server}/notes.mp4"}, headers=auth)
    body = await wait_done(client, auth, (await r.json())["id"])
    assert body["status"] == "failed"
    assert body["error"] == {"error": "not_media", "message": "The URL gave a file that is not a video or image."}
    assert leftover_media(app[CONFIG]) == []


async def test_shutdown_marks_unfinished_checks_failed_and_removes_media(app_factory, hung_server):
    client, app, auth = await app_factory(allow_private_fetch=True, deadline_s=60)
    r = await client.post("/v1/checks", json={"url": hung_server + "?shutdown"}, headers=auth)
    check = app[JOBS].get((await r.json())["id"])
    await asyncio.sleep(0.5)
    await client.close()
    assert check.status == "failed" and check.error["error"] == "internal"
    assert leftover_media(app[CONFIG]) == []


async def test_worker_crash_fails_that_check_only_and_a_fresh_worker_takes_the_next(api, media_dir, worker, shared_data):
    import os
    import signal

    client, app, auth = api
    clip = shared_data / "real" / "liveportrait-driving-d19.mp4"
    r = await client.post("/v1/checks/upload", data=form(clip, frames=100), headers=auth)
    check = app[JOBS].get((await r.json())["id"])
    for _ in range(200):
        if check.status == "detecting":
            break
        await asyncio.sleep(0.05)
    old_pid = worker.pid
    os.kill(old_pid, signal.SIGKILL)  # what a segfault in a native decoder looks like
    body = await wait_done(client, auth, check.id)
    assert body["status"] == "failed" and body["error"] == {"error": "internal", "message": "The detector crashed on this file."}
    r = await client.post("/v1/checks/upload", data=form(media_dir / "face.jpg", frames=10), headers=auth)
    body = await wait_done(client, auth, (await r.json())["id"])
    assert body["status"] == "done" and worker.pid != old_pid
    assert leftover_media(app[CONFIG]) == []


async def test_event_stream_and_errors_carry_cors_headers_for_the_extension(api, media_dir):
    client, _, auth = api
    origin = {"Origin": EXT_A}
    r = await client.get("/v1/checks/nope", headers={**auth, **origin})
    assert r.status == 404 and r.headers["Access-Control-Allow-Origin"] == origin["Origin"]
    r = await client.post("/v1/checks/upload", data=form(media_dir / "face.jpg", frames=10), headers=auth)
    check_id = (await r.json())["id"]
    r = await client.get(f"/v1/checks/{check_id}/events", headers={**auth, **origin})
    assert r.headers["Access-Control-Allow-Origin"] == origin["Origin"]
    await r.read()


async def test_sweeper_removes_stale_media_while_the_server_runs(app_factory):
    client, app, auth = await app_factory(sweep_every_s=0.1, media_max_age_s=0.5)
    stale = app[CONFIG].media_dir / "stale.enc"
    stale.write_bytes(b"x" * 100)
    for _ in range(50):
        if not stale.exists():
            break
        await asyncio.sleep(0.1)
    assert not stale.exists()
    r = await client.get("/v1/health")
    assert r.status == 200 and r.headers["Cache-Control"] == "no-store"


async def test_downloads_beyond_the_limit_wait_their_turn(app_factory, hung_server):
    client, app, auth = await app_factory(allow_private_fetch=True, max_downloads=1, deadline_s=30)
    a = await (await client.post("/v1/checks", json={"url": hung_server + "?a"}, headers=auth)).json()
    b = await (await client.post("/v1/checks", json={"url": hung_server + "?b"}, headers=auth)).json()
    await asyncio.sleep(1.0)
    assert app[JOBS].get(a["id"]).status == "downloading"
    assert app[JOBS].get(b["id"]).status == "queued"


async def test_pairing_attempts_are_rate_limited(app_factory):
    client, app, _ = await app_factory(pair_attempts_per_min=3)
    statuses = [(await client.post("/v1/pair", json={"code": "AAAA-AAAA"})).status for _ in range(4)]
    assert statuses == [401, 401, 401, 429]


async def test_expired_pairing_code_is_refused(api):
    client, app, _ = api
    app[PAIRING].expires = 0.0
    r = await client.post("/v1/pair", json={"code": app[PAIRING].code})
    assert r.status == 401 and "expired" in (await r.json())["message"]


async def test_multipart_with_invalid_headers_is_400_not_500(api):
    client, _, auth = api
    body = (b'--B\r\nContent-Disposition: form-data; name="\xf2\x87\x1d"\r\n\r\nnull\r\n'
            b'--B\r\nContent-Disposition: form-data; name="file"; filename="f"\r\n\r\nxx\r\n--B--\r\n')
    r = await client.post("/v1/checks/upload", data=body, headers={**auth, "Content-Type": "multipart/form-data; boundary=B"})
    assert r.status in (400, 415) and (await r.json())["error"] in ("bad_request", "unsupported_media")


NESTED = (b'--B\r\nContent-Disposition: form-data; name="file"\r\nContent-Type: multipart/mixed; boundary=C\r\n\r\n'
          b'--C\r\nContent-Disposition: file; filename="a.mp4"\r\n\r\nxx\r\n--C--\r\n--B--\r\n')


async def test_nested_multipart_part_is_refused_with_400(api):
    client, app, auth = api
    r = await client.post("/v1/checks/upload", data=NESTED, headers={**auth, "Content-Type": "multipart/form-data; boundary=B"})
    assert r.status == 400 and await r.json() == {"error": "bad_request", "message": "Nested multipart parts are not accepted."}
    assert leftover_media(app[CONFIG]) == []


async def test_wrong_method_is_405_with_allow_header(api):
    client, _, auth = api
    r = await client.delete("/v1/checks", headers=auth)
    assert r.status == 405 and r.headers["Allow"] == "POST" and (await r.json())["error"] == "method_not_allowed"
