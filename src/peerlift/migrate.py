"""Alembic, configured in code so an installed peerlift can migrate any database."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["peerlift_url"] = url
    return config


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def all_models() -> None:
    """Import every models module so Base.metadata knows every table."""
    import peerlift.community.models  # noqa: F401
    import peerlift.cues.models  # noqa: F401
    import peerlift.delivery.models  # noqa: F401
    import peerlift.notify.models  # noqa: F401
    import peerlift.people.models  # noqa: F401
    import peerlift.professionals.models  # noqa: F401
    import peerlift.protocols.models  # noqa: F401
    import peerlift.events  # noqa: F401
    import peerlift.experience.models  # noqa: F401
    import peerlift.identity.models  # noqa: F401
    import peerlift.research.models  # noqa: F401
    import peerlift.research.analytics_models  # noqa: F401
    import peerlift.safety.models  # noqa: F401
    import peerlift.search.models  # noqa: F401
    import peerlift.tracking.models  # noqa: F401
    from peerlift.community import feed_cache
    from peerlift.db import Base

    feed_cache.install(Base.metadata.tables)
