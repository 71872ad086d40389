"""HTTP handlers: validate input -> call the job service -> JSON. Errors are ApiError (errors.py)."""
from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import BodyPartReader, MultipartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from .auth import is_extension_origin
from .config import VERSION
from .errors import ApiError
from .fetch import resolves_to_private
from .frames import MAX_TIMES_BYTES, inspect, pack, parse_times
from .keys import CONFIG, FETCHER, JOBS, PAIRED_ORIGIN, PAIRING, STORE, WORKER
from .media import SNIFF_BYTES, MediaStore, StoredMedia, sniff

OPENAPI_PATH = Path(__file__).with_name("openapi.json")
MAX_URL_LEN = 4096
MULTIPART_OVERHEAD = 1024 * 1024  # part headers and boundaries a multipart body may add to its files' bytes
FRAMES_FIELD_BYTES = 16  # the 'frames' part: "20"
# lines a multipart body may have outside its parts' contents (preamble, boundaries, part headers):
# ~6 a part, and a frames form has up to 104 parts
MAX_FORM_LINES = 2048
CHECK_ID = "[A-Za-z0-9_-]{16}"  # secrets.token_urlsafe(12) (jobs.py); "upload" never matches
EVENTS_HEARTBEAT_S = 15.0
PAIR_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Deepfake Check: pairing</title>
<style>body{font:16px system-ui,sans-serif;max-width:36em;margin:3em auto;padding:0 1em}</style></head>
<body><h1>Deepfake Check</h1>
<p id="status">If the Deepfake Check extension is installed, it shows a button above:
click it to pair the extension with this server.</p>
<p>Otherwise, open the extension's options and enter the pairing code shown in the server's terminal.</p>
</body></html>
"""


async def _json_body(request: web.Request) -> dict:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, "bad_request", "The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise ApiError(400, "bad_request", "The request body must be a JSON object.")
    return body


def _http_url(value, field: str) -> str:
    if not isinstance(value, str) or len(value) > MAX_URL_LEN:
        raise ApiError(400, "bad_url", f"{field} must be an http(s) URL.")
    try:
        parts = urlsplit(value.strip())
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        ok = False
    if not ok:
        raise ApiError(400, "bad_url", f"{field} must be an http(s) URL.")
    return value.strip()


async def health(request: web.Request) -> web.Response:
    monitor = request.app[FETCHER]
    return web.json_response({"ok": True, "version": VERSION, "fetcher": monitor.describe(await monitor.current())})


async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=OPENAPI_PATH.read_bytes(), content_type="application/json")


async def pair(request: web.Request) -> web.Response:
    body = await _json_body(request)
    code = body.get("code")
    if not isinstance(code, str):
        raise ApiError(400, "bad_request", "code is required.")
    token = request.app[PAIRING].exchange(code)
    origin = request.headers.get("Origin")
    if origin and is_extension_origin(origin):  # from now on, the only extension the server answers
        request.app[PAIRED_ORIGIN].set(origin)
    return web.json_response({"token": token})


async def pair_page(request: web.Request) -> web.Response:
    return web.Response(text=PAIR_PAGE, content_type="text/html", headers={
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
        "Referrer-Policy": "no-referrer",
    })


async def model_info(request: web.Request) -> web.Response:
    info = request.app[WORKER].info
    return web.json_response({k: info.get(k) for k in ("name", "backbone", "mode", "frames", "input_size", "device")})


async def create_check(request: web.Request) -> web.Response:
    body = await _json_body(request)
    jobs, config = request.app[JOBS], request.app[CONFIG]
    url = _http_url(body.get("url"), "url")
    if body.get("page_url") is not None:
        _http_url(body["page_url"], "page_url")  # accepted for the record; never fetched
    frames = jobs.validate_frames(body.get("frames"))
    use_cookies = body.get("use_cookies", False)
    if not isinstance(use_cookies, bool):
        raise ApiError(400, "bad_request", "use_cookies must be true or false.")
    remember_url = body.get("remember_url", False)
    if not isinstance(remember_url, bool):
        raise ApiError(400, "bad_request", "remember_url must be true or false.")
    # a URL checked before (or being checked) is answered without a fetch, so without resolving
    # its host: a cache hit costs no DNS lookup
    check = await jobs.known_url(url, frames, remember_url)
    if check is None:
        if not config.allow_private_fetch and await resolves_to_private(url):
            raise ApiError(403, "private_address", "The URL points to a private or local network address; refused.")
        check = jobs.submit_url(url, frames, use_cookies=use_cookies, remember_url=remember_url)
    if check.status == "done" and check.cached:
        return web.json_response(jobs.snapshot(check), status=200)
    return web.json_response({"id": check.id, "status": check.status}, status=202)


async def upload_check(request: web.Request) -> web.Response:
    jobs, config, store = request.app[JOBS], request.app[CONFIG], request.app[STORE]
    limit = config.max_upload_bytes
    too_large = ApiError(413, "too_large", f"File too large. Max limit {config.max_upload_mb}MB.")
    if not request.content_type.startswith("multipart/"):
        raise ApiError(400, "bad_request", "Send the file as multipart/form-data with a 'file' part.")
    if jobs.closing:
        jobs.ensure_capacity()  # shutting down: refuse before reading
    # A full queue is only known to matter once the file's sha256 is: a file checked before is
    # answered from the cache even when busy (jobs.submit_upload checks capacity after the cache).
    try:
        frames_raw, media = await _read_form(_form_reader(request, limit, too_large), store, limit, too_large)
    except (ValueError, AssertionError, HttpProcessingError):
        raise ApiError(400, "bad_request", "Malformed multipart body.") from None
    if media is None:
        raise ApiError(400, "bad_request", "No 'file' part in the upload.")
    sniffed = media.sniffed
    if sniffed is None or media.size == 0:
        store.delete(media)
        raise _unsupported()
    if media.problem:  # sniffed from its first bytes, but its container does not hold together
        store.delete(media)
        raise ApiError(415, "unsupported_media", f"This is not a whole, well-formed {_format_name(sniffed[1])} file: "
                                                 f"{media.problem}.")
    try:
        frames = jobs.validate_frames(int(frames_raw) if frames_raw and frames_raw != "null" else None)
    except (ValueError, ApiError):
        store.delete(media)
        raise ApiError(400, "bad_request", f"frames must be one of {'/'.join(map(str, request.app[WORKER].frame_choices))}.") from None
    check = await jobs.submit_upload(media, sniffed[1], frames)
    if check.status == "done":
        return web.json_response(jobs.snapshot(check), status=200)
    return web.json_response({"id": check.id, "status": check.status}, status=202)


async def _read_form(reader: MultipartReader, store: MediaStore, limit: int,
                     too_large: ApiError) -> tuple[str | None, StoredMedia | None]:
    """The upload's 'frames' value and its 'file' part, encrypted into the store as it streams in
    (refused as soon as it is too large or its first bytes are not a video or image). Any other
    part, or a second one of either, is refused at its headers, before its body is read: a form
    has two parts at most, and every byte of the body counts toward the limit (_FormBudget)."""
    frames_raw, media, writer = None, None, None
    try:
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):  # a multipart inside a part: no client of ours sends one
                raise ApiError(400, "bad_request", "Nested multipart parts are not accepted.")
            if part.name == "frames" and frames_raw is None:
                frames_raw = (await _read_part(part, FRAMES_FIELD_BYTES, ApiError(
                    400, "bad_request", "The 'frames' part is too long."))).decode(errors="replace").strip()
            elif part.name == "file" and media is None and writer is None:
                writer, sniffed = store.writer(), False
                while chunk := await part.read_chunk(64 * 1024):
                    writer.write(chunk)
                    if writer.size > limit:
                        raise too_large
                    if not sniffed and len(writer.head) >= SNIFF_BYTES:
                        sniffed = True  # refuse a non-video as soon as its first bytes are in
                        if sniff(writer.head, limit) is None:
                            raise _unsupported()
                media = writer.finish()
            else:
                raise _unexpected_part(part.name, ("file", "frames"))
    except BaseException:  # refused, malformed or cancelled: nothing of it stays on disk
        if writer is not None:
            writer.abort()
        raise
    return frames_raw, media


class _FormBudget:
    """request.content as the multipart reader sees it, with a budget of bytes and of lines.

    Bytes: every byte of the body counts toward the limit, whatever part, preamble or epilogue it is
    in, with or without a Content-Length (chunked bodies included): parts we refuse or skip are no
    way around it. Lines: aiohttp reads a form's preamble, boundaries and part headers line by line,
    a Python call each, and does not bound the preamble (100 MB of two-byte lines before the first
    boundary kept the event loop busy for 108 s). Part contents are read in chunks, not lines."""

    def __init__(self, content, max_bytes: int, too_large: ApiError, lines: int = MAX_FORM_LINES):
        self._content, self._max_bytes, self._too_large, self._lines = content, max_bytes, too_large, lines

    def _within(self) -> None:
        if self._content.total_bytes > self._max_bytes:  # received so far: what is read plus a buffer
            raise self._too_large

    async def read(self, *args, **kwargs) -> bytes:
        data = await self._content.read(*args, **kwargs)
        self._within()
        return data

    async def readline(self, *args, **kwargs) -> bytes:
        self._lines -= 1
        if self._lines < 0:
            raise ApiError(400, "bad_request", "Malformed multipart body: too many lines outside its parts.")
        line = await self._content.readline(*args, **kwargs)
        self._within()
        return line

    def __getattr__(self, name):  # at_eof, unread_data...
        return getattr(self._content, name)


def _form_reader(request: web.Request, limit: int, too_large: ApiError) -> MultipartReader:
    """The multipart body of a request, within limit bytes (plus what part headers and boundaries
    add): a body that says it is larger is refused before a byte is read, one that turns out larger
    as soon as it does."""
    if request.content_length is not None and request.content_length > limit + MULTIPART_OVERHEAD:
        raise too_large
    return MultipartReader(request.headers, _FormBudget(request.content, limit + MULTIPART_OVERHEAD, too_large))


def _unexpected_part(name: str | None, known: tuple[str, ...]) -> ApiError:
    """An unknown part, or a second one of a part that comes once, refused before its body is read."""
    what = f"'{name[:40]}'" if name else "without a name"
    return ApiError(400, "bad_request", f"Unexpected form part {what}: send only {', '.join(repr(k) for k in known)}, "
                                        "each once ('frame' parts excepted).")


async def frames_check(request: web.Request) -> web.Response:
    """Frames captured from a playing video: 'frame' parts (JPEG/PNG/WebP, in order), 'times' (a JSON
    array, one time per frame), optional 'frames' and 'page_url'. Each frame is checked as it
    arrives and encrypted into the store; the worker decodes them."""
    jobs, config, store = request.app[JOBS], request.app[CONFIG], request.app[STORE]
    if not request.content_type.startswith("multipart/"):
        raise ApiError(400, "bad_request", "Send the frames as multipart/form-data: 'frame' parts and a 'times' part.")
    if jobs.closing:
        jobs.ensure_capacity()
    try:
        form = await _read_frames_form(_form_reader(request, config.max_upload_bytes,
                                                     _frames_too_large(config.max_upload_mb)), store, config)
    except (ValueError, AssertionError, HttpProcessingError):
        raise ApiError(400, "bad_request", "Malformed multipart body.") from None
    try:
        if form.media is None:
            raise ApiError(400, "bad_request", "No frames were sent: add at least one 'frame' part.")
        times = parse_times(form.fields.get("times", b""), form.count)
        page_url = None
        if "page_url" in form.fields:  # for the record (its host in the history); never fetched
            page_url = _http_url(form.fields["page_url"].decode(errors="replace"), "page_url")
        remember = form.fields.get("remember_url", b"false").decode(errors="replace").strip()
        if remember not in ("true", "false"):
            raise ApiError(400, "bad_request", "remember_url must be true or false.")
        frames = _form_frames(form.fields.get("frames"), jobs, request.app[WORKER].frame_choices)
    except ApiError:
        store.delete(form.media)
        raise
    check = await jobs.submit_frames(form.media, times, frames, page_url, remember == "true")
    if check.status == "done":
        return web.json_response(jobs.snapshot(check), status=200)
    return web.json_response({"id": check.id, "status": check.status}, status=202)


def _form_frames(raw: bytes | None, jobs, choices) -> int:
    text = (raw or b"").decode(errors="replace").strip()
    try:
        return jobs.validate_frames(int(text) if text and text != "null" else None)
    except (ValueError, ApiError):
        raise ApiError(400, "bad_request", f"frames must be one of {'/'.join(map(str, choices))}.") from None


def _frames_too_large(mb: int) -> ApiError:
    return ApiError(413, "too_large", f"The frames are too large together. Max limit {mb}MB.")


@dataclass
class _FramesForm:
    media: StoredMedia | None = None  # the frames, encrypted in the store
    count: int = 0
    fields: dict[str, bytes] = field(default_factory=dict)  # times, frames, page_url, remember_url


async def _read_frames_form(reader: MultipartReader, store: MediaStore, config) -> _FramesForm:
    """The frames form: at most config.max_frames 'frame' parts and each small part once; any other
    part is refused at its headers (so a form has at most max_frames + 4 parts)."""
    form, writer, size = _FramesForm(), None, None
    small = {"times": MAX_TIMES_BYTES, "frames": FRAMES_FIELD_BYTES, "page_url": MAX_URL_LEN, "remember_url": 8}
    try:
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise ApiError(400, "bad_request", "Nested multipart parts are not accepted.")
            if part.name == "frame":
                if form.count >= config.max_frames:
                    raise ApiError(413, "too_large", f"Too many frames: at most {config.max_frames}.")
                data = await _read_part(part, config.max_frame_bytes, ApiError(
                    413, "too_large", f"Frame {form.count + 1} is over {config.max_frame_mb} MB."))
                info = inspect(data, form.count, config.max_frame_side)
                if size is None:
                    size = (info.width, info.height)
                elif (info.width, info.height) != size:
                    raise ApiError(400, "bad_request", f"Frame {form.count + 1} is {info.width}x{info.height}; "
                                                       f"the frames must all be {size[0]}x{size[1]} like the first.")
                if (form.count + 1) * info.width * info.height > config.max_frames_pixels:
                    raise ApiError(413, "too_large", f"The frames hold too many pixels together: {form.count + 1} of "
                                                     f"{info.width}x{info.height} are over "
                                                     f"{config.max_frames_pixels / 1e6:.0f} megapixels. Send smaller "
                                                     "frames (1280 px on the longer side is plenty).")
                writer = writer or store.writer()
                writer.write(pack(data))
                if writer.size > config.max_upload_bytes:
                    raise _frames_too_large(config.max_upload_mb)
                form.count += 1
            elif part.name in small and part.name not in form.fields:
                form.fields[part.name] = await _read_part(part, small[part.name], ApiError(
                    400, "bad_request", f"The '{part.name}' part is too long."))
            else:
                raise _unexpected_part(part.name, ("frame", *small))
    except BaseException:  # refused, malformed or cancelled: nothing of it stays on disk
        if writer is not None:
            writer.abort()
        raise
    form.media = writer.finish() if writer is not None else None
    return form


async def _read_part(part: BodyPartReader, limit: int, too_large: ApiError) -> bytes:
    """A part's whole body, refused as soon as it passes limit bytes."""
    buf = bytearray()
    while chunk := await part.read_chunk(64 * 1024):
        buf += chunk
        if len(buf) > limit:
            raise too_large
    return bytes(buf)


def _format_name(ext: str) -> str:
    return {".jpg": "JPEG", ".mov": "QuickTime", ".ogv": "Ogg", ".mpg": "MPEG", ".wmv": "ASF/WMV",
            ".ts": "MPEG-TS"}.get(ext, ext[1:].upper())


def _unsupported() -> ApiError:
    return ApiError(415, "unsupported_media", "Only video or image files allowed.")


async def get_check(request: web.Request) -> web.Response:
    jobs = request.app[JOBS]
    return web.json_response(jobs.snapshot(jobs.get(request.match_info["id"])))


async def heatmap(request: web.Request) -> web.Response:
    jobs = request.app[JOBS]
    png = jobs.heatmap(jobs.get(request.match_info["id"]))
    if not png:
        raise ApiError(404, "not_found", "No heatmap for this check (none, or no longer kept).")
    return web.Response(body=png, content_type="image/png", headers={"Cache-Control": "no-store"})


async def events(request: web.Request) -> web.StreamResponse:
    jobs = request.app[JOBS]
    check = jobs.get(request.match_info["id"])
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"})
    await resp.prepare(request)
    q = jobs.subscribe(check)
    try:
        while True:
            try:
                snap = await asyncio.wait_for(q.get(), EVENTS_HEARTBEAT_S)
            except TimeoutError:
                await resp.write(b": keep-alive\n\n")
                continue
            await resp.write(f"data: {json.dumps(snap)}\n\n".encode())
            if snap["status"] in ("done", "failed"):
                break
    except (ConnectionResetError, asyncio.CancelledError):
        jobs.unsubscribe(check, q)
        raise
    jobs.unsubscribe(check, q)
    await resp.write_eof()
    return resp


def routes() -> list[web.RouteDef]:
    return [
        web.get("/v1/health", health),
        web.get("/v1/openapi.json", openapi),
        web.post("/v1/pair", pair),
        web.get("/pair", pair_page),
        web.get("/v1/model", model_info),
        web.post("/v1/checks", create_check),
        web.post("/v1/checks/upload", upload_check),
        web.post("/v1/checks/frames", frames_check),
        web.get(f"/v1/checks/{{id:{CHECK_ID}}}", get_check),
        web.get(f"/v1/checks/{{id:{CHECK_ID}}}/heatmap.png", heatmap),
        web.get(f"/v1/checks/{{id:{CHECK_ID}}}/events", events),
    ]
