"""The Alembic migrations build exactly the schema the models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from peerlift import db as dbmod
from peerlift.migrate import alembic_config, all_models, upgrade
from peerlift.search.models import include_name
from tests.conftest import migrate_fresh


def _head(url: str) -> str:
    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()


def test_migrations_and_models_agree(database):
    engine = dbmod.get_engine()
    migrate_fresh(database)
    all_models()
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "include_name": include_name})
        diff = compare_metadata(context, dbmod.Base.metadata)
    assert diff == [], f"models and migrations differ: {diff}"
    assert "post" in inspect(engine).get_table_names()


def test_migrating_twice_changes_nothing(database):
    engine = dbmod.get_engine()
    migrate_fresh(database)
    upgrade(database)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == _head(database)
