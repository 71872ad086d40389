"""Content Credentials (C2PA): what a file says about where it came from, read beside the verdict.

Cameras, editors and AI generators sign a C2PA manifest into JPEG/PNG/WebP/MP4/MOV files; its actions
can declare the media AI-generated (IPTC `digitalSourceType`). `read_provenance(path)` returns None
for a file without one, else a `Provenance`: `valid` (intact and signed by a trust anchor the user
supplied), `untrusted-signer` (intact, signer not on a trust list: nothing is downloaded, so without
anchors this is the best a correct file gets) or `invalid` (changed after signing, or unreadable).

The native reader runs in a forked child with a time and memory budget: a hostile manifest that
crashes or hangs it ends as `invalid`, never as a crash or a hang of the caller. A file whose bytes
hold no C2PA label at all (nearly every file) is answered without the native reader or a fork.
"""
from __future__ import annotations

import contextlib
import faulthandler
import json
import logging
import mmap
import os
import select
import signal
import struct
import time
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
# address space the reader may add to the process it was forked from (a huge or recursive
# manifest ends as invalid, not as the worker swapping)
READ_MEMORY_BYTES = 1024 * 2**20
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
    ai_generated: bool = False  # an action declares trainedAlgorithmicMedia or kin
    edited: bool = False  # an action changed the content (EDIT_ACTIONS)
    signer: Signer | None = None
    claim_generator: str | None = None  # the tool that wrote the manifest
    created: str | None = None  # the signature's trusted time (RFC 3339), when it was time-stamped
    actions: list[dict] = field(default_factory=list)  # [{"action", "software_agent", "digital_source_type", "when"}]
    errors: list[str] = field(default_factory=list)  # C2PA failure codes (and ours: provenance.*)

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
    d = _read_forked(path, trust_anchors, timeout_s) if hasattr(os, "fork") else _read_summary(path, trust_anchors)
    return None if d is None else Provenance.from_dict(d)


# --- the reader proper (runs in the forked child) --------------------------------------------------
def _read_summary(path: str | os.PathLike, trust_anchors: str | None) -> dict | None:
    import c2pa

    try:
        with open(path, "rb") as f:
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


def summarise(store: dict) -> dict | None:
    """A manifest store (c2pa.Reader.json()) as a Provenance dict."""
    manifests = store.get("manifests") or {}
    active = manifests.get(store.get("active_manifest") or "")
    if not isinstance(active, dict):
        return {"state": "invalid", "errors": [UNREADABLE]}
    actions = []
    for assertion in active.get("assertions") or []:
        if isinstance(assertion, dict) and str(assertion.get("label", "")).startswith("c2pa.actions"):
            actions += [a for a in (assertion.get("data") or {}).get("actions") or [] if isinstance(a, dict)]
    codes = [s.get("code") for s in store.get("validation_status") or [] if isinstance(s, dict)]
    state = {"Trusted": "valid", "Valid": "untrusted-signer"}.get(store.get("validation_state"), "invalid")
    sig = active.get("signature_info") or {}
    gen = active.get("claim_generator_info") or []
    generator = _agent(gen[0]) if gen and isinstance(gen, list) else _text(active.get("claim_generator"))
    return {
        "state": state,
        "ai_generated": any(_source_type(a.get("digitalSourceType")) in AI_SOURCE_TYPES for a in actions),
        "edited": any(a.get("action") in EDIT_ACTIONS for a in actions),
        "signer": {"issuer": _text(sig.get("issuer")), "common_name": _text(sig.get("common_name"))} if sig else None,
        "claim_generator": generator,
        "created": _text(sig.get("time")),
        "actions": [{"action": _text(a.get("action")), "software_agent": _agent(a.get("softwareAgent")),
                     "digital_source_type": _source_type(a.get("digitalSourceType")), "when": _text(a.get("when"))}
                    for a in actions[:MAX_ACTIONS]],
        "errors": [_text(c) for c in codes if c and c != UNTRUSTED][:MAX_ERRORS] if state == "invalid" else [],
    }


# --- isolation: a forked child with a deadline and a memory budget ---------------------------------
def _read_forked(path: str | os.PathLike, trust_anchors: str | None, timeout_s: float) -> dict | None:
    import c2pa  # noqa: F401  (loaded once here, so each child starts with the library mapped)

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: read, answer, exit without running the parent's cleanup
        status = 0
        try:
            os.close(r)
            faulthandler.disable()  # a reader that dies says so once, in the parent's log, not with its stack
            _limit_memory(READ_MEMORY_BYTES)
            out = json.dumps(_read_summary(path, trust_anchors)).encode()
        except BaseException:
            out, status = json.dumps({"state": "invalid", "errors": [UNREADABLE]}).encode(), 1
        try:
            while out:
                out = out[os.write(w, out):]
        finally:
            os._exit(status)
    os.close(w)
    chunks, deadline, ended = [], time.monotonic() + timeout_s, False
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([r], [], [], left)[0]:
                break
            chunk = os.read(r, 65536)
            if not chunk:
                ended = True
                break
            chunks.append(chunk)
    finally:
        os.close(r)
        if not ended:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        _, code = os.waitpid(pid, 0)
    if not ended:
        log.warning("provenance: the reader overran %.0f s; stopped", timeout_s)
        return {"state": "invalid", "errors": [TIMEOUT]}
    try:
        return json.loads(b"".join(chunks))
    except ValueError:
        log.warning("provenance: the reader died (status %s)", code)
        return {"state": "invalid", "errors": [CRASHED]}


def _limit_memory(extra: int) -> None:
    """Cap this (forked) process's address space at what it maps now plus `extra`."""
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
               f"{', '.join(p.errors) or 'unknown'})"
    who = (p.signer.issuer or p.signer.common_name) if p.signer else None
    signed = f"signed by {who or 'an unnamed signer'}" + (" (not verified against a trust list)"
                                                         if p.state == "untrusted-signer" else " (trusted)")
    what = "AI-generated (declared)" if p.ai_generated else ("edited" if p.edited else "created")
    tool = f" with {p.claim_generator}" if p.claim_generator else ""
    return f"Content Credentials: {what}{tool}, {signed}"
