"""Alembic environment: the URL comes from sheaf's settings (see sheaf.migrate)."""

from alembic import context

from sheaf.db import migration_engine
from sheaf.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    engine = migration_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata,
                          render_as_batch=connection.dialect.name == "sqlite")
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
