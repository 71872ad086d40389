"""Container structure, checked while a file streams in: sniffing (media.sniff) looks at the first
bytes only, so a JPEG header followed by HTML, or a ZIP behind an MP4 box, would sniff as media and
be queued for the decoder. Here the container's own framing is walked to its end: ISO-BMFF boxes
(MP4, MOV, HEIF, AVIF), JPEG segments and scans, PNG chunks, RIFF chunks (WebP, AVI), EBML elements
(WebM, Matroska), GIF blocks, FLV tags, Ogg pages, MPEG-PS packs and packets, ASF objects and MPEG-TS
packets; every length must fit and lead to the next header, up to the format's end (a file cut
short is refused as truncated). Bytes after a JPEG's, PNG's or GIF's end marker are allowed (motion
photos append a video there): what is decoded is the image, and it is whole.

Only the framing is read, never a pixel or a sample; the file's bytes are fed as they arrive, and
what is buffered is one header at a time. Streams inside a well-framed container are the decoder's
business (in the worker, with its deadline and memory cap).

`Structure().feed(chunk)...finish()` -> None when the file is whole and well formed, else why not.
"""
from __future__ import annotations

from collections.abc import Generator

SNIFF_BYTES = 512  # as media.SNIFF_BYTES: what the parser is chosen from
TO_THE_END = 1 << 62  # a skip that ends at the end of the file
# a parser yields what it needs next: n >= 0 (exactly n bytes; fewer only at the end), ("skip", n)
# (it is sent how many were skipped: fewer only at the end), ANY (whatever is buffered; b"" at the
# end) or ("unread", bytes) (put bytes back); it returns None when the file is well formed, else why not
Parser = Generator[object, object, str | None]
ANY = ("any",)
TRUNCATED = "it ends early (truncated?)"


class Structure:
    """A file's container structure, checked as its bytes are fed in order."""

    def __init__(self):
        self._head = bytearray()  # until the parser is chosen
        self._gen: Parser | None = None
        self._want: object = None
        self._buf = bytearray()
        self._skipped = 0  # of the skip under way
        self.problem: str | None = None
        self.done = False

    def feed(self, data: bytes) -> None:
        if self.done:
            return
        if self._gen is None:
            self._head += data
            if len(self._head) < SNIFF_BYTES:
                return
            data, self._head = bytes(self._head), bytearray()
            self._start(data, None)
            if self.done:
                return
        self._buf += data
        self._run(eof=False)

    def finish(self) -> str | None:
        """None when the file's container is whole and well formed, else why not (for people)."""
        if not self.done:
            if self._gen is None:
                self._start(bytes(self._head), len(self._head))
                self._buf += self._head
            self._run(eof=True)
            if not self.done:  # a parser that wants more at the end: it must say so itself
                self._finish(TRUNCATED)
        return self.problem

    def _start(self, head: bytes, size: int | None) -> None:
        from .media import sniff

        sniffed = sniff(head[:SNIFF_BYTES], size)
        parser = PARSERS.get(sniffed[1]) if sniffed else None
        if parser is None:
            self._finish(None)  # not media at all (sniff says so) or a format with no walk here
            return
        self._gen = parser(sniffed[1])
        self._want = next(self._gen)

    def _finish(self, problem: str | None) -> None:
        self.problem, self.done, self._gen, self._buf = problem, True, None, bytearray()

    def _send(self, value) -> None:
        try:
            self._want = self._gen.send(value)
        except StopIteration as stop:
            self._finish(stop.value)

    def _run(self, eof: bool) -> None:
        while not self.done:
            want, buf = self._want, self._buf
            if isinstance(want, int):
                if len(buf) < want and not eof:
                    return
                data = bytes(buf[:want])
                del buf[:want]
                self._send(data)
            elif want[0] == "skip":
                take = min(want[1] - self._skipped, len(buf))
                del buf[:take]
                self._skipped += take
                if self._skipped < want[1] and not eof:
                    return
                skipped, self._skipped = self._skipped, 0
                self._send(skipped)
            elif want[0] == "unread":
                buf[:0] = want[1]
                self._send(None)
            else:  # ANY
                if not buf and not eof:
                    return
                data = bytes(buf)
                buf.clear()
                self._send(data)


def problem_of(data: bytes) -> str | None:
    """The structure check of a whole file in memory (a captured frame, a fetched video)."""
    s = Structure()
    s.feed(data)
    return s.finish()


def _be(b: bytes) -> int:
    return int.from_bytes(b, "big")


def _le(b: bytes) -> int:
    return int.from_bytes(b, "little")


# --- ISO base media (MP4, MOV, HEIF, AVIF) --------------------------------------------------------
def _iso(ext: str) -> Parser:
    """Top-level boxes, chained to the end of the file; a video needs its moov, an image its meta."""
    seen = set()
    while True:
        h = yield 8
        if not h:
            break
        if len(h) < 8:
            return TRUNCATED
        size, kind, header = _be(h[:4]), h[4:8], 8
        if h == bytes(8):  # zeros after the last box (some muxers pad): allowed if nothing else follows
            while rest := (yield ANY):
                if rest.count(0) != len(rest):
                    return "where a box should start there is none (another file, or junk, inside it?)"
            break
        if not kind.isalnum():
            return "where a box should start there is none (another file, or junk, inside it?)"
        if size == 1:
            large = yield 8
            if len(large) < 8:
                return TRUNCATED
            size, header = _be(large), 16
        seen.add(kind)
        if size == 0:  # the last box, to the end of the file
            yield ("skip", TO_THE_END)
            break
        if size < header:
            return f"its {kind.decode()} box declares an impossible size"
        if (yield ("skip", size - header)) < size - header:
            return f"its {kind.decode()} box runs past the end of the file (truncated?)"
    need = b"meta" if ext in (".heic", ".avif") else b"moov"
    if need not in seen:
        return f"it has no {need.decode()} box (where the {'image' if need == b'meta' else 'video'} is described)"
    return None


# --- JPEG -----------------------------------------------------------------------------------------
SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})


def _jpeg(_ext: str) -> Parser:
    """Segments (marker, length) up to each scan, the scan's entropy-coded data up to the next marker,
    and so on to the end-of-image marker."""
    if (yield 2) != b"\xff\xd8":
        return "it does not start with a JPEG's start marker"
    frame = scan = False
    while True:
        if (b := (yield 1)) != b"\xff":
            return TRUNCATED if not b else "where a JPEG marker should be there is none (text or another file inside it?)"
        code = (yield 1)
        while code == b"\xff":  # fill bytes before a marker
            code = yield 1
        if not code:
            return TRUNCATED
        m = code[0]
        if m == 0xD9:  # end of image: what follows is not the image's
            yield ("skip", TO_THE_END)
            return None if scan else "it has no image data"
        if 0xD0 <= m <= 0xD7 or m == 0x01:  # restart markers, TEM: no length
            continue
        if m in (0x00, 0xD8):
            return "it has a marker where none may be"
        length = yield 2
        if len(length) < 2:
            return TRUNCATED
        n = _be(length)
        if n < 2:
            return "a JPEG segment declares an impossible length"
        if (yield ("skip", n - 2)) < n - 2:
            return TRUNCATED
        frame |= m in SOF
        if m != 0xDA:
            continue
        if not frame:
            return "its image data comes before its frame header"
        scan = True
        carry = b""
        while True:  # entropy-coded data: 0xFF is followed by 0x00 (stuffing) or a restart marker
            chunk = yield ANY
            if not chunk:
                return TRUNCATED
            data = carry + chunk
            i = data.find(b"\xff")
            while i != -1 and i + 1 < len(data):
                nxt = data[i + 1]
                if nxt == 0x00 or 0xD0 <= nxt <= 0xD7 or nxt == 0xFF:
                    i = data.find(b"\xff", i + 1 if nxt == 0xFF else i + 2)
                    continue
                break
            if i != -1 and i + 1 < len(data):
                yield ("unread", data[i:])
                break
            carry = b"\xff" if data.endswith(b"\xff") else b""


# --- PNG ------------------------------------------------------------------------------------------
def _png(_ext: str) -> Parser:
    """Chunks (length, type, data, CRC) from IHDR to IEND."""
    yield 8  # the signature (sniffed)
    first = True
    while True:
        h = yield 8
        if len(h) < 8:
            return TRUNCATED
        n, kind = _be(h[:4]), h[4:8]
        if not kind.isalpha() or n > 0x7FFFFFFF:
            return "where a PNG chunk should start there is none (another file, or junk, inside it?)"
        if first and kind != b"IHDR":
            return "its first chunk is not its header (IHDR)"
        first = False
        if (yield ("skip", n + 4)) < n + 4:
            return TRUNCATED
        if kind == b"IEND":
            yield ("skip", TO_THE_END)
            return None


# --- RIFF (WebP, AVI) -----------------------------------------------------------------------------
def _riff(ext: str) -> Parser:
    """RIFF chunks and the chunks inside them, every size within its parent. A WebP is one RIFF; an
    AVI may go on in RIFF AVIX chunks."""
    forms = {".webp": (b"WEBP",), ".avi": (b"AVI ", b"AVIX")}[ext]
    count = 0
    while True:
        h = yield 12
        if not h and count:
            return None
        if len(h) < 12:
            return TRUNCATED
        if h[:4] != b"RIFF" or h[8:12] not in (forms[:1] if not count else forms[1:]):
            return "where a RIFF chunk should start there is none (another file, or junk, inside it?)"
        left = _le(h[4:8]) - 4
        count += 1
        while left > 0:
            c = yield 8
            if len(c) < 8:
                return TRUNCATED
            if not all(0x20 <= b < 0x7F for b in c[:4]):
                return "where a RIFF chunk should start there is none (another file, or junk, inside it?)"
            size = _le(c[4:8])
            body = size + (size & 1)
            if 8 + size > left:
                return "a chunk runs past the end of its RIFF container"
            got = yield ("skip", min(body, left - 8))
            if got < min(body, left - 8):
                return TRUNCATED
            left -= 8 + body
        if ext == ".webp":
            yield ("skip", TO_THE_END)  # a pad byte or trailing bytes: not the image's
            return None


# --- EBML (WebM, Matroska) ------------------------------------------------------------------------
def _vint(first: int, max_len: int) -> int:
    """The length of a variable-size integer from its first byte (0: invalid)."""
    for n in range(1, max_len + 1):
        if first & (0x80 >> (n - 1)):
            return n
    return 0


def _element() -> Generator[object, object, tuple[int, int | None, int] | str]:
    """(id, size or None when unknown, header length), or why not."""
    b = yield 1
    if not b:
        return ""
    n = _vint(b[0], 4)
    if not n:
        return "where an element should start there is none (another file, or junk, inside it?)"
    rest = (yield n - 1) if n > 1 else b""
    s = yield 1
    if len(rest) < n - 1 or not s:
        return TRUNCATED
    m = _vint(s[0], 8)
    if not m:
        return "an element declares an impossible size"
    more = (yield m - 1) if m > 1 else b""
    if len(more) < m - 1:
        return TRUNCATED
    raw = s + more
    value = _be(bytes([raw[0] & (0xFF >> m)]) + raw[1:])
    unknown = value == (1 << (7 * m)) - 1
    return _be(b + rest), None if unknown else value, n + m


EBML_HEADER, SEGMENT = 0x1A45DFA3, 0x18538067


def _ebml(_ext: str) -> Parser:
    """The EBML header, then the Segment and its children (sizes within it), then any further
    top-level elements. An element of unknown size (live recordings: the Segment, its Clusters) runs
    to the end of the file."""
    e = yield from _element()
    if isinstance(e, str) or e[0] != EBML_HEADER or e[1] is None:
        return "it does not start with an EBML header"
    if (yield ("skip", e[1])) < e[1]:
        return TRUNCATED
    segment = False
    while True:
        e = yield from _element()
        if e == "":
            return None if segment else "it has no Segment (where the video is)"
        if isinstance(e, str):
            return e
        ident, size, _ = e
        if ident != SEGMENT:
            if size is None:
                return "a top-level element declares no size"
            if (yield ("skip", size)) < size:
                return TRUNCATED
            continue
        segment = True
        if size is None:
            left = None
        else:
            left = size
        while left is None or left > 0:
            c = yield from _element()
            if c == "":
                return None if left is None else TRUNCATED
            if isinstance(c, str):
                return c
            _, csize, header = c
            if csize is None:  # a Cluster being recorded: it, and the Segment, run to the end
                yield ("skip", TO_THE_END)
                return None
            if left is not None:
                if header + csize > left:
                    return "an element runs past the end of its Segment"
                left -= header + csize
            if (yield ("skip", csize)) < csize:
                return TRUNCATED


# --- GIF ------------------------------------------------------------------------------------------
def _gif(_ext: str) -> Parser:
    """Header, colour tables, extension and image blocks with their sub-blocks, then the trailer."""
    h = yield 13
    if len(h) < 13:
        return TRUNCATED
    if h[10] & 0x80 and (yield ("skip", 3 << ((h[10] & 7) + 1))) < 3 << ((h[10] & 7) + 1):
        return TRUNCATED
    images = 0
    while True:
        b = yield 1
        if not b:
            return TRUNCATED
        if b == b"\x3b":  # trailer
            yield ("skip", TO_THE_END)
            return None if images else "it has no image"
        if b == b"\x21":
            if len((yield 1)) < 1:
                return TRUNCATED
        elif b == b"\x2c":
            d = yield 10  # the image descriptor's 9 bytes and the LZW minimum code size
            if len(d) < 10:
                return TRUNCATED
            if d[8] & 0x80:  # a local colour table: between the descriptor and the code size
                table = 3 << ((d[8] & 7) + 1)
                yield ("unread", d[9:])
                if (yield ("skip", table)) < table or len((yield 1)) < 1:
                    return TRUNCATED
            images += 1
        else:
            return "where a GIF block should start there is none (another file, or junk, inside it?)"
        while True:  # sub-blocks, up to an empty one
            n = yield 1
            if not n:
                return TRUNCATED
            if n[0] == 0:
                break
            if (yield ("skip", n[0])) < n[0]:
                return TRUNCATED


# --- FLV, Ogg, MPEG-PS, ASF, MPEG-TS --------------------------------------------------------------
def _flv(_ext: str) -> Parser:
    """The header, then tags (type, size, timestamp, data), each followed by its own size."""
    h = yield 9
    offset = _be(h[5:9]) if len(h) == 9 else 0
    if offset < 9 or (yield ("skip", offset - 9)) < offset - 9 or len((yield 4)) < 4:
        return TRUNCATED if offset >= 9 else "its header declares an impossible size"
    while True:
        t = yield 11
        if not t:
            return None
        if len(t) < 11:
            return TRUNCATED
        if t[0] & 0x1F not in (8, 9, 18):
            return "where an FLV tag should start there is none (another file, or junk, inside it?)"
        size = _be(t[1:4])
        if (yield ("skip", size)) < size:
            return TRUNCATED
        back = yield 4
        if len(back) < 4:
            return TRUNCATED
        if _be(back) != 11 + size:
            return "an FLV tag's size does not match its trailer"


def _ogg(_ext: str) -> Parser:
    """Pages: the header, its segment table, its segments."""
    while True:
        h = yield 27
        if not h:
            return None
        if len(h) < 27:
            return TRUNCATED
        if h[:4] != b"OggS" or h[4] != 0:
            return "where an Ogg page should start there is none (another file, or junk, inside it?)"
        table = yield h[26]
        if len(table) < h[26]:
            return TRUNCATED
        if (yield ("skip", sum(table))) < sum(table):
            return TRUNCATED


def _mpeg_ps(_ext: str) -> Parser:
    """Pack headers (MPEG-1 or -2) and packets (start code, 16-bit length), to an end code or the end."""
    while True:
        sc = yield 4
        if not sc:
            return None
        if len(sc) < 4:
            return TRUNCATED
        if sc[:3] != b"\0\0\x01":
            return "where an MPEG start code should be there is none (another file, or junk, inside it?)"
        if sc[3] == 0xB9:  # program end
            yield ("skip", TO_THE_END)
            return None
        if sc[3] == 0xBA:
            p = yield 8
            if len(p) < 8:
                return TRUNCATED
            if p[0] & 0xC0 == 0x40:  # MPEG-2: two more bytes, then stuffing
                q = yield 2
                if len(q) < 2 or (yield ("skip", q[1] & 7)) < q[1] & 7:
                    return TRUNCATED
            elif p[0] & 0xF0 != 0x20:
                return "an MPEG pack header is malformed"
        elif sc[3] >= 0xBB:
            n = yield 2
            if len(n) < 2 or (yield ("skip", _be(n))) < _be(n):
                return TRUNCATED
        else:
            return "an MPEG start code that has no place in a program stream"


def _asf(_ext: str) -> Parser:
    """Top-level objects (GUID, 64-bit size), chained to the end of the file."""
    count = 0
    while True:
        h = yield 24
        if not h and count:
            return None
        if len(h) < 24:
            return TRUNCATED
        size = _le(h[16:24])
        if size == 0 and count:  # a Data object written as a broadcast: it runs to the end
            yield ("skip", TO_THE_END)
            return None
        if size < 24:
            return "an ASF object declares an impossible size"
        if (yield ("skip", size - 24)) < size - 24:
            return TRUNCATED
        count += 1


def _ts(_ext: str) -> Parser:
    """188-byte packets, each starting with the sync byte; a last packet cut short is allowed."""
    run = 188 * 256
    while True:
        data = yield run
        if data[::188].count(0x47) != len(data[::188]):
            return "an MPEG-TS packet does not start with its sync byte (another file, or junk, inside it?)"
        if len(data) < run:
            return None


def _bmp(_ext: str) -> Parser:
    """The file header's size and pixel offset, and a known info header, against the file's size."""
    h = yield 18
    if len(h) < 18:
        return TRUNCATED
    total = 18 + (yield ("skip", TO_THE_END))
    declared, offset, info = _le(h[2:6]), _le(h[10:14]), _le(h[14:18])
    if info not in (12, 16, 40, 52, 56, 64, 108, 124):
        return "its info header is of no known size"
    if offset >= total or (declared and declared > total):
        return TRUNCATED
    if declared and declared < total:
        return f"it has {total - declared} bytes after its end (another file inside it?)"
    return None


PARSERS = {".mp4": _iso, ".mov": _iso, ".heic": _iso, ".avif": _iso, ".jpg": _jpeg, ".png": _png, ".webp": _riff,
           ".avi": _riff, ".webm": _ebml, ".gif": _gif, ".flv": _flv, ".ogv": _ogg, ".mpg": _mpeg_ps, ".wmv": _asf,
           ".ts": _ts, ".bmp": _bmp}
