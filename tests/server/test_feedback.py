"""Feedback on checks, the history, kept clips and the personal calibration through the API, on an
app that shares the session's real inference worker (the tiny untrained model: verdicts are never
asserted, only what the history and the answers say about them), with the history in the app's real
SQLite file."""
from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import stat
import time

import aiohttp
import pytest
from server_support import wait_done
from test_frames import frames_form

from server.history import SCHEMA_VERSION, Entry, History, HistoryError
from server.keys import CONFIG, HISTORY, TOKENS
from server.media import MAGIC
from server.personal import MIN_ANSWERS

pytestmark = pytest.mark.asyncio
ID = "AAAAAAAAAAAAAAAA"  # a well-formed check id nobody has


def file_form(path) -> aiohttp.FormData:
    fd = aiohttp.FormData()
    fd.add_field("file", path.read_bytes(), filename=path.name, content_type="application/octet-stream")
    return fd


async def upload(client, auth, path) -> dict:
    r = await client.post("/v1/checks/upload", data=file_form(path), headers=auth)
    assert r.status in (200, 202), await r.text()
    body = await r.json()
    return body if body["status"] == "done" else await wait_done(client, auth, body["id"])


async def answer(client, auth, check_id, label, note=None, **extra):
    r = await client.post("/v1/feedback", json={"check_id": check_id, "label": label, "note": note, **extra}, headers=auth)
    return r.status, await r.json()


def rows(app) -> list[tuple]:
    """The history table as SQLite has it on disk (not through the server's own code)."""
    db = sqlite3.connect(app[CONFIG].cache_path)
    try:
        return db.execute("SELECT id, label, note, clip, url, site, content_sha256 FROM history").fetchall()
    finally:
        db.close()


# --- answers ---------------------------------------------------------------------------------------
async def test_an_uploaded_check_is_in_the_history_with_its_content_hash_and_no_site(api, media_dir):
    client, app, auth = api
    check = await upload(client, auth, media_dir / "face.mp4")
    r = await client.get(f"/v1/history/{check['id']}", headers=auth)
    entry = await r.json()
    assert r.status == 200
    assert entry["content_sha256"] == hashlib.sha256((media_dir / "face.mp4").read_bytes()).hexdigest()
    assert (entry["source"], entry["site"], entry["url"], entry["feedback"], entry["clip_kept"]) == ("upload", None, None, None, False)
    assert (entry["verdict"], entry["p_fake"], entry["calibration"]) == (
        check["result"]["verdict"], check["result"]["p_fake"], check["result"]["calibration"])


async def test_a_url_check_keeps_the_sites_host_but_not_the_address_unless_asked(app_factory, media_server):
    client, app, auth = await app_factory(allow_private_fetch=True)
    url = f"{media_server}/face.mp4?secret=1"
    r = await client.post("/v1/checks", json={"url": url}, headers=auth)
    plain = await wait_done(client, auth, (await r.json())["id"], timeout=120)
    r = await client.post("/v1/checks", json={"url": url, "remember_url": True}, headers=auth)  # cached: a new entry
    kept = await r.json()
    by_id = {row[0]: row for row in rows(app)}
    assert by_id[plain["id"]][4:6] == (None, "127.0.0.1")
    assert by_id[kept["id"]][4:6] == (url, "127.0.0.1")
    assert "secret" not in json.dumps([row for row in rows(app) if row[0] == plain["id"]])


async def test_answering_records_the_label_and_note_and_posting_again_replaces_them(api, media_dir):
    client, app, auth = api
    check = await upload(client, auth, media_dir / "face.mp4")
    status, entry = await answer(client, auth, check["id"], "REAL", "my cousin's wedding")
    assert status == 200 and entry["feedback"]["label"] == "REAL" and entry["feedback"]["note"] == "my cousin's wedding"
    assert entry["feedback"]["agrees"] == (check["result"]["verdict"] == "REAL")
    status, entry = await answer(client, auth, check["id"], "FAKE")
    assert status == 200 and (entry["feedback"]["label"], entry["feedback"]["note"]) == ("FAKE", None)
    assert [r[1:3] for r in rows(app) if r[0] == check["id"]] == [("FAKE", None)]


async def test_label_null_withdraws_the_answer_and_its_note(api, media_dir):
    client, app, auth = api
    check = await upload(client, auth, media_dir / "face.mp4")
    await answer(client, auth, check["id"], "FAKE", "looks off")
    status, entry = await answer(client, auth, check["id"], None, "ignored")
    assert status == 200 and entry["feedback"] is None
    assert [r[1:3] for r in rows(app) if r[0] == check["id"]] == [(None, None)]


@pytest.mark.parametrize("body, status, code", [
    ({"check_id": ID, "label": "REAL"}, 404, "not_found"),
    ({"check_id": "../../etc/passwd", "label": "REAL"}, 400, "bad_request"),
    ({"check_id": 12, "label": "REAL"}, 400, "bad_request"),
    ({"label": "REAL"}, 400, "bad_request"),
    ({"check_id": "{id}", "label": "real"}, 400, "bad_request"),
    ({"check_id": "{id}", "label": "MAYBE"}, 400, "bad_request"),
    ({"check_id": "{id}", "label": True}, 400, "bad_request"),
    ({"check_id": "{id}"}, 400, "bad_request"),
    ({"check_id": "{id}", "label": "REAL", "note": "x" * 1001}, 400, "bad_request"),
    ({"check_id": "{id}", "label": "REAL", "note": ["a list"]}, 400, "bad_request"),
])
async def test_bad_answers_get_a_clear_4xx_and_the_server_keeps_serving(api, media_dir, body, status, code):
    client, app, auth = api
    check = await upload(client, auth, media_dir / "face.mp4")
    body = {k: (check["id"] if v == "{id}" else v) for k, v in body.items()}
    r = await client.post("/v1/feedback", json=body, headers=auth)
    got = await r.json()
    assert (r.status, got["error"]) == (status, code) and got["message"]
    assert [r[1] for r in rows(app) if r[0] == check["id"]] == [None]  # nothing was recorded
    status, entry = await answer(client, auth, check["id"], "REAL", "x" * 1000)  # the limit itself is fine
    assert status == 200 and len(entry["feedback"]["note"]) == 1000


async def test_a_body_that_is_not_json_is_400(api):
    client, _, auth = api
    r = await client.post("/v1/feedback", data=b"label=REAL", headers={**auth, "Content-Type": "application/json"})
    assert r.status == 400 and (await r.json())["error"] == "bad_request"


@pytest.mark.parametrize("method, path", [
    ("POST", "/v1/feedback"), ("GET", "/v1/history"), ("DELETE", "/v1/history"), ("GET", f"/v1/history/{ID}"),
    ("DELETE", f"/v1/history/{ID}"), ("PUT", f"/v1/history/{ID}/clip"), ("GET", "/v1/calibration"),
    ("POST", "/v1/calibration"), ("DELETE", "/v1/calibration"),
])
async def test_another_servers_token_is_refused_with_401_and_changes_nothing(app_factory, tmp_path, media_dir, method, path):
    client, app, auth = await app_factory()
    _, other, _ = await app_factory(config_dir=tmp_path / "other-config", data_dir=tmp_path / "other-data")
    check = await upload(client, auth, media_dir / "face.mp4")
    await answer(client, auth, check["id"], "FAKE")
    foreign = {"Authorization": f"Bearer {other[TOKENS].token}"}
    r = await client.request(method, path, json={"check_id": check["id"], "label": "REAL"}, headers=foreign)
    assert r.status == 401 and (await r.json())["error"] == "unauthorized"
    assert [r[:2] for r in rows(app)] == [(check["id"], "FAKE")]


# --- the history -----------------------------------------------------------------------------------
async def test_history_lists_newest_first_in_pages_and_filters_by_verdict_and_answer(api, media_dir):
    client, app, auth = api
    ids = [(await upload(client, auth, media_dir / "face.mp4"))["id"] for _ in range(3)]  # one analysis, two cache hits
    noface = (await upload(client, auth, media_dir / "noface.mp4"))["id"]
    verdict = (await (await client.get(f"/v1/history/{ids[0]}", headers=auth)).json())["verdict"]
    await answer(client, auth, ids[0], "REAL")
    await answer(client, auth, ids[1], "FAKE")

    async def page(**q):
        r = await client.get("/v1/history", params=q, headers=auth)
        assert r.status == 200
        return await r.json()

    everything = await page()
    assert [e["id"] for e in everything["items"]] == [noface, *ids[::-1]] and everything["total"] == 4
    assert everything["kept_days"] == 30
    second = await page(limit=2, offset=2)
    assert [e["id"] for e in second["items"]] == ids[1::-1] and second["total"] == 4
    assert [e["id"] for e in (await page(verdict="NO_FACE"))["items"]] == [noface]
    assert {e["id"] for e in (await page(verdict=verdict))["items"]} == set(ids)
    assert [e["id"] for e in (await page(feedback="REAL"))["items"]] == [ids[0]]
    assert [e["id"] for e in (await page(feedback="none"))["items"]] == [noface, ids[2]]
    agrees = ids[0] if verdict == "REAL" else ids[1] if verdict == "FAKE" else None
    assert [e["id"] for e in (await page(feedback="agrees"))["items"]] == ([agrees] if agrees else [])
    assert {e["id"] for e in (await page(feedback="disagrees"))["items"]} == {ids[0], ids[1]} - {agrees}


@pytest.mark.parametrize("query", ["limit=0", "limit=201", "limit=ten", "offset=-1", "offset=%C2%B2",
                                   "verdict=MAYBE", "verdict=real", "feedback=yes"])
async def test_bad_history_queries_are_400(api, query):
    client, _, auth = api
    r = await client.get(f"/v1/history?{query}", headers=auth)
    body = await r.json()
    assert r.status == 400 and body["error"] == "bad_request" and body["message"]


async def test_unanswered_entries_are_purged_after_30_days_and_answered_ones_stay(api, media_dir):
    client, app, auth = api
    old, answered = [(await upload(client, auth, media_dir / "face.mp4"))["id"] for _ in range(2)]
    await answer(client, auth, answered, "REAL")
    history = app[HISTORY]
    assert history.purge(app[CONFIG].history_kept_s, now=time.time() + 29 * 86400) == 0
    assert history.purge(app[CONFIG].history_kept_s, now=time.time() + 31 * 86400) == 1
    assert [r[0] for r in rows(app)] == [answered] and old != answered


# --- deleting and kept clips -------------------------------------------------------------------------
def kept_files(app) -> list:
    d = app[CONFIG].kept_dir
    return sorted(d.iterdir()) if d.exists() else []


async def keep(client, auth, check_id, path):
    r = await client.put(f"/v1/history/{check_id}/clip", data=file_form(path), headers=auth)
    return r.status, await r.json()


async def test_a_kept_clip_is_encrypted_at_rest_and_deleting_its_entry_removes_row_and_clip(api, media_dir):
    client, app, auth = api
    check = await upload(client, auth, media_dir / "face.mp4")
    status, entry = await keep(client, auth, check["id"], media_dir / "face.mp4")
    assert status == 200 and entry["clip_kept"] is True
    [clip] = kept_files(app)
    data, plain = clip.read_bytes(), (media_dir / "face.mp4").read_bytes()
    assert data.startswith(MAGIC) and plain[:64] not in data and plain[-64:] not in data
    assert stat.S_IMODE(clip.stat().st_mode) == 0o600
    r = await client.delete(f"/v1/history/{check['id']}", headers=auth)
    assert (r.status, await r.json()) == (200, {"deleted": 1})
    assert rows(app) == [] and kept_files(app) == []
    r = await client.delete(f"/v1/history/{check['id']}", headers=auth)
    assert r.status == 404 and (await r.json())["error"] == "not_found"


async def test_deleting_the_whole_history_removes_every_row_and_every_kept_clip(api, media_dir):
    client, app, auth = api
    first = await upload(client, auth, media_dir / "face.mp4")
    second = await upload(client, auth, media_dir / "face.jpg")
    await answer(client, auth, first["id"], "REAL")
    for c, path in ((first, "face.mp4"), (second, "face.jpg")):
        assert (await keep(client, auth, c["id"], media_dir / path))[0] == 200
    assert len(kept_files(app)) == 2 and len(rows(app)) == 2
    r = await client.delete("/v1/history", headers=auth)
    assert (r.status, await r.json()) == (200, {"deleted": 2})
    assert rows(app) == [] and kept_files(app) == []


async def test_stopping_to_keep_a_clip_deletes_its_file_and_keeps_the_entry(api, media_dir):
    client, app, auth = api
    check = await upload(client, auth, media_dir / "face.mp4")
    await keep(client, auth, check["id"], media_dir / "face.mp4")
    r = await client.delete(f"/v1/history/{check['id']}/clip", headers=auth)
    assert r.status == 200 and (await r.json())["clip_kept"] is False
    assert kept_files(app) == [] and [r[3] for r in rows(app)] == [None]


async def test_keeping_other_bytes_than_the_checked_file_is_refused_with_409(api, media_dir):
    client, app, auth = api
    check = await upload(client, auth, media_dir / "face.mp4")
    status, body = await keep(client, auth, check["id"], media_dir / "noface.mp4")
    assert (status, body["error"]) == (409, "clip_mismatch")
    status, body = await keep(client, auth, check["id"], media_dir / "notes.mp4")
    assert (status, body["error"]) == (415, "unsupported_media")
    status, body = await keep(client, auth, ID, media_dir / "face.mp4")
    assert (status, body["error"]) == (404, "not_found")
    assert kept_files(app) == [] and [r[3] for r in rows(app)] == [None]


async def test_captured_frames_cannot_be_kept_409(api, media_dir):
    import media
    from test_frames import encode
    client, app, auth = api
    r = await client.post("/v1/checks/frames", data=frames_form([encode(f) for f in media.face_frames(3)],
                                                                 page_url="https://www.example.org/live"), headers=auth)
    check = await wait_done(client, auth, (await r.json())["id"])
    assert [row[5] for row in rows(app)] == ["www.example.org"]  # the page's host, not its address
    r = await client.put(f"/v1/history/{check['id']}/clip", json={}, headers=auth)
    assert r.status == 409 and (await r.json())["error"] == "clip_unavailable"


async def test_keeping_a_posts_clip_fetches_it_again_only_from_the_address_that_was_checked(app_factory, media_server):
    client, app, auth = await app_factory(allow_private_fetch=True)
    url = f"{media_server}/face.mp4"
    r = await client.post("/v1/checks", json={"url": url}, headers=auth)
    check = await wait_done(client, auth, (await r.json())["id"], timeout=120)
    r = await client.put(f"/v1/history/{check['id']}/clip", json={"url": f"{media_server}/noface.mp4"}, headers=auth)
    assert r.status == 409 and (await r.json())["error"] == "clip_mismatch" and kept_files(app) == []
    r = await client.put(f"/v1/history/{check['id']}/clip", json={}, headers=auth)  # the address was not kept
    assert r.status == 400 and (await r.json())["error"] == "bad_request"
    r = await client.put(f"/v1/history/{check['id']}/clip", json={"url": url + "#t=3"}, headers=auth)
    assert r.status == 200 and (await r.json())["clip_kept"] is True
    [clip] = kept_files(app)
    assert clip.read_bytes().startswith(MAGIC) and list(app[CONFIG].fetch_dir.iterdir()) == []


# --- storage -------------------------------------------------------------------------------------------
async def test_the_history_file_and_the_clip_key_are_readable_by_the_owner_only(api, media_dir):
    client, app, auth = api
    await upload(client, auth, media_dir / "face.mp4")
    config = app[CONFIG]
    assert stat.S_IMODE(os.stat(config.cache_path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(config.clip_key_path).st_mode) == 0o600


async def test_a_cache_from_before_the_history_is_migrated_and_keeps_its_results(tmp_path):
    path = tmp_path / "cache.sqlite3"
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE results (key TEXT PRIMARY KEY, result TEXT NOT NULL, created REAL NOT NULL)")
    old.execute("INSERT INTO results VALUES ('sha:abc', '{\"verdict\": \"REAL\"}', 1.0)")
    old.commit()
    old.close()
    history = History(path, tmp_path / "kept", tmp_path / "clips.key")
    history.add(Entry(id=ID, created=2.0, source="upload", verdict="REAL"))
    history.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert db.execute("SELECT key, result FROM results").fetchall() == [("sha:abc", '{"verdict": "REAL"}')]
    assert db.execute("SELECT id, verdict FROM history").fetchall() == [(ID, "REAL")]
    db.close()
    History(path, tmp_path / "kept", tmp_path / "clips.key").close()  # opening it again changes nothing


async def test_a_history_written_by_a_newer_version_is_refused_not_damaged(tmp_path):
    path = tmp_path / "cache.sqlite3"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(HistoryError, match="newer"):
        History(path, tmp_path / "kept", tmp_path / "clips.key")


# --- personal calibration -------------------------------------------------------------------------------
def add_answered(app, worker, scores_and_labels, start: int = 0) -> None:
    """Answered checks of the running model in the app's history, each of its own video."""
    history = app[HISTORY]
    for i, (p, label) in enumerate(scores_and_labels, start):
        entry_id = f"answered{i:08d}"
        history.add(Entry(id=entry_id, created=1000.0 + i, source="upload", verdict="UNCERTAIN", p_fake=p,
                          model_sha256=worker.info["sha256"], content_sha256=hashlib.sha256(entry_id.encode()).hexdigest()))
        history.answer(entry_id, label, None)


async def test_personal_calibration_is_refused_below_20_answered_videos(api, worker, media_dir):
    client, app, auth = api
    add_answered(app, worker, [(0.3, "REAL")] * (MIN_ANSWERS - 1))
    for _ in range(3):  # one more video, answered on three checks: it counts once, and without a score not at all
        check = await upload(client, auth, media_dir / "noface.mp4")
        assert (await answer(client, auth, check["id"], "REAL"))[0] == 200
    r = await client.post("/v1/calibration", headers=auth)
    body = await r.json()
    assert r.status == 409 and body["error"] == "not_enough_answers" and "there are 19" in body["message"]
    state = await (await client.get("/v1/calibration", headers=auth)).json()
    assert (state["calibration"], state["usable_answers"], state["min_answers"]) == ("model", 19, 20)
    assert not app[CONFIG].personal_calibration_path.exists()


async def test_results_name_the_personal_cuts_after_a_refit_and_the_models_after_undo(api, worker, media_dir):
    client, app, auth = api
    add_answered(app, worker, [(0.5 + 0.01 * i, "REAL") for i in range(MIN_ANSWERS)])
    r = await client.post("/v1/calibration", headers=auth)
    state = await r.json()
    assert r.status == 200 and state["calibration"] == "personal"
    cuts, model = state["personal"], state["model"]
    assert cuts["threshold"] + cuts["uncertain_band"] > model["threshold"] + model["uncertain_band"]
    assert (cuts["answers"], cuts["reals"], sum(cuts["before"]["real"].values())) == (20, 20, 20)
    check = await upload(client, auth, media_dir / "face.mp4")
    result = check["result"]
    assert result["p_fake"] is not None, result  # a verdict the cuts decide
    assert (result["calibration"], result["threshold"], result["uncertain_band"]) == (
        "personal", cuts["threshold"], cuts["uncertain_band"])
    assert (await (await client.get(f"/v1/history/{check['id']}", headers=auth)).json())["calibration"] == "personal"
    r = await client.delete("/v1/calibration", headers=auth)
    assert r.status == 200 and (await r.json())["calibration"] == "model"
    result = (await upload(client, auth, media_dir / "face.mp4"))["result"]
    assert (result["calibration"], result["threshold"]) == ("model", model["threshold"])


async def test_the_answers_count_how_often_this_models_fake_and_real_badges_were_wrong(api, worker):
    client, app, auth = api
    sha, history = worker.info["sha256"], app[HISTORY]
    shown = ["FAKE"] * 4 + ["REAL"] * 3 + ["UNCERTAIN"]
    for i, verdict in enumerate(shown):
        history.add(Entry(id=f"{i:016d}", created=1000.0 + i, source="upload", verdict=verdict, p_fake=0.5, model_sha256=sha))
    history.add(Entry(id="other-model-0000", created=1.0, source="upload", verdict="FAKE", p_fake=0.9, model_sha256="x"))
    for i, label in enumerate(["REAL", "REAL", "FAKE", None, "FAKE", "REAL", "REAL", "FAKE"]):
        if label:
            assert (await answer(client, auth, f"{i:016d}", label))[0] == 200
    await answer(client, auth, "other-model-0000", "REAL")  # another model's check: not this model's record
    counts = (await (await client.get("/v1/calibration", headers=auth)).json())["answers"]
    assert counts == {"answers": 7, "fake_verdicts": 3, "fake_marked_real": 2, "real_verdicts": 3,
                      "real_marked_fake": 1, "uncertain_answered": 1}
