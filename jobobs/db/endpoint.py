"""The discovery file: how clients find the server that owns a database.

``jobobs serve`` writes ``<database>.server.json`` beside the database, readable by its
owner only, with the Quack address, the token and the dashboard's URL; it removes the file
when it exits cleanly. A file whose process is gone (a server killed with -9) is stale and
is ignored, then replaced by the next server.

A client trusts the file only if it is a file (not a symbolic link) of the same user, of
mode 0600, naming this database: anyone else could point the client at a server of their
own, which would then see what it submits and answer what it likes.
"""

from __future__ import annotations

import json
import os
import re
import socket
import stat
from dataclasses import asdict, dataclass

from jobobs.db import files
from jobobs.model.errors import JobobsError


@dataclass
class Endpoint:
    pid: int
    host: str
    quack: str       # quack:HOST:PORT
    dashboard: str   # http://HOST:PORT/
    token: str
    db: str

    def __repr__(self) -> str:  # never show the token
        return f"Endpoint(pid={self.pid}, quack={self.quack!r}, dashboard={self.dashboard!r})"


def path_for(db: str) -> str:
    return os.path.abspath(db) + ".server.json"


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read(db: str) -> Endpoint | None:
    """The live server of ``db``, or None when there is none (or only a stale file)."""
    path = path_for(db)
    try:
        with open(os.open(path, os.O_RDONLY | files.NOFOLLOW | os.O_NONBLOCK)) as file:
            if why := distrust(os.fstat(file.fileno())):
                raise untrusted(path, why)
            data = json.load(file)
        endpoint = Endpoint(**data)
    except FileNotFoundError:
        return None
    except OSError as error:
        if os.path.islink(path):
            raise untrusted(path, "it is a symbolic link") from None
        raise JobobsError(f"the server file {path} cannot be read ({error})") from None
    except (ValueError, TypeError) as error:
        raise JobobsError(f"the server file {path} cannot be read ({error})") from None
    if not names(endpoint.db, db):
        raise untrusted(path, f"it names another database ({endpoint.db})")
    if endpoint.host == socket.gethostname() and not (alive(endpoint.pid)
                                                      and listening(endpoint.quack)):
        return None  # the process is gone, or its pid now belongs to another program
    return endpoint


def untrusted(path: str, why: str) -> JobobsError:
    return JobobsError(f"the server file {path} is not to be trusted: {why}; remove it if no "
                       "server of yours serves this database")


def distrust(info: os.stat_result) -> str | None:
    """Why a discovery file with this ``stat`` is not to be trusted, if it is not."""
    if not stat.S_ISREG(info.st_mode):
        return "it is not a plain file"
    if info.st_uid != os.geteuid():
        return f"it belongs to user {info.st_uid}, not to you"
    if stat.S_IMODE(info.st_mode) != 0o600:
        return f"its mode is {stat.S_IMODE(info.st_mode):o}, not 600"
    return None


def names(named: object, db: str) -> bool:
    """``named`` (a discovery file's ``db``) is the database ``db``."""
    if not isinstance(named, str):
        return False
    try:
        return os.path.samefile(named, db)
    except OSError:
        return os.path.realpath(named) == os.path.realpath(db)


def listening(address: str) -> bool:
    """Something accepts connections at ``quack:HOST:PORT``."""
    host, _, port = address.removeprefix("quack:").rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=0.5):
            return True
    except (OSError, ValueError):
        return False


def write(endpoint: Endpoint) -> str:
    """Write the discovery file (mode 0600), replacing a stale one."""
    path = path_for(endpoint.db)
    running = read(endpoint.db)
    if running is not None and running.pid != os.getpid():
        raise JobobsError(already_running(running))
    files.write_private(path, json.dumps(asdict(endpoint)))
    return path


def remove(endpoint: Endpoint) -> None:
    """Remove the discovery file if it is still this server's."""
    path = path_for(endpoint.db)
    try:
        with open(path) as file:
            if json.load(file).get("pid") != endpoint.pid:
                return
        os.remove(path)
    except (OSError, ValueError):
        pass


def already_running(endpoint: Endpoint) -> str:
    return (f"a jobobs server (pid {endpoint.pid} on {endpoint.host}) already serves "
            f"{endpoint.db}: dashboard {endpoint.dashboard}, Quack {endpoint.quack}")


def in_use(db: str, lock_error: str) -> str:
    """Why ``db`` cannot be opened, from DuckDB's lock error: the server that owns it and
    how to reach it instead, else the process that holds it."""
    try:
        server = read(db)
    except JobobsError:
        server = None
    if server is not None:
        return (f"{already_running(server)}; connect through it with jobobs.connect({db!r}) "
                "or the jobobs command instead of opening the file")
    return (f"the database is in use by {holder(lock_error)} (DuckDB lets one process at "
            f"a time open {db}); stop it, or run this through it")


def holder(lock_error: str) -> str:
    """Who holds the lock, from DuckDB's lock error: "process N", else "another process"."""
    pid = re.search(r"PID (\d+)", lock_error)
    return f"process {pid.group(1)}" if pid else "another process"
