from __future__ import annotations

from alembic import context

from peerlift.db import Base, get_engine
from peerlift.migrate import all_models
from peerlift.search.models import include_name

all_models()
config = context.config
url = config.attributes.get("peerlift_url") or config.get_main_option("sqlalchemy.url")


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_with(connection)
        return
    engine = get_engine(url)
    with engine.connect() as conn:
        _run_with(conn)
        conn.commit()


def _run_with(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_name=include_name,
    )
    with context.begin_transaction():
        context.run_migrations()


run()
