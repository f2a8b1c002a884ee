"""The CDC Diabetes Prevention Recognition Program (DPRP) participant data file: one row per
session attended, for the study's lifestyle-change arm, in the columns and codes of the DPRP
Standards' data dictionary.

Sessions. The lifestyle-change programme runs as the diabetes-prevention protocol does: core
sessions 1-16 weekly from day 1, then maintenance sessions 17-26 every four weeks from day 113, day 1
being the start date of the protocol in the participant's circle (or their randomisation date).
peerlift delivers online (DMODE 2); an online participant attended a session when they took part
(posted, commented, reacted, voted, messaged, logged or answered a questionnaire) between that
session's day and the next one, on their own local calendar. DATE is the first such day. Sessions in
months 1-6 are core (SESSTYPE C), later ones core maintenance (CM).

WEIGHT is the first weight logged in the session's window, in pounds; PA the sum of the active
minutes logged in it; 999 when nothing was recorded.

Demographics have no home of their own in peerlift: they are read from the enrolment's screening
answers (``Enrolment.screening_answers``, then ``strata``) under the keys of ``ANSWER_KEYS``. A
missing answer becomes the dictionary's "not reported" code where it has one (ENROLLMOT, ENROLLHC,
PAYERSOURCE, ETHNIC, SEX, EDU: 9) and "no" (2) for the three prediabetes determinations (GLUCTEST,
GDM, RISKTEST), which have no "not reported" code. AGE, HEIGHT and STATE have none either: a missing
one refuses the file, naming the row and the answer needed. A value outside the dictionary refuses the
whole file, naming the row.

Codes follow the DPRP data dictionary (Evaluation Data Elements, OMB 0920-0909) in the 2021 DPRP
Standards' column layout: the 2018 dictionary with ENROLL and PAYER replaced by ENROLLMOT, ENROLLHC and
PAYERSOURCE. The code lists of ENROLLMOT, ENROLLHC and PAYERSOURCE are not yet checked against the
published table.
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select

from peerlift.errors import InvalidInput
from peerlift.events import Event
from peerlift.identity.models import User
from peerlift.protocols.models import Assignment, ProtocolVersion
from peerlift.research.models import StudyDesign
from peerlift.tracking.measures import LB_IN_KG
from peerlift.tracking.models import Entry

COLUMNS = ("ORGCODE", "PARTICIP", "ENROLLMOT", "ENROLLHC", "PAYERSOURCE", "STATE", "GLUCTEST", "GDM", "RISKTEST",
           "AGE", "ETHNIC", "AIAN", "ASIAN", "BLACK", "NHOPI", "WHITE", "SEX", "HEIGHT", "EDU", "DMODE", "SESSID",
           "SESSTYPE", "DATE", "WEIGHT", "PA")
DPP_PROTOCOL = "diabetes-prevention"
ONLINE = 2
NOT_RECORDED = 999
TOOK_PART = ("post.created", "comment.created", "reaction.added", "poll.voted", "message.created",
             "tracking.logged", "questionnaire.scored")
# The screening answer read for each field, and the codes its values map to.
ANSWER_KEYS = {"ENROLLMOT": "enrollment_source", "ENROLLHC": "referred_by_clinician", "PAYERSOURCE": "payer",
               "STATE": "state", "GLUCTEST": "glucose_test", "GDM": "gestational_diabetes", "RISKTEST": "risk_test",
               "AGE": "age", "ETHNIC": "ethnicity", "RACE": "race", "SEX": "sex", "HEIGHT": "height_in",
               "EDU": "education"}
YES_NO = {True: 1, False: 2, "yes": 1, "no": 2, 2: 2}  # True == 1
# GLUCTEST, GDM and RISKTEST: prediabetes determined by that route, 1 yes / 2 no; no "not reported" code.
# DMODE: 1 in person, 2 online, 3 distance learning; there is no code for a combination of them.
RANGES = {"ENROLLMOT": set(range(1, 10)), "ENROLLHC": {1, 2, 9}, "PAYERSOURCE": set(range(1, 10)),
          "GLUCTEST": {1, 2}, "GDM": {1, 2}, "RISKTEST": {1, 2}, "ETHNIC": {1, 2, 9},
          "AIAN": {1, 2}, "ASIAN": {1, 2}, "BLACK": {1, 2}, "NHOPI": {1, 2}, "WHITE": {1, 2}, "SEX": {1, 2, 9},
          "EDU": {1, 2, 3, 4, 9}, "DMODE": {1, 2, 3}, "SESSTYPE": {"C", "CM", "OM", "MU"}}
DEFAULTS = {"ENROLLMOT": 9, "ENROLLHC": 9, "PAYERSOURCE": 9, "GLUCTEST": 2, "GDM": 2, "RISKTEST": 2,
            "ETHNIC": 9, "SEX": 9, "EDU": 9}
RACES = {"AIAN": "american_indian_alaska_native", "ASIAN": "asian", "BLACK": "black",
         "NHOPI": "native_hawaiian_pacific_islander", "WHITE": "white"}
CODE_WORDS = {"SEX": {"male": 1, "female": 2}, "ETHNIC": {"hispanic": 1, "not_hispanic": 2},
              "EDU": {"less_than_12": 1, "grade_12": 2, "college_1_3": 3, "college_4": 4}}
# The states, DC, the territories and the military post codes (programmes run at APO/FPO sites too).
STATES = set("AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM NY NC "
             "ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY AS GU MP PR VI AA AE AP".split())


def session_days() -> list[tuple[int, int, str]]:
    """(session id, day, type) of the year's 26 sessions."""
    days = [(n, 1 + 7 * (n - 1)) for n in range(1, 17)] + [(16 + k, 113 + 28 * (k - 1)) for k in range(1, 11)]
    return [(n, d, "C" if d <= 183 else "CM") for n, d in days]


def lifestyle_arms(cx, arm: str | None) -> list[int]:
    if arm:
        found = [a.id for a in cx.arms.values() if a.slug == arm]
        if not found:
            raise InvalidInput(f"The study has no arm {arm!r}.", field="arm")
        return found
    arms = sorted({cx.circles[sid].arm_id for sid, in cx.session.execute(
        select(Assignment.space_id).join(ProtocolVersion, ProtocolVersion.id == Assignment.protocol_version_id)
        .where(Assignment.space_id.in_(list(cx.circles) or [0]),
               ProtocolVersion.protocol_key.startswith(DPP_PROTOCOL)))})
    if not arms:
        raise InvalidInput("No lifestyle-change arm: no circle of the study runs a diabetes-prevention protocol. "
                           "Name the arm with --arm.", field="arm")
    return arms


def _answer(e, key: str):
    answers = {**(e.strata or {}), **(e.screening_answers or {})}
    return answers.get(ANSWER_KEYS.get(key, key))


def _code(e, field: str):
    value = _answer(e, field)
    if value is None or value == "":
        return DEFAULTS[field]
    if isinstance(value, str) and value.lower() in CODE_WORDS.get(field, {}):
        return CODE_WORDS[field][value.lower()]
    if field in ("GLUCTEST", "GDM", "RISKTEST", "ENROLLHC") and value in YES_NO:
        return YES_NO[value.lower() if isinstance(value, str) else value]
    try:
        return int(value)
    except (TypeError, ValueError):
        return value


def demographics(e) -> dict:
    out = {f: _code(e, f) for f in DEFAULTS}
    age = _answer(e, "AGE")
    out["AGE"] = int(age) if isinstance(age, (int, float)) or (isinstance(age, str) and age.isdigit()) else age
    races = _answer(e, "RACE") or []
    races = [races] if isinstance(races, str) else list(races)
    for col, word in RACES.items():
        out[col] = 1 if word in races or col.lower() in races else 2
    height = _answer(e, "HEIGHT")
    try:
        out["HEIGHT"] = None if height in (None, "") else round(float(height))
    except (TypeError, ValueError):
        out["HEIGHT"] = height
    out["STATE"] = str(_answer(e, "STATE") or "").strip().upper()
    return out


def check(row: dict, number: int) -> None:
    def bad(field: str, why: str):
        raise InvalidInput(f"DPRP row {number} (participant {row['PARTICIP']}, session {row['SESSID']}): "
                           f"{field} {row[field]!r} {why}.", field=field)

    for field, allowed in RANGES.items():
        if row[field] not in allowed:
            bad(field, "is not one of the dictionary's codes " + ", ".join(str(v) for v in sorted(allowed, key=str)))
    if not isinstance(row["AGE"], int) or not 18 <= row["AGE"] <= 125:
        bad("AGE", "is not an age of 18 to 125 (the screening answer 'age' is needed)")
    if not isinstance(row["HEIGHT"], int) or not 30 <= row["HEIGHT"] <= 98:
        bad("HEIGHT", "is not a height of 30-98 inches (the screening answer 'height_in' is needed)")
    if row["WEIGHT"] != NOT_RECORDED and not 70 <= row["WEIGHT"] <= 997:
        bad("WEIGHT", "is outside 70-997 pounds")
    if row["PA"] != NOT_RECORDED and not 0 <= row["PA"] <= 997:
        bad("PA", "is outside 0-997 minutes")
    if row["STATE"] not in STATES:
        bad("STATE", "is not a US state, territory or military post abbreviation (the screening answer "
                     "'state' is needed)")
    for field in ("ORGCODE", "PARTICIP"):
        if not (1 <= len(row[field]) <= 25 and row[field].isascii() and row[field].isalnum()):
            bad(field, "must be 1-25 letters and digits")


def rows(cx, arm: str | None = None):
    session = cx.session
    design = session.get(StudyDesign, cx.study.id)
    orgcode = (design.dprp_orgcode if design else "").strip()
    if not orgcode:
        raise InvalidInput("The study has no DPRP organisation code (StudyDesign.dprp_orgcode).",
                           field="dprp_orgcode")
    arms = lifestyle_arms(cx, arm)
    starts = {sid: start for sid, start in session.execute(
        select(Assignment.space_id, Assignment.start_date)
        .join(ProtocolVersion, ProtocolVersion.id == Assignment.protocol_version_id)
        .where(Assignment.space_id.in_(list(cx.circles) or [0]),
               ProtocolVersion.protocol_key.startswith(DPP_PROTOCOL)).order_by(Assignment.id))}
    people = [(uid, e) for uid, e in cx.people.enrolments.items() if e.arm_id in arms]
    zones = {uid: tz for uid, tz in session.execute(
        select(User.id, User.timezone).where(User.id.in_([u for u, _ in people] or [0])))}
    today = dt.datetime.now(dt.UTC)
    number = 0
    for uid, e in people:
        zone = ZoneInfo(zones.get(uid) or "UTC")
        start = starts.get(e.space_id) or e.randomised_at.astimezone(zone).date()
        stop = e.withdrawn_at or today
        took_part = sorted({ev.astimezone(zone).date() for ev in session.scalars(
            select(Event.at).where(Event.actor_id == uid, Event.kind.in_(TOOK_PART),
                                   Event.at >= e.randomised_at, Event.at <= stop))})
        entries = session.execute(select(Entry.measure_key, Entry.local_date, Entry.value).where(
            Entry.user_id == uid, Entry.measure_key.in_(("weight", "active_minutes"))).order_by(Entry.local_date)).all()
        base = demographics(e)
        schedule = session_days()
        for index, (sessid, day, kind) in enumerate(schedule):
            first = start + dt.timedelta(days=day - 1)
            following = (start + dt.timedelta(days=schedule[index + 1][1] - 1)) if index + 1 < len(schedule) \
                else first + dt.timedelta(days=28)
            days = [d for d in took_part if first <= d < following]
            if not days:
                continue
            weights = [v for k, d, v in entries if k == "weight" and first <= d < following]
            minutes = [v for k, d, v in entries if k == "active_minutes" and first <= d < following]
            number += 1
            row = {"ORGCODE": orgcode, "PARTICIP": cx.people.pid(uid), **base, "DMODE": ONLINE, "SESSID": sessid,
                   "SESSTYPE": kind, "DATE": days[0].strftime("%m/%d/%Y"),
                   "WEIGHT": round(weights[0] / LB_IN_KG) if weights else NOT_RECORDED,
                   "PA": round(sum(minutes)) if minutes else NOT_RECORDED}
            check(row, number)
            yield row


def write_dprp(cx, path: Path, *, arm: str | None = None) -> int:
    count = 0
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        for row in rows(cx, arm):
            writer.writerow([row[c] for c in COLUMNS])
            count += 1
    return count
