"""The files jobobs writes: whole or not at all, only where they are allowed, and private
where they hold secrets.

``replacing(target)`` gives a path to write a new file at (with DuckDB's ``COPY``, pandas
or plain Python) and puts that file at ``target`` when the block ends without an error.
The file is written in a folder made for the purpose beside the target: a random name
made with ``mkdir`` (which fails if the name exists, and never follows a link), mode 0700,
so nobody can guess it or plant a symbolic link in it. The file is synced, then renamed
into place relative to a descriptor of the target's folder, and the folder is synced.

With ``within`` (a folder's real path: an export folder) the target's folder is opened
from ``/`` one folder at a time without following a symbolic link, and must lie under
``within``. That is checked when the file is written, not only when the job was
submitted, and again before the rename: a folder swapped for a link, or moved away,
while the job waited or wrote, is refused and nothing is left. On Linux the writer (even
DuckDB, which writes by path) writes through that descriptor (``/proc/self/fd``), so the
file lands in the folder that was checked, whatever the path names meanwhile.

``owner_only()`` makes everything the process creates from then on readable by its owner
only (the ``jobobs serve`` process: its database, WAL and scratch folder); the files meant
to be shared (exports) get the mode they would have had before. ``create_database``
creates a new database file owner-only whatever the process's umask.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from jobobs.model.errors import JobobsError

FOLDER = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
PRIVATE = 0o077  # the permission bits of everyone but the owner
THROUGH_DESCRIPTORS = os.path.isdir("/proc/self/fd")
_umask_before: int | None = None  # the process's umask before owner_only()


def outside(folder: str, within: str) -> JobobsError:
    return JobobsError(f"{folder} is not inside {within}, where it was allowed to be written "
                       "(a folder on the way was moved or replaced by a symbolic link); "
                       "nothing was written")


def owner_only() -> None:
    """From now on the process creates files and folders readable by its owner only."""
    global _umask_before
    previous = os.umask(0o077)
    if _umask_before is None:
        _umask_before = previous
    os.umask(previous | PRIVATE)


def shared_mode() -> int | None:
    """The mode a shared file would have had before ``owner_only()`` (None: not called)."""
    return None if _umask_before is None else 0o666 & ~_umask_before


def open_folder(folder: str, within: str | None = None) -> int:
    """A descriptor of ``folder``. With ``within``: its real path must be under it, and it
    is reached from ``/`` without following a symbolic link (JobobsError if not)."""
    if within is None:
        return os.open(folder, FOLDER)
    real = os.path.realpath(folder)
    if os.path.commonpath([real, within]) != within:
        raise outside(folder, within)
    descriptor = os.open("/", FOLDER)
    try:
        for part in real.split(os.sep):
            if part:
                inner = os.open(part, FOLDER | NOFOLLOW, dir_fd=descriptor)
                os.close(descriptor)
                descriptor = inner
    except OSError as error:
        os.close(descriptor)
        if error.errno in (errno.ELOOP, errno.ENOTDIR):  # a link where a folder should be
            raise outside(folder, within) from None
        raise
    return descriptor


def same(first: int, second: int) -> bool:
    one, other = os.fstat(first), os.fstat(second)
    return (one.st_dev, one.st_ino) == (other.st_dev, other.st_ino)


@contextmanager
def _private(outer: int, folder: str, name: str) -> Iterator[tuple[int, str]]:
    """A new folder of mode 0700 with a random name in ``folder`` (open as ``outer``): its
    descriptor, and the path to write ``name`` in it at; removed with what it holds at
    the end."""
    private = f".{name}.jobobs-{secrets.token_hex(8)}"
    os.mkdir(private, 0o700, dir_fd=outer)
    inner = os.open(private, FOLDER | NOFOLLOW, dir_fd=outer)
    try:
        made = os.fstat(inner)
        if made.st_uid != os.geteuid() or made.st_mode & PRIVATE:
            raise JobobsError(f"the folder {private} is not this process's own")
        yield inner, (f"/proc/self/fd/{inner}/{name}" if THROUGH_DESCRIPTORS
                      else os.path.join(os.path.realpath(folder), private, name))
    finally:
        for leftover in os.listdir(inner):
            with suppress(OSError):
                os.unlink(leftover, dir_fd=inner)
        os.close(inner)
        with suppress(OSError):
            os.rmdir(private, dir_fd=outer)


@contextmanager
def replacing(target: str, within: str | None = None, mode: int | None = None,
              replace: bool = True) -> Iterator[str]:
    """A path to write ``target``'s new content at; the file there replaces ``target``
    when the block ends without an error (see the module's docstring). ``mode``: the
    file's mode (default: as made, or as it would have been before ``owner_only()``).
    ``replace=False``: FileExistsError if ``target`` exists by then, which stays as it was
    (a hard link, not a rename, so the check and the move are one step)."""
    folder, name = os.path.split(os.path.abspath(target))
    outer = open_folder(folder, within)
    try:
        with _private(outer, folder, name) as (inner, path):
            yield path
            file = os.open(name, os.O_RDONLY | NOFOLLOW, dir_fd=inner)
            try:
                if not stat.S_ISREG(os.fstat(file).st_mode):
                    raise JobobsError(f"{target} was not written as a file")
                if (mode := shared_mode() if mode is None else mode) is not None:
                    os.fchmod(file, mode)
                os.fsync(file)
            finally:
                os.close(file)
            if within is not None:  # still where it was allowed, just before it shows there
                try:
                    again = open_folder(folder, within)
                except OSError:  # moved away
                    raise outside(folder, within) from None
                try:
                    if not same(outer, again):
                        raise outside(folder, within)
                finally:
                    os.close(again)
            if replace:
                os.replace(name, name, src_dir_fd=inner, dst_dir_fd=outer)
            else:
                os.link(name, name, src_dir_fd=inner, dst_dir_fd=outer, follow_symlinks=False)
        os.fsync(outer)
    finally:
        os.close(outer)


def write_private(path: str, text: str) -> None:
    """Write ``text`` to ``path`` whole, readable by the owner only (mode 0600)."""
    with replacing(path, mode=0o600) as temporary:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | NOFOLLOW, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(text)


def private_folder(path: str) -> str:
    """``path`` made a folder of mode 0700 if it does not exist; its absolute path."""
    path = os.path.abspath(path)
    with suppress(FileExistsError):
        os.makedirs(path, mode=0o700)
    return path


def create_database(path: str) -> None:
    """Create the DuckDB database ``path`` owner-only if there is none: made in a private
    folder beside it and linked into place, so it never exists with a wider mode, and a
    file another process made meanwhile is kept. Any trouble is left for DuckDB to report
    when it opens the file."""
    import duckdb

    if path == ":memory:" or os.path.lexists(path):
        return
    folder, name = os.path.split(os.path.abspath(path))
    try:
        outer = os.open(folder, FOLDER)
    except OSError:
        return
    try:
        with _private(outer, folder, name) as (inner, made):
            duckdb.connect(made).close()
            os.chmod(name, 0o600, dir_fd=inner)
            with suppress(FileExistsError):
                os.link(name, name, src_dir_fd=inner, dst_dir_fd=outer)
    except (OSError, duckdb.Error):
        pass
    finally:
        os.close(outer)
