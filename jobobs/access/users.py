"""The users file: who may sign in to the dashboard, with which role.

``{"ann": {"password": "scrypt$n=131072,r=8,p=1$<salt>$<key>", "role": "operator"}}``:
the password is stored as a scrypt key with its own random salt and the parameters it was
derived with, and checked in constant time. ``jobobs passwd`` writes the file (mode 0600);
``jobobs serve`` refuses one that others may read or write, that belongs to someone else,
or that holds a password in plain text. Standard library only, besides
``jobobs.db.files``, which writes the file whole.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import stat

from jobobs.db import files
from jobobs.model.errors import JobobsError

ROLES = ("operator", "viewer")
SCHEME = "scrypt"
# OWASP's recommendation for scrypt: N=2^17, r=8, p=1 (128 MiB and a fraction of a second
# per check); the parameters travel in each hash, so they can be raised later.
N, R, P = 2**17, 8, 1
SALT_BYTES, KEY_BYTES = 16, 32
MIN_PASSWORD, MAX_PASSWORD = 8, 1024
NAME = re.compile(r"[\w.@+-]{1,64}")
_DUMMY_SALT = secrets.token_bytes(SALT_BYTES)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _derive(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    maxmem = 128 * r * (n + p + 2) + 2**20  # what OpenSSL needs, and some room
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p,
                          maxmem=maxmem, dklen=KEY_BYTES)


def hash_password(password: str) -> str:
    """``scrypt$n=…,r=…,p=…$salt$key`` for ``password``, with a fresh random salt."""
    salt = secrets.token_bytes(SALT_BYTES)
    key = _derive(password, salt, N, R, P)
    return f"{SCHEME}$n={N},r={R},p={P}${_b64(salt)}${_b64(key)}"


def parse(stored: str) -> tuple[bytes, int, int, int, bytes]:
    """The salt, n, r, p and key of a stored hash; ValueError when it is not one."""
    scheme, params, encoded_salt, encoded_key = stored.split("$")
    values = dict(item.split("=", 1) for item in params.split(","))
    if scheme != SCHEME or set(values) != {"n", "r", "p"}:
        raise ValueError("not a scrypt hash")
    n, r, p = int(values["n"]), int(values["r"]), int(values["p"])
    salt = base64.b64decode(encoded_salt, validate=True)
    key = base64.b64decode(encoded_key, validate=True)
    if (n < 2 or n & (n - 1) or 128 * n * r > 2**30 or not 1 <= p <= 16 or r < 1
            or len(salt) < 8 or len(key) < 16):
        raise ValueError("scrypt parameters out of range")  # at most 1 GiB per check
    return salt, n, r, p, key


def verify(password: str, stored: str | None) -> bool:
    """Whether ``password`` matches ``stored``. With ``stored`` None (no such user) the same
    work is done, so that the time taken does not tell whether a user exists."""
    if stored is None:
        _derive(password, _DUMMY_SALT, N, R, P)
        return False
    salt, n, r, p, key = parse(stored)
    return hmac.compare_digest(_derive(password, salt, n, r, p), key)


def is_hashed(stored: object) -> bool:
    try:
        parse(stored)  # type: ignore[arg-type]
    except (ValueError, TypeError, AttributeError):
        return False
    return True


def _load(path: str, *, mending: bool = False) -> dict:
    """The file's JSON object, once it is known to be its reader's own and closed to others
    (``mending``: open to others is allowed, as the file is about to be rewritten)."""
    with open(path, encoding="utf-8") as file:
        info = os.fstat(file.fileno())
        if info.st_uid != os.getuid():
            raise JobobsError(f"the users file {path} belongs to another user (uid "
                              f"{info.st_uid}); it must be yours, with mode 600")
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077 and not mending:
            raise JobobsError(f"the users file {path} is open to others (mode {mode:03o}); "
                              f"make it yours only: chmod 600 {path}")
        try:
            users = json.load(file)
        except ValueError as error:
            raise JobobsError(f"the users file {path} is not JSON: {error}") from None
    if not isinstance(users, dict):
        raise JobobsError(f"the users file {path} must be a JSON object of users")
    return users


def read(path: str) -> dict[str, dict[str, str]]:
    """The dashboard's users, ``{"ann": {"password": "scrypt$...", "role": "operator"}}``;
    roles are operator (may act) and viewer (may look)."""
    try:
        users = _load(path)
    except OSError as error:
        raise JobobsError(f"cannot read the users file {path}: {error.strerror}") from None
    if not users:
        raise JobobsError(f"the users file {path} has no users; add one with: "
                          f"jobobs passwd NAME --users {path}")
    for name, user in users.items():
        if not isinstance(user, dict) or user.get("role") not in ROLES:
            raise JobobsError(f"user {name!r} in {path} needs a role "
                              f"({' or '.join(ROLES)}); set it with: "
                              f"jobobs passwd {name} --role viewer --users {path}")
        if not is_hashed(user.get("password")):
            raise JobobsError(f"user {name!r} in {path} has no hashed password (plain text "
                              f"is refused); set it with: jobobs passwd {name} --users {path}")
    return users


def set_password(path: str, name: str, password: str,
                 role: str | None = None) -> dict[str, str]:
    """Add ``name`` to the users file at ``path`` or change their password (and role, when
    given; a new user is a viewer unless told otherwise). The file is replaced atomically
    and left readable by its owner only. Returns the user's entry."""
    if not NAME.fullmatch(name):
        raise JobobsError(f"a user name has 1 to 64 letters, digits or . @ + - _, not "
                          f"{name!r}")
    if role is not None and role not in ROLES:
        raise JobobsError(f"a role is {' or '.join(ROLES)}, not {role!r}")
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise JobobsError(f"the password needs {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    try:
        users = _load(path, mending=True)
    except FileNotFoundError:
        users = {}
    previous = users.get(name) if isinstance(users.get(name), dict) else {}
    users[name] = {"password": hash_password(password),
                   "role": role or previous.get("role") or "viewer"}
    files.write_private(path, json.dumps(users, indent=2) + "\n")
    return users[name]
