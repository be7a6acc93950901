"""Browser-facing protections on every gateway answer: security headers and configured CORS.

The headers follow the OWASP REST Security and HTTP Headers cheat sheets: answers are JSON for
API clients, so browsers are told not to sniff, frame, cache or send referrers with them. A
page that needs more (``/live``, ``/import``, ``/docs``) sets its own Content-Security-Policy,
which is kept.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, Response, request
from flask_cors import CORS
from werkzeug.middleware.proxy_fix import ProxyFix

from fitness import config
from fitness.config import split_targets

# Documents anyone may fetch; they may be cached but must be revalidated (the spec has an ETag).
PUBLIC_DOCUMENTS = {"/openapi.json", "/docs", "/live", "/import"}
# Headers that name the software answering: they help an attacker pick exploits, nobody else.
SOFTWARE_HEADERS = ("Server", "X-Powered-By")
CORS_METHODS = ["GET", "POST", "PATCH", "DELETE", "OPTIONS"]
CORS_REQUEST_HEADERS = ["Authorization", "Content-Type", "Idempotency-Key", "X-Request-ID"]
CORS_EXPOSED_HEADERS = ["X-Request-ID", "Retry-After", "Idempotent-Replayed", "X-Saga-ID"]
CORS_MAX_AGE_SECONDS = 600

_ALWAYS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}
# JSON needs no script, style or frame; pages that do say so themselves.
_DEFAULT_POLICY = "default-src 'none'; frame-ancestors 'none'"


@dataclass(frozen=True)
class Settings(config.Settings):
    """Who may call from a browser, HSTS, and the proxies of ours in front."""

    # Browser origins allowed to call the API (comma-separated); empty = no CORS headers at all.
    cors_origins: str = ""
    # Strict-Transport-Security max-age; 0 = not sent (set it only when clients reach us over TLS).
    hsts_seconds: int = 0
    # Proxies of ours in front (nginx: 1): the client's address is then in X-Forwarded-For.
    trusted_proxy_hops: int = 0


def init_app(app: Flask, settings: Settings | None = None) -> list:
    """Add the security headers to every answer of ``app``, and CORS for configured origins;
    behind proxies of ours, take the client's address from X-Forwarded-For (only theirs).
    Nothing runs in the background."""
    settings = settings or Settings.from_env()
    if settings.trusted_proxy_hops:
        # Flask's documented way to wrap its WSGI app (mypy sees a method being replaced).
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=settings.trusted_proxy_hops
        )
    hsts_seconds = settings.hsts_seconds

    def add_headers(response: Response) -> Response:
        for name in SOFTWARE_HEADERS:
            response.headers.pop(name, None)  # a proxied service's own, too
        for name, value in _ALWAYS.items():
            response.headers[name] = value
        response.headers.setdefault("Content-Security-Policy", _DEFAULT_POLICY)
        public = request.path in PUBLIC_DOCUMENTS
        # Answers carry tokens and personal data: no browser or shared cache may keep them.
        response.headers.setdefault("Cache-Control", "no-cache" if public else "no-store")
        if hsts_seconds:
            response.headers["Strict-Transport-Security"] = f"max-age={hsts_seconds}"
        return response

    app.after_request(add_headers)
    origins = split_targets(settings.cors_origins)
    if origins:
        CORS(
            app,
            origins=origins,
            methods=CORS_METHODS,
            allow_headers=CORS_REQUEST_HEADERS,
            expose_headers=CORS_EXPOSED_HEADERS,
            max_age=CORS_MAX_AGE_SECONDS,
            supports_credentials=False,  # tokens travel in Authorization, never in cookies
            always_send=False,  # no CORS headers on answers to non-browser (no Origin) calls
        )
    return []
