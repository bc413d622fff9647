"""Password hashing (argon2id via argon2-cffi, RFC 9106) and the password rules."""

from __future__ import annotations

from functools import lru_cache

from pathviz.errors import PathVizError

MIN_LENGTH = 12
MAX_LENGTH = 256


@lru_cache(maxsize=1)
def _hasher():
    from argon2 import PasswordHasher

    return PasswordHasher()  # argon2id, RFC 9106 low-memory profile (t=3, m=64 MiB, p=4)


def check_password_rules(password: str, username: str = "") -> None:
    """Raise PathVizError when a new password is too short/long or contains the username."""
    if not isinstance(password, str) or len(password) < MIN_LENGTH:
        raise PathVizError(f"The password is shorter than {MIN_LENGTH} characters.",
                           f"choose at least {MIN_LENGTH} characters (a passphrase of several words works well).")
    if len(password) > MAX_LENGTH:
        raise PathVizError(f"The password is longer than {MAX_LENGTH} characters.", "choose a shorter one.")
    if username and username.lower() in password.lower():
        raise PathVizError("The password contains the username.", "choose a password without your username in it.")


def hash_password(password: str) -> str:
    """The argon2id PHC string of ``password`` (salted; never store the password itself)."""
    return _hasher().hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True when ``password`` matches ``password_hash``; False for a mismatch or an unreadable hash."""
    from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

    try:
        return _hasher().verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with weaker parameters than today's (rehash at next login)."""
    try:
        return _hasher().check_needs_rehash(password_hash)
    except Exception:  # noqa: BLE001
        return True


#: A fixed hash verified against when the username is unknown, so an unknown name costs as much
#: time as a wrong password (no user enumeration by timing).
@lru_cache(maxsize=1)
def dummy_hash() -> str:
    return hash_password("pathviz-no-such-user-dummy-password")
