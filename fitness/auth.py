"""Login tokens: signed JWTs that expire, checked the same way by every service."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import secrets
import time
from collections.abc import Mapping
from functools import lru_cache, wraps
from pathlib import Path
from types import MappingProxyType
from typing import Any

import jwt
from flask import current_app, g, request

from fitness.errors import AuthenticationFailed, PermissionDenied

ALGORITHM = "HS256"
ISSUER = "fitness-goal-tracker"


# HS256 wants a key at least as long as its hash (RFC 7518, section 3.2).
MIN_SECRET_BYTES = 32
CHECKED_TOKENS_KEPT = 4096
"""Valid tokens a process remembers having checked (about 2 MB at most)."""


class InsecureSecret(RuntimeError):
    """The token secret a production process was given is missing or guessable."""


def check_secret(settings: dict) -> None:
    """Raise ``InsecureSecret`` if production lacks a long, varied ``JWT_SECRET``.

    A short or repetitive secret ("changeme", "aaaa…") can be guessed offline from any one
    token, and then anyone can sign tokens for anyone.
    """
    if settings.get("ENV") != "production":
        return
    secret = settings.get("JWT_SECRET") or ""
    if not secret:
        raise InsecureSecret("FITNESS_JWT_SECRET must be set when FITNESS_ENV=production.")
    if len(secret.encode()) < MIN_SECRET_BYTES or len(set(secret)) < 8:
        raise InsecureSecret(
            f"FITNESS_JWT_SECRET is too weak: use at least {MIN_SECRET_BYTES} random bytes "
            "(e.g. `openssl rand -base64 48`)."
        )


def resolve_secret(settings: dict) -> str:
    """Return the token secret from config, or the data directory's own one in development.

    Production must configure ``FITNESS_JWT_SECRET``; locally every process that shares the data
    directory shares a random secret kept there, so tokens survive restarts with no set-up.
    """
    check_secret(settings)
    if settings.get("JWT_SECRET"):
        return settings["JWT_SECRET"]
    path = Path(settings["DATA_DIR"]) / "secrets" / "jwt_secret"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        # Write a private file, then link it into place: processes starting together all
        # read the one complete secret that won, never a half-written one.
        draft = path.with_name(f".jwt_secret.{os.getpid()}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
        with contextlib.suppress(FileExistsError):
            os.link(draft, path)
        draft.unlink()
    return path.read_text().strip()


def issue_token(user_id: str, secret: str, ttl_seconds: int) -> str:
    """Return a signed token for ``user_id`` that expires after ``ttl_seconds``."""
    now = dt.datetime.now(dt.UTC)
    claims = {"sub": user_id, "iat": now, "exp": now + dt.timedelta(seconds=ttl_seconds)}
    claims["iss"] = ISSUER
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_token(token: str, secret: str) -> str:
    """Return the user id of a valid token or raise ``AuthenticationFailed``."""
    return str(verify_claims(token, secret)["sub"])


def verify_claims(token: str, secret: str) -> dict:
    """Return the claims (``sub``, ``exp``, …) of a valid token or raise AuthenticationFailed.

    A token's signature and claims are checked once per process and the answer kept (a bounded
    cache by token and secret: every request carries the same token for an hour, and the check
    was ~5 % of the gateway's CPU per proxied request). Expiry is checked again on every use.
    """
    claims = _checked_claims(token, secret)
    if claims["exp"] <= time.time():
        raise AuthenticationFailed("The token has expired; log in again.")
    return dict(claims)


@lru_cache(maxsize=CHECKED_TOKENS_KEPT)
def _checked_claims(token: str, secret: str) -> Mapping[str, Any]:
    """Return a valid token's claims, read-only; raise for any other (a refusal is not kept)."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={"require": ["exp", "sub", "iat"]},
        )
    except jwt.ExpiredSignatureError:
        raise AuthenticationFailed("The token has expired; log in again.") from None
    except jwt.InvalidTokenError:
        raise AuthenticationFailed("The token is invalid.") from None
    return MappingProxyType(claims)


def bearer_token() -> str:
    """Return the request's bearer token or raise ``AuthenticationFailed``."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationFailed("Send 'Authorization: Bearer <token>' from /users/login.")
    return token.strip()


def login_required(view):
    """Reject requests without a valid token; the caller's id is then ``g.user_id``."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        g.user_id = verify_token(bearer_token(), current_app.config["JWT_SECRET"])
        return view(*args, **kwargs)

    return wrapper


def ensure_self(user_id: str) -> None:
    """Raise ``PermissionDenied`` unless the caller is ``user_id``."""
    if g.get("user_id") != user_id:
        raise PermissionDenied("You can only act on your own data.")
