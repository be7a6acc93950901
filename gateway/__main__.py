"""``python -m gateway serve``."""

from __future__ import annotations

from fitness.cli import run_serve, service_parser
from gateway import DEFAULTS, SERVICE_NAME, create_app


def main() -> None:
    parser, _commands = service_parser(SERVICE_NAME, DEFAULTS)
    run_serve(parser.parse_args(), create_app)


if __name__ == "__main__":
    main()
