"""Apply Alembic migrations programmatically (``sheaf db upgrade`` and ``serve`` on start)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from sheaf.config import Settings
from sheaf.db import migration_engine
from sheaf.kit.files import private_dir

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(settings: Settings) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", settings.db_url.replace("%", "%%"))
    return config


def upgrade(settings: Settings, revision: str = "head") -> None:
    private_dir(settings.data_dir)
    command.upgrade(alembic_config(settings), revision)
    if revision == "head":
        seed(settings.db_url)


def seed(url: str) -> None:
    """Rows every sheaf needs (data, not schema): put back any that went missing."""
    from sheaf.finance import builtin

    engine = migration_engine(url)
    try:
        with engine.begin() as conn:
            builtin.ensure(conn)
    finally:
        engine.dispose()
