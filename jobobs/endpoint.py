"""The discovery file: how clients find the server that owns a database.

``jobobs serve`` writes ``<database>.server.json`` beside the database, readable by its
owner only, with the Quack address, the token and the dashboard's URL; it removes the file
when it exits cleanly. A file whose process is gone (a server killed with -9) is stale and
is ignored, then replaced by the next server.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
from dataclasses import asdict, dataclass

from jobobs.errors import JobobsError


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
        with open(path) as file:
            data = json.load(file)
        endpoint = Endpoint(**data)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError) as error:
        raise JobobsError(f"the server file {path} cannot be read ({error})") from None
    if endpoint.host == socket.gethostname() and not (alive(endpoint.pid)
                                                      and listening(endpoint.quack)):
        return None  # the process is gone, or its pid now belongs to another program
    return endpoint


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
    folder, name = os.path.split(path)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{name}.", dir=folder)  # mode 0600
    with os.fdopen(descriptor, "w") as file:
        json.dump(asdict(endpoint), file)
    os.replace(temporary, path)
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
