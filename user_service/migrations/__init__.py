"""Alembic migrations of the user database; ``upgrade()`` brings a database to the newest schema."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from fitness.config import load_settings

HERE = Path(__file__).resolve().parent


def alembic_config(url: str) -> Config:
    """Return an Alembic config for ``url`` that needs no alembic.ini."""
    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["configure_logger"] = False
    return config


def database_url() -> str:
    """Return the configured user database URL (the shared SQLite file by default)."""
    from fitness.sqldb import default_user_database_url as default_url
    from user_service import DEFAULTS

    settings = load_settings(DEFAULTS)
    return settings["DATABASE_URL"] or default_url(settings["DATA_DIR"])


def upgrade(url: str | None = None) -> None:
    """Create or upgrade the schema of ``url`` (default: the configured database)."""
    command.upgrade(alembic_config(url or database_url()), "head")
