"""HTTP handlers for the user's feedback: answers on checks, the history of checks, kept clips and
the personal calibration. Validate input -> the history store / personal cuts (server/history.py,
server/personal.py) -> JSON; errors are ApiError. Notes and addresses are never logged."""
from __future__ import annotations

import asyncio
import logging
import re

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from .api import CHECK_ID, _http_url, _json_body, _read_form, _unsupported
from .errors import ApiError
from .fetch import FetchError, resolves_to_private
from .history import FEEDBACK_FILTERS, LABELS, VERDICT_FILTERS, Entry, History
from .jobs import canonical_url
from .keys import CONFIG, HISTORY, JOBS, PERSONAL, WORKER
from .personal import MIN_ANSWERS, NotEnoughAnswers, fit, scored
from .private import own_dir

log = logging.getLogger(__name__)

MAX_PAGE = 200
DEFAULT_PAGE = 50
_ID = re.compile(f"^{CHECK_ID}$")


async def _call(request: web.Request, fn, *args):
    """A blocking history call, off the event loop."""
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


async def _entry(request: web.Request, entry_id: str) -> Entry:
    entry = await _call(request, request.app[HISTORY].get, entry_id)
    if entry is None:
        raise ApiError(404, "not_found", "No check with this id in the history (it may have been deleted).")
    return entry


# --- answers ---------------------------------------------------------------------------------------
async def post_feedback(request: web.Request) -> web.Response:
    """{"check_id", "label": "REAL" | "FAKE" | null, "note"}: the user's view of the truth; posting
    again replaces it, label null withdraws it."""
    body = await _json_body(request)
    check_id = body.get("check_id")
    if not isinstance(check_id, str) or not _ID.match(check_id):
        raise ApiError(400, "bad_request", "check_id must be a check's id.")
    if "label" not in body:
        raise ApiError(400, "bad_request", "label is required: REAL, FAKE, or null to withdraw the answer.")
    label = body["label"]
    if label is not None and label not in LABELS:
        raise ApiError(400, "bad_request", "label must be REAL, FAKE, or null to withdraw the answer.")
    note = body.get("note")
    if note is not None and not isinstance(note, str):
        raise ApiError(400, "bad_request", "note must be text or null.")
    limit = request.app[CONFIG].max_note_chars
    note = (note or "").strip() or None
    if note is not None and len(note) > limit:
        raise ApiError(400, "bad_request", f"note must be at most {limit} characters.")
    history = request.app[HISTORY]
    entry = await _call(request, history.answer, check_id, label, note)
    if entry is None:
        check = request.app[JOBS].checks.get(check_id)
        if check is not None and not check.finished:
            raise ApiError(409, "not_finished", "This check has not finished yet: answer once it has a verdict.")
        raise ApiError(404, "not_found", "No finished check with this id in the history (a failed check has no "
                                         "verdict to answer; a deleted one is gone).")
    return web.json_response(entry.to_json())


# --- the history -----------------------------------------------------------------------------------
def _int_param(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        raise ApiError(400, "bad_request", f"{name} must be a whole number from {low} to {high}.")
    return int(raw)


async def list_history(request: web.Request) -> web.Response:
    limit = _int_param(request, "limit", DEFAULT_PAGE, 1, MAX_PAGE)
    offset = _int_param(request, "offset", 0, 0, 10**9)
    verdict = request.query.get("verdict")
    if verdict is not None and verdict not in VERDICT_FILTERS:
        raise ApiError(400, "bad_request", f"verdict must be one of {', '.join(VERDICT_FILTERS)}.")
    feedback = request.query.get("feedback", "any")
    if feedback not in FEEDBACK_FILTERS:
        raise ApiError(400, "bad_request", f"feedback must be one of {', '.join(FEEDBACK_FILTERS)}.")
    entries, total = await _call(request, lambda: request.app[HISTORY].page(limit, offset, verdict, feedback))
    days = request.app[CONFIG].history_kept_s / 86400
    return web.json_response({"items": [e.to_json() for e in entries], "total": total, "limit": limit,
                              "offset": offset, "kept_days": round(days, 2)})


async def get_entry(request: web.Request) -> web.Response:
    return web.json_response((await _entry(request, request.match_info["id"])).to_json())


async def delete_entry(request: web.Request) -> web.Response:
    if not await _call(request, request.app[HISTORY].delete, request.match_info["id"]):
        raise ApiError(404, "not_found", "No check with this id in the history (it may have been deleted).")
    return web.json_response({"deleted": 1})


async def delete_history(request: web.Request) -> web.Response:
    return web.json_response({"deleted": await _call(request, request.app[HISTORY].delete_all)})


# --- kept clips ------------------------------------------------------------------------------------
async def keep_clip(request: web.Request) -> web.Response:
    """Keep this check's clip for retraining, encrypted at rest. Its media is long gone (deleted when
    the check ended), so it comes again: an upload's file (multipart 'file': the same bytes as
    checked), or a URL check's post, fetched again from the address in the JSON body (or the one the
    history kept), which must be the checked one."""
    history = request.app[HISTORY]
    entry = await _entry(request, request.match_info["id"])
    if entry.source == "frames":
        raise ApiError(409, "clip_unavailable", "Frames captured in the browser cannot be kept: only a file or a post's video.")
    own_dir(history.kept_dir)
    if request.content_type.startswith("multipart/"):
        media, ext = await _uploaded_clip(request, history, entry)
    elif entry.source == "upload":
        raise ApiError(400, "bad_request", "Send the checked file again as multipart/form-data with a 'file' part.")
    else:
        media, ext = await _fetched_clip(request, history, entry)
    kept = await _call(request, history.keep_clip, entry.id, media, ext)
    if kept is None:
        raise ApiError(404, "not_found", "The entry was deleted meanwhile.")
    return web.json_response(kept.to_json())


async def _uploaded_clip(request: web.Request, history: History, entry: Entry):
    config = request.app[CONFIG]
    too_large = ApiError(413, "too_large", f"File too large. Max limit {config.max_upload_mb}MB.")
    if request.content_length is not None and request.content_length > config.max_upload_bytes + 1024 * 1024:
        raise too_large
    try:
        _, media = await _read_form(await request.multipart(), history.clips, config.max_upload_bytes, too_large)
    except (ValueError, AssertionError, HttpProcessingError):
        raise ApiError(400, "bad_request", "Malformed multipart body.") from None
    if media is None:
        raise ApiError(400, "bad_request", "No 'file' part in the upload.")
    sniffed = media.sniffed
    if sniffed is None or media.size == 0:
        media.path.unlink(missing_ok=True)
        raise _unsupported()
    if entry.content_sha256 is None or media.sha256 != entry.content_sha256:
        media.path.unlink(missing_ok=True)
        raise ApiError(409, "clip_mismatch", "This is not the file that was checked (its bytes differ).")
    return media, sniffed[1]


async def _fetched_clip(request: web.Request, history: History, entry: Entry):
    config = request.app[CONFIG]
    url = entry.url
    if request.can_read_body:
        body = await _json_body(request)
        if body.get("url") is not None:
            url = _http_url(body["url"], "url")
    if url is None:
        raise ApiError(400, "bad_request", "url is required: the history did not keep this check's address.")
    if entry.url_digest is None or history.url_digest(canonical_url(url)) != entry.url_digest:
        raise ApiError(409, "clip_mismatch", "This is not the address that was checked.")
    if not config.allow_private_fetch and await resolves_to_private(url):
        raise ApiError(403, "private_address", "The URL points to a private or local network address; refused.")
    try:
        media = await request.app[JOBS].download(url, history.clips)
    except FetchError as e:
        raise ApiError(422, e.code, e.message) from None
    sniffed = media.sniffed
    if sniffed is None:
        media.path.unlink(missing_ok=True)
        raise ApiError(422, "not_media", "The URL gave a file that is not a video or image.")
    return media, sniffed[1]


async def drop_clip(request: web.Request) -> web.Response:
    entry = await _call(request, request.app[HISTORY].drop_clip, request.match_info["id"])
    if entry is None:
        raise ApiError(404, "not_found", "No check with this id in the history (it may have been deleted).")
    return web.json_response(entry.to_json())


# --- personal calibration --------------------------------------------------------------------------
def _calibration_state(request: web.Request) -> dict:
    info = request.app[WORKER].info
    sha = info.get("sha256")
    history, personal = request.app[HISTORY], request.app[PERSONAL]
    cuts = personal.for_model(sha)
    return {
        "model": {"name": info.get("name"), "threshold": info.get("threshold"),
                  "uncertain_band": info.get("uncertain_band")},
        "calibration": "personal" if cuts else "model",
        "personal": cuts.to_json() if cuts else None,
        "min_answers": MIN_ANSWERS,
        "usable_answers": len(scored(history.answered(sha))),
        "answers": history.counts(sha),
    }


async def get_calibration(request: web.Request) -> web.Response:
    return web.json_response(await _call(request, _calibration_state, request))


async def refit_calibration(request: web.Request) -> web.Response:
    info = request.app[WORKER].info
    history, personal = request.app[HISTORY], request.app[PERSONAL]

    def refit() -> dict:
        try:
            cuts = fit(history.answered(info.get("sha256")), float(info.get("threshold")),
                       float(info.get("uncertain_band")), info.get("name"), info.get("sha256"))
        except NotEnoughAnswers as e:
            raise ApiError(409, "not_enough_answers", str(e)) from None
        personal.save(cuts)
        log.info("personal calibration fitted on %d answers: threshold %.4f, band %.4f",
                 cuts.answers, cuts.threshold, cuts.uncertain_band)
        return _calibration_state(request)

    return web.json_response(await _call(request, refit))


async def undo_calibration(request: web.Request) -> web.Response:
    if await _call(request, request.app[PERSONAL].undo):
        log.info("personal calibration undone: the model's own cuts apply")
    return web.json_response(await _call(request, _calibration_state, request))


def routes() -> list[web.RouteDef]:
    entry = f"/v1/history/{{id:{CHECK_ID}}}"
    return [
        web.post("/v1/feedback", post_feedback),
        web.get("/v1/history", list_history),
        web.delete("/v1/history", delete_history),
        web.get(entry, get_entry),
        web.delete(entry, delete_entry),
        web.put(f"{entry}/clip", keep_clip),
        web.delete(f"{entry}/clip", drop_clip),
        web.get("/v1/calibration", get_calibration),
        web.post("/v1/calibration", refit_calibration),
        web.delete("/v1/calibration", undo_calibration),
    ]
