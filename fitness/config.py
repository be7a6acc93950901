"""Configuration: defaults in code, overridden by ``FITNESS_*`` environment variables.

Every process reads its settings through :func:`load_settings` so that the same variable means the
same thing everywhere (docs/configuration.md lists them all). Any setting may instead be read
from a file
named by ``FITNESS_<NAME>_FILE`` (Docker's convention for secrets): passwords then live in files
only the process can read (compose ``secrets:``, ``DATA_DIR/secrets``), not in its environment,
where ``docker inspect`` and ``ps e`` show them.
"""

from __future__ import annotations

import dataclasses
import os
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

from fitness.imports import MAX_UPLOAD_BYTES

ENV_PREFIX = "FITNESS_"
FILE_SUFFIX = "_FILE"

COMMON_DEFAULTS: dict[str, Any] = {
    "ENV": "development",
    # Where `serve` listens (HTTP and gRPC): loopback unless asked (compose sets 0.0.0.0).
    "HOST": "127.0.0.1",
    "DATA_DIR": "data",
    "LOG_LEVEL": "INFO",
    "LOG_FILE": "",
    # Ship every log event to Logstash (TCP, json_lines) too; empty = stdout/file only.
    "LOGSTASH_HOST": "",
    "LOGSTASH_PORT": 5959,
    # How often queued events are sent (and, while Logstash is down, retried).
    "LOGSTASH_FLUSH_SECONDS": 2.0,
    # Events still queued after this long (Logstash away for days) are dropped: the on-disk
    # queue stays bounded. Every event is in the process's own log as well.
    "LOGSTASH_EVENT_TTL_SECONDS": 7 * 24 * 3600,
    "JWT_SECRET": "",
    # The gRPC CA and certificates (fitness/mtls.py); empty: DATA_DIR/secrets/tls.
    "TLS_DIR": "",
    "JWT_TTL_SECONDS": 3600,
    "GRPC_TIMEOUT_SECONDS": 3.0,
    "MAX_BODY_BYTES": 64 * 1024,
    # The largest file import (a zip archive; one activity file stops at 16 MiB), in bytes.
    "MAX_UPLOAD_BYTES": MAX_UPLOAD_BYTES,
    "USER_GRPC_TARGETS": "127.0.0.1:50051,127.0.0.1:50061",
    "ACTIVITY_GRPC_TARGETS": "127.0.0.1:50052,127.0.0.1:50062",
}
# Database URLs whose password is its own setting (usually ``FITNESS_<NAME>_FILE``, a secret).
# The Redis passwords are given to the clients apart instead: their URLs key the cache ring.
URL_PASSWORDS = {
    "DATABASE_URL": "DATABASE_PASSWORD",
    "MONGO_URL": "MONGO_PASSWORD",
    "WAREHOUSE_URL": "WAREHOUSE_PASSWORD",
}


def _coerce(raw: str, default: Any) -> Any:
    """Convert an environment string to the type of its default."""
    if isinstance(default, bool):
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        return float(raw)
    return raw


def load_settings(
    defaults: dict[str, Any], overrides: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Return defaults (common + the caller's), then ``FITNESS_*`` variables, then overrides."""
    merged = {**COMMON_DEFAULTS, **defaults}
    settings = {}
    for key, default in merged.items():
        raw = _raw_setting(key)
        settings[key] = default if raw is None else _coerce(raw, default)
    for url_key, password_key in URL_PASSWORDS.items():
        if settings.get(password_key) and settings.get(url_key):
            settings[url_key] = with_password(settings[url_key], settings[password_key])
    settings.update(overrides or {})
    settings["DATA_DIR"] = str(Path(settings["DATA_DIR"]).resolve())
    return settings


@dataclasses.dataclass(frozen=True)
class Settings:
    """A part's settings, typed: a frozen dataclass whose field ``name`` is ``FITNESS_NAME``.

    A part (a room of the gateway) declares its settings once, as fields with defaults, and
    reads them as attributes. The process composes every part's :meth:`defaults` into the one
    mapping :func:`load_settings` reads (so ``--help``, the environment and test overrides work
    as for any setting), then hands each part :meth:`from_mapping` of it.
    """

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """Return the defaults by setting name (``FIELD_NAME``)."""
        return {field.name.upper(): field.default for field in dataclasses.fields(cls)}

    @classmethod
    def from_mapping(cls, settings: Mapping[str, Any]) -> Self:
        """Pick this part's settings out of a process's loaded settings."""
        fields = dataclasses.fields(cls)
        return cls(**{field.name: settings[field.name.upper()] for field in fields})

    @classmethod
    def from_env(cls, overrides: dict[str, Any] | None = None) -> Self:
        """Load this part's settings alone: defaults, ``FITNESS_*`` variables, ``overrides``."""
        return cls.from_mapping(load_settings(cls.defaults(), overrides))


def compose_defaults(*parts: type[Settings]) -> dict[str, Any]:
    """Merge the defaults of ``parts``, leaving out the common ones (``load_settings`` adds
    those); a setting two parts share, or a common one, must default the same everywhere."""
    merged: dict[str, Any] = {}
    for part in parts:
        for key, value in part.defaults().items():
            first = COMMON_DEFAULTS.get(key, merged.setdefault(key, value))
            if first != value:
                raise ValueError(f"{key} defaults to {first!r} and to {value!r}")
    return {key: value for key, value in merged.items() if key not in COMMON_DEFAULTS}


class SettingFileMissing(RuntimeError):
    """A ``FITNESS_<NAME>_FILE`` names a file that cannot be read."""


def _raw_setting(key: str) -> str | None:
    """Return the variable ``FITNESS_<key>``, else the contents of ``FITNESS_<key>_FILE``."""
    name = ENV_PREFIX + key
    if (raw := os.environ.get(name)) is not None:
        return raw
    if not (path := os.environ.get(name + FILE_SUFFIX)):
        return None
    try:
        return Path(path).read_text().strip()
    except OSError as exc:
        reason = f"{name}{FILE_SUFFIX}: cannot read {path} ({exc.strerror})"
        raise SettingFileMissing(reason) from None


def with_password(url: str, password: str) -> str:
    """Return ``url`` with ``password`` for the user it names (``url`` itself if no password).

    The user stays in the URL (it is configuration); the password comes from its own setting,
    usually a secret file, so that a URL can be shown or logged without it.
    """
    if not password:
        return url
    parts = urllib.parse.urlsplit(url)
    user, at, hosts = parts.netloc.rpartition("@")
    if not at:
        raise ValueError(f"{redacted(url)} names no user for its password (user@host)")
    user = user.partition(":")[0]
    netloc = f"{user}:{urllib.parse.quote(password, safe='')}@{hosts}"
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def split_targets(value: str) -> list[str]:
    """Split a comma-separated list of ``host:port`` targets."""
    return [part.strip() for part in value.split(",") if part.strip()]


def redacted(url: str) -> str:
    """Return ``url`` with its password, if any, masked (for printing and logging)."""
    parts = urllib.parse.urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":****@", 1)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
