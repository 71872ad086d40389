"""Files and folders only this user can read: secrets written atomically 0600, directories 0700."""
from __future__ import annotations

import os
from pathlib import Path


class NotOwnDir(OSError):
    """A path that should be this user's private directory is a symlink, not a directory, or another user's."""


def private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def own_dir(path: Path) -> Path:
    """path as a 0700 directory of this user's, created if missing. Never follows a symlink at
    path and never takes over another user's folder (NotOwnDir): a directory we empty or put
    plaintext in must be ours."""
    try:
        path.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        pass
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)  # a symlink: ELOOP; a file: ENOTDIR
    except OSError as e:
        raise NotOwnDir(f"{path} is not a directory (a symlink or a file?): refusing to use it") from e
    try:
        if os.fstat(fd).st_uid != os.getuid():
            raise NotOwnDir(f"{path} belongs to another user: refusing to use it")
        os.fchmod(fd, 0o700)
    finally:
        os.close(fd)
    return path


def write_private(path: Path, data: bytes) -> None:
    """Write a secret readable by the owner only, atomically (never a world-readable moment)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
