"""``python -m activity_service serve``."""

from __future__ import annotations

from activity_service import DEFAULTS, SERVICE_NAME, create_app
from fitness.cli import run_serve, service_parser


def main() -> None:
    parser, _commands = service_parser(SERVICE_NAME, DEFAULTS)
    run_serve(parser.parse_args(), create_app)


if __name__ == "__main__":
    main()
