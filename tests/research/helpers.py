"""A study ready for enrolment, written through the research service."""

from __future__ import annotations

from dataclasses import dataclass

from peerlift.research import service
from tests.factories import create_circle, create_user

QUESTIONS = [
    {"key": "adult", "text": "Are you 18 or older?", "kind": "yes_no", "include_if": "yes",
     "reason": "The study is for adults."},
    {"key": "bmi", "text": "What is your BMI?", "kind": "number", "min": 25, "max": 45,
     "reason": "The study is for people with a BMI from 25 to 45."},
    {"key": "sex", "text": "Your sex", "kind": "choice", "options": ["female", "male"]},
]
SECTIONS = [
    {"key": "purpose", "heading": "What the study is for", "text": "We test two ways of peer support."},
    {"key": "data", "heading": "Your data", "text": "What you write is kept for research."},
    {"key": "leave", "heading": "Leaving", "text": "You may leave at any time."},
]
ELIGIBLE = {"adult": "yes", "bmi": 31, "sex": "female"}


@dataclass
class Setup:
    study: object
    arms: list
    circles: dict
    token: str


def make_study(s, world, *, slug: str = "walk", scheme: str = "blocks", block_sizes=(2, 4), factors=None,
               withdrawal_rule: str = "keep", circles_per_arm: int = 1, arms: int = 2) -> Setup:
    r = world.researcher
    study = service.create_study(s, r, title="Walk together", slug=slug, registry_id="NCT01234567",
                                 ethics_ref="REC 24/LO/0001", target_size=100)
    made = [service.add_arm(s, r, study, slug=f"arm{i}", name=f"Arm {i}") for i in range(arms)]
    circles: dict = {}
    if scheme != "cluster":
        for arm in made:
            circles[arm.id] = [create_circle(s, world.admin, f"{arm.name} circle {n}", arm=arm)
                               for n in range(circles_per_arm)]
    service.set_design(s, r, study, scheme=scheme, block_sizes=list(block_sizes) if scheme != "simple" else None,
                       factors=factors, eligibility=QUESTIONS, withdrawal_rule=withdrawal_rule)
    service.add_consent_document(s, r, study, version="1.0", title="Consent to take part", sections=SECTIONS)
    token, _inv = service.create_invitation(s, r, study, max_uses=500)
    s.flush()
    return Setup(study, made, circles, token)


_n = iter(range(1, 10_000))


def participant(s, name: str | None = None):
    return create_user(s, name or f"Person Number{next(_n)}")


def consented(s, setup: Setup, person, answers=None):
    enrolment = service.start_enrolment(s, person, setup.token)
    service.screen(s, person, enrolment, answers or ELIGIBLE)
    service.consent(s, person, enrolment, sections=[x["key"] for x in SECTIONS], typed_name=person.display_name)
    return enrolment
