"""Configuration: defaults in code, overridden by ``FITNESS_*`` environment variables.

Every process reads its settings through :func:`load_settings` so that the same variable means the
same thing everywhere (the README lists them all).
"""

from __future__ import annotations

import os
import urllib.parse
from pathlib import Path
from typing import Any

ENV_PREFIX = "FITNESS_"

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
    "JWT_SECRET": "",
    # The gRPC CA and certificates (fitness/mtls.py); empty: DATA_DIR/secrets/tls.
    "TLS_DIR": "",
    "JWT_TTL_SECONDS": 3600,
    "GRPC_TIMEOUT_SECONDS": 3.0,
    "MAX_BODY_BYTES": 64 * 1024,
    "USER_GRPC_TARGETS": "127.0.0.1:50051,127.0.0.1:50061",
    "ACTIVITY_GRPC_TARGETS": "127.0.0.1:50052,127.0.0.1:50062",
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
        raw = os.environ.get(ENV_PREFIX + key)
        settings[key] = default if raw is None else _coerce(raw, default)
    settings.update(overrides or {})
    settings["DATA_DIR"] = str(Path(settings["DATA_DIR"]).resolve())
    return settings


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
