"""HTTP calls the benches make around what they measure, each with a timeout."""

from __future__ import annotations

from typing import Any

import requests

REQUEST_TIMEOUT_SECONDS = 10.0
UPLOAD_TIMEOUT_SECONDS = 120.0  # an import answers once the whole file is stored


def bearer(token: str) -> dict[str, str]:
    """Return the header that authenticates a request as ``token`` (none for no token)."""
    return {"Authorization": f"Bearer {token}"} if token else {}


def post_json(url: str, body: dict | None = None, token: str = "") -> Any:
    """POST ``body`` as JSON and return the answer's JSON; raise on an error status."""
    return _json("POST", url, body, token)


def get_json(url: str, token: str = "") -> Any:
    """GET ``url`` and return the answer's JSON; raise on an error status."""
    return _json("GET", url, None, token)


def _json(method: str, url: str, body: dict | None, token: str) -> Any:
    response = requests.request(
        method, url, json=body, headers=bearer(token), timeout=REQUEST_TIMEOUT_SECONDS
    )
    response.raise_for_status()
    return response.json()


def upload(url: str, name: str, data: bytes, token: str) -> Any:
    """POST ``data`` as the multipart file ``name`` and return the answer's JSON."""
    response = requests.post(
        url, files={"file": (name, data)}, headers=bearer(token), timeout=UPLOAD_TIMEOUT_SECONDS
    )
    response.raise_for_status()
    return response.json()
