"""``python -m user_service serve|migrate``."""

from __future__ import annotations

from fitness.cli import run_serve, service_parser
from user_service import DEFAULTS, SERVICE_NAME, create_app
from user_service.migrations import upgrade


def main() -> None:
    parser, commands = service_parser(SERVICE_NAME, DEFAULTS)
    commands.add_parser("migrate", help="create or upgrade the database schema")
    args = parser.parse_args()
    if args.command == "migrate":
        upgrade()
    else:
        run_serve(args, create_app)


if __name__ == "__main__":
    main()
