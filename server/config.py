"""Server configuration: every limit and path named once, with the documented defaults."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

VERSION = "0.1.0"
DEFAULT_PORT = 8765
APP_NAME = "deepfake-check"


def _xdg(var: str, fallback: str) -> Path:
    base = os.environ.get(var)
    return Path(base) if base else Path.home() / fallback


def default_config_dir() -> Path:
    return _xdg("XDG_CONFIG_HOME", ".config") / APP_NAME


def default_data_dir() -> Path:
    return _xdg("XDG_DATA_HOME", ".local/share") / APP_NAME


@dataclass
class Config:
    port: int = DEFAULT_PORT
    host: str = "127.0.0.1"
    weights: str | None = None  # None: the default registered model (or $DEEPFAKE_CHECK_WEIGHTS)
    device: str | None = None
    frames: int = 20  # default frames per check when a request does not say
    allow_private_fetch: bool = False
    allow_origins: tuple[str, ...] = ()
    config_dir: Path = field(default_factory=default_config_dir)
    data_dir: Path = field(default_factory=default_data_dir)
    plain_dir: Path | None = None  # decrypted files; None: a new directory in RAM for each run (media.new_plain_dir)
    max_upload_mb: int = 100  # an upload; also all the frames of one frames check together
    # frames captured in the browser (POST /v1/checks/frames): how many, and how big each may be
    max_frames: int = 100
    max_frame_mb: int = 4
    max_frame_side: int = 4096  # pixels, the longer side
    # pixels of all the frames of one request together: what the worker decodes costs time and memory
    # by the pixel, not by the byte (100 solid-colour 4096x4096 PNGs are 5.6 MB). The extension sends
    # at most 100 frames of at most 1280 px on the longer side (extension/content/capture.js)
    max_frames_pixels: int = 100 * 1280 * 1280
    log_urls: bool = False
    # jobs
    queue_size: int = 16  # unfinished checks (downloading + waiting + running) before 503
    max_downloads: int = 2
    deadline_s: float = 300.0  # per check: fetch + analysis (waiting for the worker excluded; analysis >= 60 s)
    max_duration_s: float = 600.0  # videos longer than this are refused before download
    # the fetcher (yt-dlp): /v1/health calls it stale, and the popup says so, past this age (sites
    # change weekly; `make update-fetcher`)
    fetcher_max_age_days: int = 60
    # BROWSER[+KEYRING][:PROFILE]: checks that ask for it fetch with the post's site's cookies from
    # this browser (--cookies-from-browser; None: every fetch is anonymous)
    cookies_from_browser: str | None = None
    # where checks run: "local" (the inference worker process, server/worker.py) or "ray" (a Ray
    # Serve deployment, server/rayserve.py: an embedded Ray, or the cluster at ray_address)
    backend: str = "local"
    ray_address: str | None = None
    replicas: int = 1
    gpus_per_replica: float = 0.0
    # the inference worker's resident memory: a check that pushes it past this fails (too_large) and
    # the worker restarts (the model alone takes ~1-1.5 GB; 0: no cap)
    worker_memory_mb: int = 4096
    # CA certificates (PEM) whose Content Credentials signers count as trusted, e.g. the C2PA trust
    # list (None: intact credentials are "untrusted-signer"; nothing is downloaded at run time)
    c2pa_trust_anchors: Path | None = None
    cache_ttl_s: float = 7 * 24 * 3600
    jobs_kept_s: float = 3600.0  # finished checks stay readable by id this long
    jobs_kept_max: int = 1000  # ... and at most this many of them (the newest): ~0.5 KB each, results shared
    heatmap_bytes_kept: int = 4 * 2**20  # heatmap PNGs of the newest checks, in all (~60 of ~65 KB)
    media_max_age_s: float = 30 * 60
    # the history of checks (server/history.py): unanswered entries go after this long; answered
    # ones are the user's labels and stay until deleted
    history_kept_s: float = 30 * 24 * 3600
    max_note_chars: int = 1000  # the note a user may add to an answer
    sweep_every_s: float = 60.0
    retry_after_s: int = 10
    # access control
    rate_limit_per_min: int = 600  # per token, however its header is spelled
    # wrong tokens per client address (on loopback, every local program shares one): past it, that
    # client's requests carrying a token get 429 until the limit refills, right token or not
    auth_failures_per_min: int = 30
    pair_attempts_per_min: int = 10

    def __post_init__(self):
        self.config_dir = Path(self.config_dir)
        self.data_dir = Path(self.data_dir)
        if self.plain_dir is not None:
            self.plain_dir = Path(self.plain_dir)

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * 1024 * 1024

    @property
    def max_frame_bytes(self) -> int:
        return self.max_frame_mb * 1024 * 1024

    @property
    def max_fetch_bytes(self) -> int:
        return self.max_upload_bytes

    @property
    def media_dir(self) -> Path:
        return self.data_dir / "media"  # encrypted media only

    @property
    def fetch_dir(self) -> Path:
        # where downloads once went (on disk): emptied at start; they now go to the run's RAM folder
        # (app._downloads), which a killed run leaves in RAM only and the next start removes
        return self.data_dir / "fetch"

    @property
    def plain_dir_record(self) -> Path:
        return self.data_dir / "plain-dir"  # the path of this run's directory for decrypted files

    @property
    def cache_path(self) -> Path:
        return self.data_dir / "cache.sqlite3"

    @property
    def kept_dir(self) -> Path:
        return self.data_dir / "kept"  # clips the user kept for retraining, encrypted under clip_key_path

    @property
    def personal_calibration_path(self) -> Path:
        return self.data_dir / "personal-calibration.json"

    @property
    def clip_key_path(self) -> Path:
        return self.config_dir / "clips.key"  # apart from the clips: a copy of the data folder alone reads nothing

    @property
    def tls_dir(self) -> Path:
        return self.config_dir / "tls"

    @property
    def token_path(self) -> Path:
        return self.config_dir / "token"

    @property
    def paired_origin_path(self) -> Path:
        return self.config_dir / "paired-origin"
