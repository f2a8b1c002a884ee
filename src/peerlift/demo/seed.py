"""Seed the demo study through the same service functions the product uses, so every
post, comment, reaction, vote and message is also an engagement event."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

from ruamel.yaml import YAML
from sqlalchemy import select
from sqlalchemy.orm import Session

from peerlift.community import service as community
from peerlift.community.models import CircleRole, Space
from peerlift.db import clock_at, utcnow
from peerlift.identity import service as identity
from peerlift.identity.models import Role, User
from peerlift.policy import circle_access, conversation_access
from peerlift.research import randomise as sequences
from peerlift.research import service as research
from peerlift.research.models import Randomisation, Study, StudyDesign

CONTENT = Path(__file__).with_name("content.yaml")
PASSWORD = "peerlift-demo"
ROLES = {"coach": Role.facilitator, "clinician": Role.clinician, "researcher": Role.researcher, "admin": Role.admin}


def email_for(key: str) -> str:
    return f"{key}@demo.test"


def logins() -> list[tuple[str, str]]:
    content = YAML(typ="safe").load(CONTENT.read_text())
    rows = []
    for person in content["people"]:
        key = person["key"]
        role = ROLES.get(key, Role.participant).value
        rows.append((email_for(key), role))
    return rows


def is_seeded(session: Session) -> bool:
    return session.scalar(select(Study.id).where(Study.slug == "demo")) is not None


class _Timeline:
    """Places each item at its local day and time; nothing lands in the future."""

    def __init__(self, days: int = 14) -> None:
        self.now = utcnow()
        self.days = days

    def at(self, day: int, hhmm: str, tz: str) -> dt.datetime:
        zone = ZoneInfo(tz)
        local_today = self.now.astimezone(zone).date()
        date = local_today - dt.timedelta(days=self.days - day)
        hour, minute = (int(x) for x in hhmm.split(":"))
        moment = dt.datetime(date.year, date.month, date.day, hour, minute, tzinfo=zone).astimezone(dt.UTC)
        return min(moment, self.now - dt.timedelta(minutes=30))


def seed(session: Session, progress: Callable[[str], None] | None = None) -> bool:
    """Create the demo study unless it exists. Returns whether anything was written."""
    if is_seeded(session):
        return False
    say = progress or (lambda _msg: None)
    content = YAML(typ="safe").load(CONTENT.read_text())
    timeline = _Timeline()
    start = timeline.now - dt.timedelta(days=15)

    with clock_at(start):
        say("accounts")
        people: dict[str, User] = {}
        for p in content["people"]:
            key = p["key"]
            people[key] = identity.create_user(
                session, email=email_for(key), password=PASSWORD, display_name=p["display_name"],
                role=ROLES.get(key, Role.participant), timezone=p["timezone"],
                pronouns=p.get("pronouns") or "", bio=p.get("bio") or "")

        s = content["study"]
        researcher = people["researcher"]
        study = research.create_study(session, researcher, title=s["title"], slug="demo",
                                      registry_id=s["registry_id"], ethics_ref=s["ethics_ref"],
                                      description=s["description"].strip(), target_size=24)
        research.add_team_member(session, researcher, study, people["coach"], "facilitator")
        research.add_team_member(session, researcher, study, people["clinician"], "clinician")
        arms = {a["slug"]: research.add_arm(session, researcher, study, slug=a["slug"], name=a["name"],
                                            description=a["description"].strip())
                for a in content["arms"]}

        say("circles")
        circles: dict[str, Space] = {}
        admin = people["admin"]
        members_of: dict[str, list[str]] = {}
        for index, c in enumerate(content["circles"]):
            space = community.create_circle(
                session, admin, name=c["name"], description=c["description"].strip(), rules=c["rules"].strip(),
                timezone=c["timezone"], allow_member_dms=bool(c.get("allow_member_dms")), arm_id=arms[c["arm"]].id)
            circles[c["key"]] = space
            community.add_member(session, admin, space, people["coach"], CircleRole.facilitator)
            community.add_member(session, admin, space, people["clinician"], CircleRole.clinician)
            members_of[c["key"]] = [f"p{n:02d}" for n in range(1 + 12 * index, 13 + 12 * index)]
        session.flush()

    say("enrolment")
    _enrolment(session, content, study, people, circles, members_of, start, timeline.now)

    with clock_at(start + dt.timedelta(hours=10)):
        for key, space in circles.items():
            # One experienced member of each circle helps as a peer supporter.
            community.set_member_role(session, circle_access(session, people["coach"], space.id),
                                      circle_access(session, people[members_of[key][1]], space.id).membership,
                                      CircleRole.peer_supporter)
        session.flush()

    handles = {key: user.handle for key, user in people.items()}

    def text(body: str) -> str:
        return re.sub(r"@([a-z0-9_]+)", lambda m: "@" + handles.get(m.group(1), m.group(1)), body.strip())

    say("posts")
    tz_of = {key: c["timezone"] for key, c in zip(circles, content["circles"])}
    posts = sorted(content["posts"], key=lambda p: timeline.at(p["day"], p["time"], tz_of[p["circle"]]))
    for p in posts:
        space = circles[p["circle"]]
        at = timeline.at(p["day"], p["time"], tz_of[p["circle"]])
        author = people[p["author"]]
        with clock_at(at):
            access = circle_access(session, author, space.id)
            community.accept_rules(session, access)
            poll = p.get("poll")
            post = community.create_post(
                session, access, text(p["body"]),
                poll_question=poll["question"] if poll else None,
                poll_options=poll["options"] if poll else None,
                poll_multiple=bool(poll.get("multiple")) if poll else False)
            if p.get("pinned"):
                community.set_pinned(session, access, post, True)
        for i, (key, kind) in enumerate((p.get("reactions") or {}).items()):
            with clock_at(min(at + dt.timedelta(minutes=20 + 9 * i), timeline.now)):
                community.set_reaction(session, circle_access(session, people[key], space.id), kind=kind,
                                       on=True, post=post)
        if poll:
            session.refresh(post, ["poll"])
            poll_row = post.poll
            session.refresh(poll_row, ["options"])
            for i, (key, choice) in enumerate((poll.get("votes") or {}).items()):
                with clock_at(min(at + dt.timedelta(minutes=45 + 17 * i), timeline.now)):
                    community.vote(session, circle_access(session, people[key], space.id), poll_row,
                                   [poll_row.options[choice].id])
        for c in p.get("comments") or []:
            c_at = min(at + dt.timedelta(minutes=c.get("minutes_after", 30)), timeline.now)
            with clock_at(c_at):
                comment = community.create_comment(session, circle_access(session, people[c["author"]], space.id),
                                                   post, text(c["body"]))
            for i, (key, kind) in enumerate((c.get("reactions") or {}).items()):
                with clock_at(min(c_at + dt.timedelta(minutes=5 + 7 * i), timeline.now)):
                    community.set_reaction(session, circle_access(session, people[key], space.id), kind=kind,
                                           on=True, comment=comment)
            for r in c.get("replies") or []:
                r_at = min(c_at + dt.timedelta(minutes=r.get("minutes_after", 15)), timeline.now)
                with clock_at(r_at):
                    community.create_comment(session, circle_access(session, people[r["author"]], space.id),
                                             post, text(r["body"]), parent_id=comment.id)

    say("protocols")
    _protocols(session, people["coach"], list(circles.values()), timeline.now)

    say("self-monitoring")
    _tracking(session, people, timeline.now)

    say("messages")
    for conv in content["dms"]:
        a, b = (people[k] for k in conv["between"])
        first = conv["messages"][0]
        tz = people[first["from"]].timezone
        with clock_at(timeline.at(first["day"], first["time"], tz)):
            conversation = community.open_conversation(session, a, b)
        for m in conv["messages"]:
            sender = people[m["from"]]
            with clock_at(timeline.at(m["day"], m["time"], sender.timezone)):
                community.send_message(session, sender, conversation_access(session, sender, conversation.id),
                                       text(m["body"]))
    session.flush()
    say("open community")
    _open_community(session, content["community"], people, timeline.now)
    session.flush()
    say("research analytics")
    _analytics(session, study, people, timeline.now)
    session.flush()
    return True


SHIPPED = Path(__file__).resolve().parents[3] / "protocols"


def _open_community(session: Session, c: dict, people: dict[str, User], now: dt.datetime) -> None:
    """An open community beside the trial: members under community names, a nurse verified by the admin
    answering a question as a professional (accepted by the asker), experience reports, helpful votes and
    the facilitator's guide."""
    from peerlift.experience import service as experience
    from peerlift.professionals import service as professionals

    with clock_at(now - dt.timedelta(days=9)):
        space = community.create_community(session, people["coach"], name=c["name"], description=c["description"],
                                           rules=c["rules"], timezone="Europe/London")
        pro = c["professional"]
        application = professionals.apply(session, people[pro["key"]], profession=pro["profession"],
                                          registration_number=pro["registration_number"], registry=pro["registry"])
        professionals.verify(session, people["admin"], application)
        for m in c["members"]:
            community.join_community(session, people[m["key"]], space, pseudonym=m["pseudonym"],
                                     accept_guidelines=True)
    session.flush()

    def access(key: str):
        return circle_access(session, people[key], space.id)

    def helpful(keys: list[str], target_type: str, target) -> None:
        for key in keys:
            experience.set_helpful(session, access(key), target_type, target, True)

    posts: list[tuple] = []
    for day, p in enumerate(c["posts"]):
        with clock_at(now - dt.timedelta(days=8 - 2 * day, hours=3)):
            post = community.create_post(session, access(p["author"]), p["body"], question=bool(p.get("question")),
                                         for_professionals=bool(p.get("for_professionals")))
        answers = []
        for hours, a in enumerate(p.get("answers", []), start=1):
            with clock_at(now - dt.timedelta(days=8 - 2 * day, hours=3 - hours)):
                answer = community.create_comment(session, access(a["author"]), post, a["body"],
                                                  as_professional=bool(a.get("as_professional")))
                helpful(a.get("helpful", []), "comment", answer)
                if a.get("accepted"):
                    community.accept_answer(session, access(p["author"]), post, answer.id)
            answers.append(answer)
        helpful(p.get("helpful", []), "post", post)
        posts.append((post, answers))
    for days, r in enumerate(c["experience"]):
        with clock_at(now - dt.timedelta(days=7 - days)):
            experience.create_report(session, access(r["author"]), treatment=r["treatment"],
                                     duration_value=r.get("duration_value"), duration_unit=r["duration_unit"],
                                     what_helped=r["what_helped"], side_effects=r["side_effects"],
                                     would_recommend=r["would_recommend"])
    for g in c["guide"]:
        post, answers = posts[g["post"]]
        target = answers[g["answer"]] if "answer" in g else post
        experience.add_to_guide(session, access("coach"), target_type="comment" if "answer" in g else "post",
                                target_id=target.id, heading=g["heading"])


def _protocols(session: Session, coach: User, circles: list[Space], now: dt.datetime) -> None:
    """Register the shipped protocols; both arms run the diabetes-prevention protocol from the
    demo's first day (deliveries are planned from now on)."""
    from peerlift.protocols import service as protocols

    if not SHIPPED.is_dir():
        return
    versions = {}
    for path in sorted(SHIPPED.glob("*.yaml")):
        version = protocols.register(session, path.read_text(encoding="utf-8"), None, path.name)
        versions[version.protocol_key] = version
    dpp = versions.get("diabetes-prevention-cdc-dpp")
    if dpp is None:
        return
    for space in circles:
        start = (now - dt.timedelta(days=13)).astimezone(ZoneInfo(space.timezone)).date()
        with clock_at(now - dt.timedelta(hours=1)):
            protocols.assign(session, coach, space, dpp, start)


def _tracking(session: Session, people: dict[str, User], now: dt.datetime, days: int = 21) -> None:
    """Three weeks of weight, steps and mood for each participant, goals, and two PHQ-9 and GAD-7
    answers each (requested by the coach), drifting the way a programme hopes."""
    import random

    from peerlift.tracking import service as tracking
    from peerlift.tracking.measures import LB_IN_KG

    coach = people["coach"]
    participants = sorted((k for k in people if re.fullmatch(r"p\d\d", k)))
    for index, key in enumerate(participants):
        person = people[key]
        rng = random.Random(index)
        start_kg = 70 + rng.uniform(0, 40)
        today = now.astimezone(ZoneInfo(person.timezone)).date()
        with clock_at(now - dt.timedelta(days=days)):
            unit = "lb" if person.timezone.startswith("America/") else "kg"
            target = start_kg * 0.93 / (LB_IN_KG if unit == "lb" else 1)
            tracking.update_goals(session, person, weight_unit=unit, target_weight=round(target, 1), daily_steps=8000)
        for n in range(days):
            day = today - dt.timedelta(days=days - 1 - n)
            moment = dt.datetime.combine(day, dt.time(20, 0), tzinfo=ZoneInfo(person.timezone))
            with clock_at(min(moment.astimezone(dt.UTC), now)):
                if n % 3 == 0:
                    kg = start_kg - n * rng.uniform(0.05, 0.15)
                    tracking.log_entry(session, person, "weight", round(kg, 1), unit="kg", local_date=day)
                tracking.log_entry(session, person, "steps", rng.randint(3000, 12000), local_date=day)
                tracking.log_entry(session, person, "mood", min(10, max(0, 5 + n // 7 + rng.randint(-2, 2))),
                                   local_date=day)
        for when, drift in ((days - 1, 0), (6, -1)):
            with clock_at(now - dt.timedelta(days=when, hours=2)):
                for key_ in ("phq9", "gad7"):
                    count = 9 if key_ == "phq9" else 7
                    answers = [max(0, min(3, rng.randint(0, 2) + drift)) for _ in range(count)]
                    if key_ == "phq9":
                        answers[-1] = 0
                    request = tracking.request_questionnaire(session, person, key_, requested_by=coach,
                                                             space_id=None, notify_person=False)
                    tracking.submit_response(session, person, request, answers)


def _enrolment(session: Session, content: dict, study: Study, people: dict[str, User], circles: dict[str, Space],
               members_of: dict[str, list[str]], start: dt.datetime, now: dt.datetime) -> None:
    """Every participant comes in through the study's invitation link: screening, e-consent and
    the concealed randomisation place them in their circle. The demo's people belong to fixed
    circles (their stories are written for them), so the demo draws a fresh seed until the
    sequence's first places fill both circles equally, and enrols people in the order the
    sequence asks for. Others were screened out, declined, withdrew or are still on their way."""
    import random

    e = content["enrolment"]
    researcher = people["researcher"]
    with clock_at(start):
        research.set_design(session, researcher, study, scheme="blocks", block_sizes=e["block_sizes"],
                            eligibility=e["eligibility"], withdrawal_rule=e["withdrawal_rule"])
        research.add_consent_document(session, researcher, study, version=e["consent"]["version"],
                                      title=e["consent"]["title"], sections=e["consent"]["sections"])
        token, _invitation = research.create_invitation(session, researcher, study, days_valid=90, max_uses=200)
    design = session.get(StudyDesign, study.id)
    arm_of_circle = {key: circles[key].arm_id for key in circles}
    waiting = {arm_of_circle[key]: list(keys) for key, keys in members_of.items()}
    arm_ids = sorted(waiting)
    size = sum(len(v) for v in waiting.values())
    while True:
        order = sequences.sequence(Randomisation.blocks, design.concealed_seed, "", size, arm_ids, e["block_sizes"])
        if all(order.count(arm) == len(waiting[arm]) for arm in arm_ids):
            break
        design.concealed_seed = sequences.new_seed()
    sections = [section["key"] for section in e["consent"]["sections"]]
    rng = random.Random(7)

    def through(person: User, at: dt.datetime, answers: dict | None, outcome: str, reason: str = ""):
        with clock_at(at):
            enrolment = research.start_enrolment(session, person, token)
        if outcome == "invited":
            return enrolment
        with clock_at(at + dt.timedelta(minutes=4)):
            research.screen(session, person, enrolment, answers)
        if outcome in ("ineligible", "eligible"):
            return enrolment
        with clock_at(at + dt.timedelta(minutes=11)):
            if outcome == "declined":
                return research.decline(session, person, enrolment, reason)
            research.consent(session, person, enrolment, sections=sections, typed_name=person.display_name)
        if outcome == "consented":
            return enrolment
        with clock_at(at + dt.timedelta(minutes=12)):
            research.randomise(session, person, enrolment)
        return enrolment

    for place, arm_id in enumerate(order):
        key = waiting[arm_id].pop(0)
        answers = {"adult": "yes", "bmi": round(rng.uniform(26, 41), 1), "diabetes": "no"}
        through(people[key], start + dt.timedelta(minutes=20 * place), answers, "randomised")
    for n, other in enumerate(e["others"]):
        at = start + dt.timedelta(days=1 + n, hours=3) if other["outcome"] != "invited" else now - dt.timedelta(hours=5)
        with clock_at(at):
            person = identity.create_user(
                session, email=f"enrolled{n + 1}@demo.test", password=PASSWORD, display_name=other["display_name"],
                timezone=other["timezone"])
        enrolment = through(person, at, other.get("answers"), other["outcome"], other.get("reason", ""))
        if other["outcome"] == "withdrawn":
            with clock_at(now - dt.timedelta(days=3)):
                research.withdraw(session, person, enrolment, reason=other.get("reason", ""), confirm=True)
    session.flush()


def _analytics(session: Session, study: Study, people: dict[str, User], now: dt.datetime) -> None:
    """What the dashboard, the report and the exports need beyond the rest of the demo: the
    researcher on the study's team, rates and costs, a DPRP organisation code, weekly active
    minutes (the DPRP's PA) and, for enrolments that exist, the DPRP's demographic answers."""
    import random

    from peerlift.research.models import Enrolment, StudyDesign, StudyMember, StudyRole
    from peerlift.tracking import service as tracking

    if session.scalar(select(StudyMember.id).where(StudyMember.study_id == study.id,
                                                   StudyMember.user_id == people["researcher"].id)) is None:
        session.add(StudyMember(study_id=study.id, user_id=people["researcher"].id, role=StudyRole.researcher))
    design = session.get(StudyDesign, study.id)
    if design is None:
        import secrets

        design = StudyDesign(study_id=study.id, concealed_seed=secrets.token_hex(16))
        session.add(design)
    design.hourly_rates = design.hourly_rates or {"facilitator": 38.0, "clinician": 65.0}
    design.fixed_costs = design.fixed_costs or [
        {"arm": None, "item": "Coach training", "amount": 1200.0},
        {"arm": "peer-prompts", "item": "Prompt writing", "amount": 400.0}]
    design.dprp_orgcode = design.dprp_orgcode or "DEMO1234"
    rng = random.Random(2026)
    for key, person in sorted(people.items()):
        if not re.fullmatch(r"p\d\d", key):
            continue
        today = now.astimezone(ZoneInfo(person.timezone)).date()
        for week in range(3):
            day = today - dt.timedelta(days=7 * week + 1)
            moment = dt.datetime.combine(day, dt.time(21, 0), tzinfo=ZoneInfo(person.timezone)).astimezone(dt.UTC)
            with clock_at(min(moment, now)):
                tracking.log_entry(session, person, "active_minutes", rng.randint(20, 90), local_date=day)
    for e in session.scalars(select(Enrolment).where(Enrolment.study_id == study.id)):
        answers = dict(e.screening_answers or {})
        answers.setdefault("age", rng.randint(35, 72))
        answers.setdefault("sex", rng.choice(["female", "male"]))
        answers.setdefault("ethnicity", rng.choice(["hispanic", "not_hispanic"]))
        answers.setdefault("race", [rng.choice(["white", "black", "asian"])])
        answers.setdefault("height_in", rng.randint(60, 75))
        answers.setdefault("education", rng.choice(["grade_12", "college_1_3", "college_4"]))
        answers.setdefault("glucose_test", "yes")
        answers.setdefault("state", "NY")
        e.screening_answers = answers
