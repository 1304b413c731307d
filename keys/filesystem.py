"""Private files on disk: permission checks, atomic writes that never overwrite.

Key files must be ``0600`` in a directory no one else can write to; otherwise another
local user could read the (encrypted) key offline or swap it for their own. Writes go
to a ``0600`` temporary file in the same directory that is then linked or renamed into
place, so a crash never leaves a half-written key or manifest behind.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from pathlib import Path
from typing import Final

from keys.errors import InsecureKeyFile, KeyFileError, KeyFileExists

__all__ = [
    "ensure_private_directory",
    "read_private_file",
    "replace_file",
    "require_unshared_directory",
    "write_new_file",
]

_GROUP_OTHER: Final = 0o077
_GROUP_OTHER_WRITE: Final = 0o022


def ensure_private_directory(directory: Path) -> None:
    """Create ``directory`` as ``0700`` if missing; refuse it if others may write to it."""
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise KeyFileError(f"cannot create directory {directory}: {exc.strerror}") from None
    require_unshared_directory(directory)


def require_unshared_directory(directory: Path) -> None:
    """Refuse a directory that group or others can write to (they could swap files)."""
    try:
        mode = directory.stat().st_mode
    except OSError as exc:
        raise KeyFileError(f"cannot read directory {directory}: {exc.strerror}") from None
    if not stat.S_ISDIR(mode):
        raise KeyFileError(f"{directory} is not a directory")
    if mode & _GROUP_OTHER_WRITE:
        raise InsecureKeyFile(
            f"directory {directory} is writable by group or others "
            f"(mode {stat.S_IMODE(mode):04o}); run chmod 700 {directory}"
        )


def read_private_file(path: Path, *, max_size: int) -> bytes:
    """Read a file that must be private to its owner (no group/other permission bits)."""
    try:
        # O_NOFOLLOW: a link's permissions say nothing about its target, and "chmod 600" on a
        # link changes the target, which may be anyone's file: refuse links outright.
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise KeyFileError(f"key file {path} does not exist") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InsecureKeyFile(
                f"key file {path} is a symbolic link; idsvc reads only the file itself: "
                f"replace the link with a copy of its target (cp --remove-destination "
                f'"$(readlink -f {path})" {path}), then check that copy is 0600'
            ) from None
        raise KeyFileError(f"cannot open key file {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        # fstat on the open descriptor: the file checked is the file read.
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise KeyFileError(f"key file {path} is not a regular file")
        if info.st_mode & _GROUP_OTHER:
            raise InsecureKeyFile(
                f"key file {path} is accessible by group or others "
                f"(mode {stat.S_IMODE(info.st_mode):04o}); run chmod 600 {path}"
            )
        require_unshared_directory(path.resolve().parent)
        if info.st_size > max_size:
            raise KeyFileError(f"key file {path} is too large to be a key")
        try:
            return handle.read(max_size + 1)
        except OSError as exc:
            raise KeyFileError(f"cannot read key file {path}: {exc.strerror}") from None


def write_new_file(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Write ``data`` to ``path`` atomically; raise :class:`KeyFileExists` if it exists."""
    temp = _write_temp(path, data, mode)
    try:
        # link() fails if the target exists, which rename() would silently replace.
        os.link(temp, path)
    except FileExistsError:
        raise KeyFileExists(f"{path} already exists; refusing to overwrite it") from None
    except OSError as exc:
        raise KeyFileError(f"cannot write {path}: {exc.strerror}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
    _sync_directory(path.parent)


def replace_file(path: Path, data: bytes, *, mode: int) -> None:
    """Write ``data`` to ``path`` atomically, replacing any previous content."""
    temp = _write_temp(path, data, mode)
    try:
        os.replace(temp, path)
    except OSError as exc:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        raise KeyFileError(f"cannot write {path}: {exc.strerror}") from None
    _sync_directory(path.parent)


def _write_temp(path: Path, data: bytes, mode: int) -> Path:
    temp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW
    try:
        # Created 0600 so the content is never visible to others, even for a moment.
        fd = os.open(temp, flags, 0o600)
    except OSError as exc:
        raise KeyFileError(f"cannot create a file in {path.parent}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
            os.fchmod(handle.fileno(), mode)
    except OSError as exc:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        raise KeyFileError(f"cannot write {path}: {exc.strerror}") from None
    return temp


def _sync_directory(directory: Path) -> None:
    # Makes the new directory entry durable; some filesystems refuse, which is harmless.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
