"""Plain factory functions for tests: they write through the same services as the product."""

from __future__ import annotations

import itertools

from sqlalchemy.orm import Session

from peerlift.community import service as community
from peerlift.community.models import CircleRole
from peerlift.identity import service as identity
from peerlift.identity.models import Role

PASSWORD = "correct horse battery"
_seq = itertools.count(1)


def create_user(s: Session, name: str, role: Role = Role.participant, *, timezone: str = "Europe/London",
                email: str | None = None):
    n = next(_seq)
    email = email or f"{name.split()[0].lower()}{n}@example.test"
    return identity.create_user(s, email=email, password=PASSWORD, display_name=name, role=role,
                                timezone=timezone)


def create_circle(s: Session, actor, name: str, *, arm=None, rules: str = "", allow_member_dms: bool = False,
                  timezone: str = "Europe/London"):
    return community.create_circle(s, actor, name=name, rules=rules, timezone=timezone,
                                   allow_member_dms=allow_member_dms, arm_id=arm.id if arm else None)


def add_member(s: Session, circle, user, role: CircleRole = CircleRole.member):
    return community.add_member(s, user, circle, user, role)
