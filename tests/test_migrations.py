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


def _feed_triggers(conn) -> set[str]:
    if conn.dialect.name == "sqlite":
        names = conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'trigger'")).scalars()
    else:
        names = conn.execute(text(
            "SELECT tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE NOT t.tgisinternal AND n.nspname = current_schema() "
            "UNION SELECT proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE n.nspname = current_schema()")).scalars()
    return {name for name in names if "feed_version" in name}


def test_the_feed_version_triggers_come_and_go_with_revision_0022(database):
    from alembic import command

    from peerlift.community import feed_cache, service
    from peerlift.community.models import Space
    from peerlift.policy import circle_access
    from tests.conftest import build_world

    engine = dbmod.get_engine()
    migrate_fresh(database)
    dialect = engine.dialect.name
    functions = {f"peerlift_feed_version_{w.table}" for w in feed_cache.WATCHED} if dialect == "postgresql" else set()
    with engine.connect() as conn:
        assert _feed_triggers(conn) == feed_cache.trigger_names(dialect) | functions
    with dbmod.transaction() as s:
        world = build_world(s)
    count = "SELECT (SELECT count(*) FROM membership) + (SELECT count(*) FROM space)"
    with engine.connect() as conn:
        rows = conn.execute(text(count)).scalar()
    command.downgrade(alembic_config(database), "0021")
    with engine.connect() as conn:
        assert _feed_triggers(conn) == set()
        assert "content_version" not in {c["name"] for c in inspect(conn).get_columns("space")}
        assert conn.execute(text(count)).scalar() == rows  # nothing lost on the way down
    command.upgrade(alembic_config(database), "head")
    with engine.connect() as conn:
        assert _feed_triggers(conn) == feed_cache.trigger_names(dialect) | functions
    with dbmod.transaction() as s:
        assert s.get(Space, world.circle.id).content_version == 0
        service.create_post(s, circle_access(s, s.merge(world.alice), world.circle.id), "First walk of the week")
        s.expire_all()
        assert s.get(Space, world.circle.id).content_version == 1
