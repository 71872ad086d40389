"""Private media handling: an AES-GCM encrypted temp store, content sniffing, the sweeper.

The key lives only in this process's memory (and is handed to the worker process through a
pipe for the check it runs), so files left behind by a crash are unreadable after a restart;
they are deleted at start anyway, and the sweeper removes anything older than 30 minutes.

File layout: MAGIC, an 8-byte random nonce prefix, then records of
(4-byte big-endian length, AES-GCM ciphertext+tag) of up to CHUNK plaintext bytes each. The
nonce is prefix + record counter; the associated data binds the counter and a final-record flag,
so records can be neither reordered nor dropped from the end without detection.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import secrets
import shutil
import stat
import struct
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .config import APP_NAME
from .containers import Structure
from .private import own_dir, write_private

log = logging.getLogger(__name__)

RAM_DIR = Path("/dev/shm")  # tmpfs on Linux: decrypted files never reach a disk
MAGIC = b"DFC1"
CHUNK = 256 * 1024
SNIFF_BYTES = 512  # what sniff() reads: room for three MPEG-TS packet starts and the first boxes of an MP4
TS_PACKET = 188
FIRST_BOXES = (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot")  # what an MP4/MOV starts with
TAG = 16


class CorruptMedia(Exception):
    """An encrypted file that does not decrypt: wrong key (a leftover from an earlier run) or damaged."""


def _aad(counter: int, final: bool) -> bytes:
    return struct.pack(">IB", counter, 1 if final else 0)


def sniff(head: bytes, max_size: int | None = None) -> tuple[str, str] | None:
    """(kind, extension) from a file's first SNIFF_BYTES, or None when it is not a video/image we read.

    max_size: the file's size when it is complete, else an upper bound (the upload limit)."""
    if len(head) >= 8 and head[4:8] in FIRST_BOXES:
        return _sniff_iso(head, max_size)
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video", ".webm"
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return "video", ".avi"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image", ".webp"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "video", ".gif"
    if head.startswith(b"\xff\xd8\xff"):
        return "image", ".jpg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image", ".png"
    if head.startswith(b"BM") and len(head) >= 14 and head[6:10] == b"\0\0\0\0":
        return "image", ".bmp"
    if head.startswith(b"FLV\x01"):
        return "video", ".flv"
    if head.startswith(b"OggS"):
        return "video", ".ogv"
    if head.startswith(b"\x00\x00\x01\xba"):
        return "video", ".mpg"
    if head.startswith(b"\x30\x26\xb2\x75\x8e\x66\xcf\x11"):
        return "video", ".wmv"
    # MPEG-TS: 188-byte packets, each starting with the sync byte 0x47 ("G"): one is any text
    # beginning with G, so the next packets' sync bytes must be there too
    if len(head) > TS_PACKET and all(head[i] == 0x47 for i in range(0, len(head), TS_PACKET)):
        return "video", ".ts"
    return None


def _box(head: bytes, at: int) -> tuple[int, bytes] | None:
    """(size, type) of the ISO-BMFF/QuickTime box header at `at`; size 0 = to the end of the file;
    None when the bytes there cannot be one."""
    size, kind = int.from_bytes(head[at:at + 4], "big"), head[at + 4:at + 8]
    if not all(0x20 <= b < 0x7F or b == 0xA9 for b in kind):  # four letters, digits, spaces or ©
        return None
    if size == 1:  # a 64-bit size follows the type
        if len(head) < at + 16:
            return None
        size = int.from_bytes(head[at + 8:at + 16], "big")
        return (size, kind) if size >= 16 else None
    return (size, kind) if size == 0 or size >= 8 else None


def _sniff_iso(head: bytes, max_size: int | None) -> tuple[str, str] | None:
    """MP4/MOV/HEIF/AVIF: the boxes in the head must be well formed, the first no larger than the file.
    A header box (ftyp/wide/free/skip/pnot) must be followed by another box within the head; moov
    must start with a child box; mdat (raw codec data) can only be checked for its size."""
    first = _box(head, 0)
    if first is None or (max_size is not None and first[0] > max_size):
        return None
    size, kind = first
    if kind == b"ftyp" and not (16 <= size <= 1024 and size % 4 == 0):
        return None
    if kind == b"moov" and (len(head) < 16 or _box(head, 8) is None):
        return None
    at, seen = size, 1
    while size and at + 8 <= len(head):  # every further header within the head must be a box too
        box = _box(head, at)
        if box is None or not box[1].isalnum():  # top-level box types are letters and digits
            return None
        size, seen, at = box[0], seen + 1, at + box[0]
    if kind not in (b"moov", b"mdat") and seen < 2 and len(head) >= SNIFF_BYTES:
        return None
    if kind == b"ftyp":
        brand = head[8:12]
        if brand in (b"avif", b"avis", b"heic", b"heix", b"mif1", b"msf1"):
            return ("image", ".heic") if brand.startswith(b"he") else ("image", ".avif")
        return ("video", ".mov") if brand == b"qt  " else ("video", ".mp4")
    return "video", ".mov"


@dataclass
class StoredMedia:
    """An encrypted file in the store and what is known of its plaintext."""

    path: Path
    size: int
    sha256: str
    head: bytes
    problem: str | None = None  # why its container is not whole and well formed (containers.py); None: it is

    @property
    def sniffed(self) -> tuple[str, str] | None:
        return sniff(self.head, self.size)


class EncryptedWriter:
    """Streams plaintext in, encrypted records out; never holds more than one chunk."""

    def __init__(self, store: MediaStore, path: Path):
        self.store, self.path = store, path
        self._aes = AESGCM(store.key)
        self._prefix = secrets.token_bytes(8)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self._f: BinaryIO = os.fdopen(fd, "wb")
        self._f.write(MAGIC + self._prefix)
        self._buf = bytearray()
        self._counter = 0
        self._sha = hashlib.sha256()
        self._structure = Structure()
        self.size = 0
        self.head = b""
        self.closed = False

    def write(self, data: bytes) -> None:
        self._sha.update(data)
        self._structure.feed(data)
        self.size += len(data)
        if len(self.head) < SNIFF_BYTES:
            self.head += data[: SNIFF_BYTES - len(self.head)]
        self._buf += data
        while len(self._buf) > CHUNK:  # keep at least one byte back so the last record is the final one
            self._emit(bytes(self._buf[:CHUNK]), final=False)
            del self._buf[:CHUNK]

    def _emit(self, chunk: bytes, final: bool) -> None:
        nonce = self._prefix + struct.pack(">I", self._counter)
        ct = self._aes.encrypt(nonce, chunk, _aad(self._counter, final))
        self._f.write(struct.pack(">I", len(ct)) + ct)
        self._counter += 1

    def finish(self) -> StoredMedia:
        self._emit(bytes(self._buf), final=True)
        self._buf.clear()
        self._f.close()
        self.closed = True
        return StoredMedia(self.path, self.size, self._sha.hexdigest(), self.head, self._structure.finish())

    def abort(self) -> None:
        if not self.closed:
            self._f.close()
            self.closed = True
        self.path.unlink(missing_ok=True)


def decrypt_records(key: bytes, src: Path | bytes):
    """Yield the plaintext chunks of an encrypted file (or of its bytes, read into memory: what a Ray
    Serve replica receives); CorruptMedia on any tampering or wrong key."""
    aes = AESGCM(key)
    name = "media" if isinstance(src, bytes) else src.name
    with io.BufferedReader(io.BytesIO(src)) if isinstance(src, bytes) else open(src, "rb") as f:
        if f.read(4) != MAGIC:
            raise CorruptMedia(f"{name}: not an encrypted media file")
        prefix = f.read(8)
        counter = 0
        while True:
            hdr = f.read(4)
            if len(hdr) < 4:
                raise CorruptMedia(f"{name}: truncated")
            (n,) = struct.unpack(">I", hdr)
            ct = f.read(n)
            if len(ct) != n or n < TAG or n > CHUNK + TAG:
                raise CorruptMedia(f"{name}: truncated")
            nonce = prefix + struct.pack(">I", counter)
            final = not f.peek(1)  # nothing after this record: it must be the final one
            try:
                yield aes.decrypt(nonce, ct, _aad(counter, final))
            except Exception as e:  # cryptography's InvalidTag
                raise CorruptMedia(f"{name}: does not decrypt (wrong key or damaged)") from e
            if final:
                return
            counter += 1


def decrypt_to_file(key: bytes, src: Path, dst: Path) -> None:
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in decrypt_records(key, src):
                out.write(chunk)
    except BaseException:
        dst.unlink(missing_ok=True)
        raise


def _memory_file() -> int | None:
    """An anonymous file in memory (Linux memfd) that this process can open by path, or None."""
    if not (hasattr(os, "memfd_create") and os.path.isdir("/proc/self/fd")):
        return None
    try:
        return os.memfd_create(APP_NAME, os.MFD_CLOEXEC)
    except OSError:  # ENOSYS (old kernel), EPERM (a sandbox that forbids it)
        return None


@contextlib.contextmanager
def decrypted(key: bytes, src: Path, fallback: Path) -> Iterator[str]:
    """The plaintext of src as a path a decoder can open, for the duration of the `with`.

    On Linux an anonymous memory file, opened as /proc/self/fd/N: it is named on no filesystem,
    and the kernel frees it when this process ends, however it ends (a SIGKILL leaves nothing).
    Elsewhere a 0600 file at `fallback` (in the private RAM dir when there is one), deleted after."""
    fd = _memory_file()
    if fd is None:
        try:
            decrypt_to_file(key, src, fallback)
            yield str(fallback)
        finally:
            fallback.unlink(missing_ok=True)
        return
    with _filled_memory_file(fd, decrypt_records(key, src)) as path:
        yield path


@contextlib.contextmanager
def in_memory(data: bytes, fallback_dir: Path = RAM_DIR) -> Iterator[str]:
    """Plaintext bytes as a path a decoder can open, for the duration of the `with`: an anonymous
    memory file (as in `decrypted`), else a 0600 file in fallback_dir deleted after."""
    fd = _memory_file()
    if fd is None:
        fallback = fallback_dir / f"{APP_NAME}-{secrets.token_hex(16)}"
        fd = os.open(fallback, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            yield str(fallback)
        finally:
            fallback.unlink(missing_ok=True)
        return
    with _filled_memory_file(fd, [data]) as path:
        yield path


@contextlib.contextmanager
def _filled_memory_file(fd: int, chunks: Iterable[bytes]) -> Iterator[str]:
    """The anonymous memory file `fd` holding `chunks`, as a path, closed (and freed) after."""
    try:
        with os.fdopen(fd, "wb", closefd=False) as out:
            for chunk in chunks:
                out.write(chunk)
        yield f"/proc/self/fd/{fd}"
    finally:
        os.close(fd)


class MediaStore:
    """Encrypted media files in one 0700 directory, under a key that exists only in memory."""

    def __init__(self, directory: Path, key: bytes | None = None):
        self.dir = directory
        self.key = key or AESGCM.generate_key(bit_length=256)

    def open(self) -> None:
        """Create the directory and delete leftovers: they were encrypted under a key now gone."""
        wipe_dir(self.dir)

    def writer(self) -> EncryptedWriter:
        return EncryptedWriter(self, self.dir / f"{secrets.token_hex(16)}.enc")

    def encrypt_file(self, plain: Path) -> StoredMedia:
        """Encrypt a plaintext file into the store (blocking: call from a thread)."""
        w = self.writer()
        try:
            with open(plain, "rb") as f:
                for chunk in iter(lambda: f.read(CHUNK), b""):
                    w.write(chunk)
            return w.finish()
        except BaseException:
            w.abort()
            raise

    def delete(self, media: StoredMedia | None) -> None:
        if media is not None:
            media.path.unlink(missing_ok=True)


def wipe_dir(d: Path) -> int:
    """Empty d, creating it 0700. d must be this user's own directory, not a symlink (NotOwnDir);
    its entries are removed, never followed. Returns how many were removed."""
    own_dir(d)
    n = 0
    for p in d.iterdir():
        n += 1
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
    return n


def new_plain_dir(fallback_parent: Path, record: Path) -> Path:
    """A new directory for this run's decrypted files: in RAM (/dev/shm) when the system has it,
    else in fallback_parent. mkdtemp gives it a random name and creates it 0700 in one step, so no
    other user can have made it, or a symlink by its name, first. Its path goes into `record`
    (in the private data dir), so the next start can remove it if this run is killed."""
    parent = RAM_DIR if RAM_DIR.is_dir() and os.access(RAM_DIR, os.W_OK) else fallback_parent
    d = Path(tempfile.mkdtemp(prefix=f"{APP_NAME}-", dir=parent))
    write_private(record, str(d).encode())
    return d


def remove_plain_dir(record: Path) -> int:
    """Remove the directory `record` names (this run's at shutdown, a killed run's at start) if it is
    still a directory of this user's. Anything else there now (after a reboot, another user may
    have taken the name, or planted a symlink) is left alone. Returns how many entries it held."""
    try:
        d = Path(record.read_text())
    except FileNotFoundError:
        return 0
    n = 0
    try:
        st = os.lstat(d)
        if stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid():
            n = sum(1 for _ in d.iterdir())
            shutil.rmtree(d)  # on Linux fd-based: it never follows a symlink, even one swapped in meanwhile
    except FileNotFoundError:
        pass
    record.unlink(missing_ok=True)
    return n


def sweep(dirs: list[Path], max_age_s: float, now: float | None = None) -> int:
    """Delete every entry in dirs last modified more than max_age_s ago. Returns how many."""
    now = time.time() if now is None else now
    removed = 0
    for d in dirs:
        if not d.is_dir():
            continue
        for p in d.iterdir():
            if p in dirs:  # a swept dir inside another (the downloads in the RAM folder) stays
                continue
            try:
                age = now - p.lstat().st_mtime
            except FileNotFoundError:
                continue
            if age > max_age_s:
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    p.unlink(missing_ok=True)
                removed += 1
    if removed:
        log.info("sweeper removed %d stale media entries", removed)
    return removed
