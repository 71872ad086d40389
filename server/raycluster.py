"""Starting Ray for the two things that run on it: `python -m server scan` (Ray Data) and
`python -m server --backend ray` (Ray Serve). An embedded local Ray by default, or a cluster."""
from __future__ import annotations

import os
import shutil
import tempfile
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
# The embedded Ray's files (sockets, logs, spilled objects): inside a folder of this run's own, 0700
# (Ray's default /tmp/ray and its session folders are 0777), removed by stop_ray.
_temp_dir: Path | None = None


def start_ray(address: str | None, num_cpus: int | None = None) -> None:
    """An embedded local Ray (address None), or a connection to a cluster: "auto" (a `ray start`ed
    node on this machine) or ray://HOST:10001 (Ray Client). Nothing is downloaded: no dashboard,
    no usage statistics, no metrics endpoints, a private (0700) folder for its files; on a cluster,
    the project's code goes along as the job's working dir. stop_ray ends it."""
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    import ray

    env = {"env_vars": dict(WORKER_ENV)}
    if address is None:  # "local": a new Ray of our own, even when a `ray start`ed one runs here
        _loopback_only()
        # Ray's token (on by default for a local Ray) guards its ports from this machine's other
        # users: owner-only here (Ray writes ~/.ray/auth_token world-readable, as its session files)
        _private_ray_token()
        _no_metrics_servers()
        global _temp_dir
        # Ray makes its temp dir and session folders 0777 whatever the umask: they go inside a 0700
        # folder of ours (mkdtemp), which Ray never touches, so no other user can enter them. Short
        # names: Ray's Unix sockets live there (a socket path has at most 107 bytes)
        _temp_dir = Path(tempfile.mkdtemp(prefix="dfc-ray-"))
        umask = os.umask(0o077)
        try:
            ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, logging_level="WARNING",
                     runtime_env=env, _temp_dir=str(_temp_dir / "r"),
                     _system_config={"enable_metrics_collection": False})  # the agent's Prometheus exporter
        finally:
            os.umask(umask)
        _private_ray_token()
    else:
        env["working_dir"] = str(ROOT)
        env["excludes"] = [".git", ".venv", "node_modules", "extension", "tests", "docs", "dist", "*.mp4"]
        env["env_vars"].pop("PYTHONPATH")
        ray.init(address=address, logging_level="WARNING", runtime_env=env)


def stop_ray() -> None:
    """Shuts down the Ray this process started, and removes the embedded Ray's private folder."""
    import ray

    global _temp_dir
    if ray.is_initialized():
        ray.shutdown()
    if _temp_dir is not None:
        shutil.rmtree(_temp_dir, ignore_errors=True)
        _temp_dir = None


def _no_metrics_servers() -> None:
    """The embedded Ray starts no Prometheus endpoint: three of them (the autoscaler's, the dashboard
    process's and the agent's) answer anyone on this machine without Ray's token. Nothing here reads
    them. The agent's is off by Ray's own setting (enable_metrics_collection, in start_ray); Ray
    2.60 has none for the other two, so the monitor is started without the address it would serve
    its metrics on (it serves none then), and the dashboard process in its minimal mode (no metrics
    server; no dashboard is started anyway). tests/server/test_scan.py checks what listens."""
    from ray._private import ray_constants, services

    if getattr(services, "_dfc_no_metrics", False):
        return
    start_monitor, start_process = services.start_monitor, services.start_ray_process

    def monitor_without_metrics(*args, **kwargs):
        kwargs["monitor_ip"] = None
        return start_monitor(*args, **kwargs)

    def dashboard_minimal(command, process_type, *args, **kwargs):
        if process_type == ray_constants.PROCESS_TYPE_DASHBOARD and "--minimal" not in command:
            command = [*command, "--minimal"]
        return start_process(command, process_type, *args, **kwargs)

    services.start_monitor, services.start_ray_process = monitor_without_metrics, dashboard_minimal
    services._dfc_no_metrics = True


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
