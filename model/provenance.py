"""Content Credentials (C2PA): what a file says about where it came from, read beside the verdict.

Cameras, editors and AI generators sign a C2PA manifest into JPEG/PNG/WebP/MP4/MOV files; its actions
can declare the media AI-generated (IPTC `digitalSourceType`). `read_provenance(path)` returns None
for a file without one, else a `Provenance`: `valid` (intact and signed by a trust anchor the user
supplied), `untrusted-signer` (intact, signer not on a trust list: nothing is downloaded, so without
anchors this is the best a correct file gets) or `invalid` (changed after signing, or unreadable).

The native reader runs in a process of its own (Python and the C2PA library only, started on the
first file that needs it and kept) with a deadline and a memory budget: a hostile manifest that
crashes or hangs it ends as `invalid`, never as a crash or a hang of the caller. A file whose
container headers show no manifest store (nearly every file) never reaches the native reader.
"""
from __future__ import annotations

import atexit
import contextlib
import json
import logging
import mmap
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

STATES = ("valid", "invalid", "untrusted-signer")
# IPTC digital source types that declare the media made by an algorithm (the last segment of
# http://cv.iptc.org/newscodes/digitalsourcetype/<type>)
AI_SOURCE_TYPES = frozenset({
    "trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia", "algorithmicMedia", "compositeSynthetic",
})
# C2PA actions that change what the media shows (transcoding or repackaging does not)
EDIT_ACTIONS = frozenset({
    "c2pa.edited", "c2pa.cropped", "c2pa.color_adjustments", "c2pa.drawing", "c2pa.filtered", "c2pa.orientation",
    "c2pa.resized", "c2pa.placed", "c2pa.removed", "c2pa.redacted",
})
UNTRUSTED = "signingCredential.untrusted"
# Where a manifest store lives: MP4/MOV keep it in a top-level box of this uuid, JPEG in APP11
# segments, PNG in a caBX chunk; and any store is a JUMBF box labelled "c2pa" (MARKER).
C2PA_UUID = bytes.fromhex("d8fec3d61b0e483c92975828877ec481")
PNG = b"\x89PNG\r\n\x1a\n"
MARKER = b"c2pa"
MAX_HEADERS = 100_000  # boxes, segments or chunks read before the label search takes over
# Reading a 3 MB MP4's credentials takes ~6 ms; hashing a 100 MB video a few hundred. A reader
# still busy after this is stuck on a hostile file.
READ_TIMEOUT_S = 10.0
# address space the reader process may add to what it maps once started (a huge or recursive
# manifest ends as invalid, not as the machine swapping)
READ_MEMORY_BYTES = 1024 * 2**20
ANSWER_BYTES = 2**20  # the JSON of one summary (its texts and lists are capped below)
# what a manifest may put in a result: its strings and lists are the file author's, not ours
MAX_TEXT = 200
MAX_ACTIONS = 20
MAX_ERRORS = 20
# our own error codes, beside C2PA's (assertion.dataHash.mismatch, claimSignature.mismatch, ...)
UNREADABLE, TIMEOUT, CRASHED = "provenance.unreadable", "provenance.timeout", "provenance.reader_crashed"


@dataclass
class Signer:
    issuer: str | None = None  # the certificate's organisation
    common_name: str | None = None


@dataclass
class Provenance:
    """A file's Content Credentials, summarised. Field names are the CLI/API contract."""

    state: str  # one of STATES
    # intact credentials (valid or untrusted-signer) declare the media AI-generated: an action, its
    # ingredients' included, says trainedAlgorithmicMedia or kin. Never for invalid ones, whose claims
    # are no one's word: those are in ai_generated_claimed
    ai_generated: bool = False
    edited: bool = False  # an action changed the content (EDIT_ACTIONS)
    signer: Signer | None = None
    claim_generator: str | None = None  # the tool that wrote the manifest
    created: str | None = None  # the signature's trusted time (RFC 3339), when it was time-stamped
    actions: list[dict] = field(default_factory=list)  # [{"action", "software_agent", "digital_source_type", "when"}]
    errors: list[str] = field(default_factory=list)  # C2PA failure codes (and ours: provenance.*)
    ai_generated_claimed: bool = False  # the manifest declares it, intact or not (for "claims so, but broken")

    @classmethod
    def from_dict(cls, d: dict) -> Provenance:
        signer = d.get("signer")
        return cls(**{**d, "signer": Signer(**signer) if signer else None})


class TrustAnchorsError(ValueError):
    """A --c2pa-trust-anchors file that cannot be used."""


def load_trust_anchors(path: str | os.PathLike) -> str:
    """The PEM text of a trust-anchor file (one or more CA certificates, e.g. the C2PA trust list),
    checked to hold at least one readable certificate."""
    from cryptography import x509

    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise TrustAnchorsError(f"cannot read the C2PA trust anchors {path}: {e.strerror or e}") from None
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        certs = []
    if not certs:
        raise TrustAnchorsError(f"{path} holds no PEM certificate (expected the C2PA trust list or your own CA, "
                                "-----BEGIN CERTIFICATE----- blocks)")
    return data.decode("ascii", "replace")


def _settings(trust_anchors: str | None) -> dict:
    """Verify signatures and trust offline: no remote manifests, no OCSP, no trust list from anywhere
    but the anchors given."""
    settings: dict = {"verify": {"verify_trust": True, "remote_manifest_fetch": False, "ocsp_fetch": False}}
    if trust_anchors:
        settings["trust"] = {"trust_anchors": trust_anchors}
    return settings


def has_marker(path: str | os.PathLike) -> bool:
    """Whether the file may carry an embedded manifest store, cheaply: MP4/MOV (and other ISO BMFF),
    JPEG and PNG keep it in a place of their own (a top-level `uuid` box, APP11 segments, a `caBX`
    chunk), found by reading box, segment or chunk headers only; any other file, or one whose
    structure does not parse, is searched for the store's JUMBF label (mapped, not read into memory)."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(16)
        walk = _bmff if head[4:8] == b"ftyp" else _jpeg if head[:2] == b"\xff\xd8" else _png if head[:8] == PNG else None
        if walk is not None:
            try:
                return walk(f, size)
            except (_Unparsed, struct.error):
                pass  # let the label search decide
        if size == 0:
            return False
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
            return m.find(MARKER) != -1


class _Unparsed(Exception):
    """A container whose headers do not add up (or go on too long): search its bytes instead."""


def _bmff(f, size: int) -> bool:
    offset = 0
    for _ in range(MAX_HEADERS):
        if offset >= size:
            return False
        f.seek(offset)
        box, kind = struct.unpack(">I4s", f.read(8))
        if box == 1:
            box = struct.unpack(">Q", f.read(8))[0]
        elif box == 0:
            box = size - offset
        if box < 8:
            raise _Unparsed
        if kind == b"uuid" and f.read(16) == C2PA_UUID:
            return True
        offset += box
    raise _Unparsed


def _jpeg(f, size: int) -> bool:
    offset = 2
    for _ in range(MAX_HEADERS):
        f.seek(offset)
        marker = f.read(2)
        if len(marker) < 2 or marker[0] != 0xFF:
            raise _Unparsed
        if marker[1] in (0xD9, 0xDA):  # end of image, start of scan: the metadata segments are behind us
            return False
        length = struct.unpack(">H", f.read(2))[0]
        if marker[1] == 0xEB and b"jumb" in f.read(min(length, 64)):  # APP11 carrying JUMBF
            return True
        offset += 2 + length
    raise _Unparsed


def _png(f, size: int) -> bool:
    offset = len(PNG)
    for _ in range(MAX_HEADERS):
        f.seek(offset)
        length, kind = struct.unpack(">I4s", f.read(8))
        if kind == b"caBX":
            return True
        if kind == b"IEND":
            return False
        offset += 12 + length
    raise _Unparsed


def read_provenance(path: str | os.PathLike, trust_anchors: str | None = None,
                    timeout_s: float = READ_TIMEOUT_S) -> Provenance | None:
    """The file's Content Credentials, or None when it carries none (or they are only a reference to
    a manifest elsewhere, which is never fetched). Never raises for what the file holds."""
    try:
        if not has_marker(path):
            return None
    except (OSError, ValueError) as e:
        log.warning("provenance: cannot read the file: %s", type(e).__name__)
        return None
    try:
        d = _READER.read(path, trust_anchors, timeout_s)
    except OSError as e:  # not the file's doing (no process or descriptor to spare): say nothing, not "invalid"
        log.warning("provenance: the reader could not start: %s", e.strerror or type(e).__name__)
        return None
    return None if d is None else Provenance.from_dict(d)


# --- the reader proper (runs in the reader process) --------------------------------------------------
def _read_summary(file, trust_anchors: str | None) -> dict | None:
    """file: a path or a binary file open for reading."""
    import c2pa

    try:
        with open(file, "rb") if isinstance(file, (str, os.PathLike)) else contextlib.nullcontext(file) as f:
            ctx = c2pa.Context.from_dict(_settings(trust_anchors))
            reader = c2pa.Reader.try_create(f, context=ctx)
            if reader is None:
                return None
            with reader:
                store = json.loads(reader.json())
    except (c2pa.C2paError.NotSupported, c2pa.C2paError.RemoteManifest):
        return None  # a container the reader does not know, or a manifest kept elsewhere
    except c2pa.C2paError as e:
        log.debug("provenance: unreadable manifest: %s", type(e).__name__)
        return {"state": "invalid", "errors": [UNREADABLE]}
    return summarise(store)


def _text(value) -> str | None:
    if value is None:
        return None
    return str(value)[:MAX_TEXT]


def _source_type(uri) -> str | None:
    return _text(str(uri).rstrip("/").rsplit("/", 1)[-1]) if uri else None


def _agent(agent) -> str | None:
    if isinstance(agent, dict):
        return _text(" ".join(str(agent[k]) for k in ("name", "version") if agent.get(k)))
    return _text(agent)


def _actions(manifest: dict) -> list[dict]:
    out = []
    for assertion in manifest.get("assertions") or []:
        if isinstance(assertion, dict) and str(assertion.get("label", "")).startswith("c2pa.actions"):
            out += [a for a in (assertion.get("data") or {}).get("actions") or [] if isinstance(a, dict)]
    return out


def summarise(store: dict) -> dict | None:
    """A manifest store (c2pa.Reader.json()) as a Provenance dict."""
    manifests = store.get("manifests") or {}
    active = manifests.get(store.get("active_manifest") or "")
    if not isinstance(active, dict):
        return {"state": "invalid", "errors": [UNREADABLE]}
    actions = _actions(active)
    # an edit of a generated picture declares nothing itself: its ingredient's manifest, in the same store, does
    declared = [a for m in manifests.values() if isinstance(m, dict) for a in _actions(m)]
    codes = [s.get("code") for s in store.get("validation_status") or [] if isinstance(s, dict)]
    state = {"Trusted": "valid", "Valid": "untrusted-signer"}.get(store.get("validation_state"), "invalid")
    sig = active.get("signature_info") or {}
    gen = active.get("claim_generator_info") or []
    generator = _agent(gen[0]) if gen and isinstance(gen, list) else _text(active.get("claim_generator"))
    claimed = any(_source_type(a.get("digitalSourceType")) in AI_SOURCE_TYPES for a in declared)
    return {
        "state": state,
        "ai_generated": claimed and state != "invalid",  # a broken manifest's claim is not reported as a fact
        "ai_generated_claimed": claimed,
        "edited": any(a.get("action") in EDIT_ACTIONS for a in actions),
        "signer": {"issuer": _text(sig.get("issuer")), "common_name": _text(sig.get("common_name"))} if sig else None,
        "claim_generator": generator,
        "created": _text(sig.get("time")),
        "actions": [{"action": _text(a.get("action")), "software_agent": _agent(a.get("softwareAgent")),
                     "digital_source_type": _source_type(a.get("digitalSourceType")), "when": _text(a.get("when"))}
                    for a in actions[:MAX_ACTIONS]],
        "errors": [_text(c) for c in codes if c and c != UNTRUSTED][:MAX_ERRORS] if state == "invalid" else [],
    }


# --- isolation: a reader process of its own, with a deadline and a memory budget -------------------
class _ReaderProcess:
    """One long-lived process that holds only Python and the C2PA library (`python -P
    model/provenance.py FD`: the package, and torch with it, is not imported), fed open file
    descriptors over a Unix socket. A crash, an overrun deadline or an allocation past its budget
    costs that file's credentials (`invalid`) and this process; the next read starts a new one.
    It ends when its parent does (its socket closes)."""

    def __init__(self):
        self.proc: subprocess.Popen | None = None
        self.sock: socket.socket | None = None
        self.anchors: str | None = None  # what the running reader was started with
        self.lock = threading.Lock()

    def read(self, path: str | os.PathLike, trust_anchors: str | None, timeout_s: float) -> dict | None:
        with self.lock, open(path, "rb") as f:
            if self.proc is None or self.proc.poll() is not None or self.anchors != trust_anchors:
                self._start(trust_anchors)
            try:
                socket.send_fds(self.sock, [b"read"], [f.fileno()])
                if not select.select([self.sock], [], [], timeout_s)[0]:
                    self.close()
                    log.warning("provenance: the reader overran %.0f s; stopped", timeout_s)
                    return {"state": "invalid", "errors": [TIMEOUT]}
                return json.loads(self.sock.recv(ANSWER_BYTES))  # b"" (not JSON): the reader died
            except (OSError, ValueError):
                self.close()
                log.warning("provenance: the reader died on a file")
                return {"state": "invalid", "errors": [CRASHED]}

    def _start(self, trust_anchors: str | None) -> None:
        self.close()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.proc = subprocess.Popen(_reader_command(theirs.fileno()), pass_fds=[theirs.fileno()],
                                         stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)  # what a manifest makes it say stays out of logs
        except OSError:
            ours.close()
            raise
        finally:
            theirs.close()
        self.sock, self.anchors = ours, trust_anchors
        with contextlib.suppress(OSError):  # a reader that died at once is found out by the read
            self.proc.stdin.write((trust_anchors or "").encode())
            self.proc.stdin.close()

    def close(self) -> None:
        """End the reader process (it holds no state but the trust anchors)."""
        if self.sock is not None:
            self.sock.close()
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            self.proc.wait()
        self.proc = self.sock = None


def _reader_command(fd: int) -> list[str]:
    return [sys.executable, "-P", str(Path(__file__).resolve()), str(fd)]


_READER = _ReaderProcess()
atexit.register(_READER.close)


def _serve(fd: int) -> None:
    """The reader process: the trust anchors (PEM) on stdin, then one file descriptor to read at a
    time on the socket, each answered with the summary's JSON."""
    import c2pa  # noqa: F401  (before the budget: the library's own mapping is not the file's)

    _die_with_parent()
    trust_anchors = sys.stdin.buffer.read().decode("ascii", "replace") or None
    sock = socket.socket(fileno=fd)
    _limit_memory(READ_MEMORY_BYTES)
    while True:
        try:
            msg, fds, _, _ = socket.recv_fds(sock, 64, 1)
        except OSError:
            return
        if not msg or not fds:
            return  # the parent is gone
        try:
            with os.fdopen(fds[0], "rb") as f:
                answer = _read_summary(f, trust_anchors)
        except Exception as e:  # anything the library raised that _read_summary did not expect
            log.debug("provenance: %s", type(e).__name__)
            answer = {"state": "invalid", "errors": [UNREADABLE]}
        sock.send(json.dumps(answer).encode())


def _die_with_parent() -> None:
    """Linux: be killed when the process that started us ends, even mid-read (a killed worker must
    not leave a reader spinning on a hostile file)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # elsewhere the socket's end still stops an idle reader


def _limit_memory(extra: int) -> None:
    """Cap this process's address space at what it maps now plus `extra`."""
    try:
        import resource

        with open("/proc/self/statm") as f:
            now = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        resource.setrlimit(resource.RLIMIT_AS, (now + extra, now + extra))
    except (OSError, ValueError, ImportError):
        pass  # no /proc or no resource module: the deadline still bounds the read


def describe(p: Provenance | None) -> str | None:
    """One line for people (the CLI), None when the file has no credentials."""
    if p is None:
        return None
    if p.state == "invalid":
        return "Content Credentials don't match this file (changed after signing, or unreadable: " \
               f"{', '.join(p.errors) or 'unknown'})" + ("; they claim it is AI-generated, but broken credentials "
                                                        "prove nothing" if p.ai_generated_claimed else "")
    who = (p.signer.issuer or p.signer.common_name) if p.signer else None
    signed = f"signed by {who or 'an unnamed signer'}" + (" (not verified against a trust list)"
                                                         if p.state == "untrusted-signer" else " (trusted)")
    what = "AI-generated (declared)" if p.ai_generated else ("edited" if p.edited else "created")
    tool = f" with {p.claim_generator}" if p.claim_generator else ""
    return f"Content Credentials: {what}{tool}, {signed}"


if __name__ == "__main__":  # the reader process (_ReaderProcess)
    _serve(int(sys.argv[1]))
