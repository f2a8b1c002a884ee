"""The Alembic migrations build exactly the schema the models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from peerlift import db as dbmod
from peerlift.migrate import all_models, upgrade


def test_migrations_and_models_agree(database):
    engine = dbmod.get_engine()
    dbmod.Base.metadata.drop_all(engine)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    upgrade(database)
    all_models()
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, dbmod.Base.metadata)
    assert diff == [], f"models and migrations differ: {diff}"
    assert "post" in inspect(engine).get_table_names()


def test_migrating_twice_changes_nothing(database):
    engine = dbmod.get_engine()
    dbmod.Base.metadata.drop_all(engine)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    upgrade(database)
    upgrade(database)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0002"
