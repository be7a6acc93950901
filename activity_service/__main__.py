"""``python -m activity_service serve``."""

from __future__ import annotations

from activity_service import DEFAULTS, SERVICE_NAME, create_app
from fitness import mongo
from fitness.cli import run_serve, service_parser
from fitness.config import load_settings


def _needs_a_store() -> str | None:
    """Refuse to start without a store URL: once and plainly, not as a worker never ready."""
    if mongo.is_server_url(load_settings(DEFAULTS)["MONGO_URL"]):
        return None
    return mongo.NOT_CONFIGURED


def main() -> None:
    parser, _commands = service_parser(SERVICE_NAME, DEFAULTS)
    run_serve(parser.parse_args(), create_app, preflight=_needs_a_store)


if __name__ == "__main__":
    main()
