"""Starting Ray for the two things that run on it: `python -m server scan` (Ray Data) and
`python -m server --backend ray` (Ray Serve). An embedded local Ray by default, or a cluster."""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Environment of Ray's workers: the project importable, one thread each for the face detector
# (tasks run side by side: one per CPU), no usage statistics sent anywhere.
WORKER_ENV = {"PYTHONPATH": str(ROOT), "DEEPFAKE_CHECK_DETECT_THREADS": "1", "RAY_USAGE_STATS_ENABLED": "0"}
# Off, Ray takes this machine for a node that no other joins (as it does on macOS and Windows): its
# node address is 127.0.0.1 and every server it starts (GCS, raylet, workers, agents, metrics) binds
# loopback only. On Linux Ray otherwise binds them on all interfaces (its metrics endpoints answer
# without its token). Read by Ray at import, in this process and in the processes it starts.
LOCAL_ONLY_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def start_ray(address: str | None, num_cpus: int | None = None) -> None:
    """An embedded local Ray (address None), or a connection to a cluster: "auto" (a `ray start`ed
    node on this machine) or ray://HOST:10001 (Ray Client). Nothing is downloaded: no dashboard,
    no usage statistics; on a cluster, the project's code goes along as the job's working dir."""
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    import ray

    env = {"env_vars": dict(WORKER_ENV)}
    if address is None:  # "local": a new Ray of our own, even when a `ray start`ed one runs here
        _loopback_only()
        # Ray's token (on by default for a local Ray) guards its ports from this machine's other
        # users: owner-only here (Ray writes ~/.ray/auth_token world-readable, as its session files)
        _private_ray_token()
        umask = os.umask(0o077)
        try:
            ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, logging_level="WARNING",
                     runtime_env=env)
        finally:
            os.umask(umask)
        _private_ray_token()
    else:
        env["working_dir"] = str(ROOT)
        env["excludes"] = [".git", ".venv", "node_modules", "extension", "tests", "docs", "dist", "*.mp4"]
        env["env_vars"].pop("PYTHONPATH")
        ray.init(address=address, logging_level="WARNING", runtime_env=env)


def _loopback_only() -> None:
    """Make the Ray this process starts listen on loopback only (LOCAL_ONLY_ENV): set for the
    processes Ray starts, and for this one, where ray may already be imported (its constant is read
    at import; ray.init reads it back through the module)."""
    os.environ[LOCAL_ONLY_ENV] = "0"
    from ray._private import ray_constants

    ray_constants.ENABLE_RAY_CLUSTER = False


def _private_ray_token() -> None:
    token = Path.home() / ".ray" / "auth_token"
    for p in (token.parent, token):
        try:
            if p.exists() and not p.is_symlink() and p.stat().st_uid == os.getuid():
                os.chmod(p, 0o700 if p.is_dir() else 0o600)
        except OSError:
            pass
