"""The world of the access tests: the shared personas (tests/conftest.py ``build_world``), the few people
the matrix needs besides them, and one object of every kind a route can name, belonging to ``circle``
and to alice. Everything is written through the product's services, as a person would."""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.orm import Session

from tests.conftest import World, build_world

DATA = Path(__file__).parent.parent / "data"
WALK_PROTOCOL = (DATA / "walk_protocol.yaml").read_text()

# The eligibility questions and consent document of the trial (what alice answered and signed).
QUESTIONS = [{"key": "adult", "text": "Are you 18 or older?", "kind": "yes_no", "include_if": "yes",
              "reason": "The study is for adults."}]
SECTIONS = [{"key": "purpose", "heading": "What the study is for", "text": "We test two ways of peer support."},
            {"key": "leave", "heading": "Leaving", "text": "You may leave at any time."}]


@dataclass
class Objects:
    """Ids and tokens of the objects routes name in their paths (and of a few their bodies name)."""

    world: World
    other_clinician: object          # the clinician of other_circle only
    other_researcher: object         # a researcher of another study only
    dora: object                     # a participant in no circle: signs in, is added, resets her password
    other_study_id: int
    post_id: int                     # alice's post in circle
    flagged_post_id: int             # alice's post that bob flagged as a crisis (review item, escalation)
    poll_post_id: int
    poll_id: int
    option_id: int
    comment_id: int                  # alice's comment on her post
    conversation_id: int             # alice and coach
    message_id: int                  # alice's message in it
    notification_id: int             # alice's (bob replied to her post)
    session_id: int                  # a second sign-in of alice's
    protocol_version_id: int
    newer_version_id: int            # the next version of that protocol (to migrate to)
    assignment_id: int               # the protocol running in circle
    review_item_id: int
    escalation_id: int
    request_id: int                  # a questionnaire request to alice
    card_id: int                     # an inbox card about alice, for circle's facilitators
    enrolment_id: int                # alice's consented enrolment in the trial
    invitation_token: str            # to join circle
    study_token: str                 # to take part in the trial
    reset_token: str                 # dora's password reset
    two_factor_secret: str           # tess signs in with two-factor: her app's key
    challenge_token: str             # her password was right; a code is awaited
    connection_request_id: int       # dora asked alice to connect ("people like me"), still pending
    community_id: int = 0            # an open community: coach facilitates it, alice is a member
    community_post_id: int = 0       # alice's post in it
    report_id: int = 0               # alice's experience report in it (metformin)
    guide_entry_id: int = 0          # coach put alice's community post in its guide
    application_id: int = 0          # dora's application to be verified as a professional, waiting
    other_posts: dict = field(default_factory=dict)  # other_circle (arm B): carol's post, comment, poll

    @property
    def ids(self) -> dict[str, object]:
        """A value for every path parameter name (tokens depend on the route: see ``token_for``)."""
        w = self.world
        return {
            "circle_id": w.circle.id, "user_id": w.alice.id, "post_id": self.post_id, "comment_id": self.comment_id,
            "poll_id": self.poll_id, "conversation_id": self.conversation_id, "message_id": self.message_id,
            "notification_id": self.notification_id, "session_id": self.session_id, "kind": "heart",
            "protocol_version_id": self.protocol_version_id, "assignment_id": self.assignment_id,
            "arm_id": w.arm_a.id, "review_item_id": self.review_item_id, "item_id": self.review_item_id,
            "escalation_id": self.escalation_id, "instrument_key": "phq9", "key": "phq9", "measure_key": "weight",
            "request_id": self.request_id, "card_id": self.card_id, "study_id": w.study.id,
            "enrolment_id": self.enrolment_id, "slug": w.study.slug, "chart": "engagement",
            "community_id": self.community_id, "report_id": self.report_id, "guide_entry_id": self.guide_entry_id,
            "connection_request_id": self.connection_request_id,
            "application_id": self.application_id,
        }

    def token_for(self, path: str) -> str:
        if path.startswith("/study/"):
            return self.study_token
        if path.startswith("/password/reset/"):
            return self.reset_token
        return self.invitation_token


def build_objects(s: Session) -> Objects:
    from sqlalchemy import select

    from peerlift.community import service as community
    from peerlift.community.models import CircleRole, Poll, PollOption
    from peerlift.cues.models import InboxCard
    import pyotp

    from peerlift.identity import service as identity
    from peerlift.identity import two_factor
    from peerlift.identity.models import PasswordReset, Role
    from peerlift.policy import circle_access
    from peerlift.protocols import service as protocols
    from peerlift.research import randomise as sequences
    from peerlift.research import service as research
    from peerlift.research.models import Randomisation, StudyDesign, StudyMember, StudyRole
    from peerlift.safety import service as safety
    from peerlift.safety.models import Escalation
    from peerlift.notify.models import Notification
    from peerlift.tracking import service as tracking
    from tests.factories import add_member, create_user

    w = build_world(s)
    other_clinician = create_user(s, "Olga Clinician", Role.clinician)
    add_member(s, w.other_circle, other_clinician, CircleRole.clinician)
    other_researcher = create_user(s, "Remy Researcher", Role.researcher)
    dora = create_user(s, "Dora Dunn")
    # The researcher runs the trial; another researcher runs another study.
    s.add(StudyMember(study_id=w.study.id, user_id=w.researcher.id, role=StudyRole.researcher))
    s.add(StudyDesign(study_id=w.study.id, scheme=Randomisation.blocks, factors=[], block_sizes=[],
                      concealed_seed=sequences.new_seed(), eligibility=[], withdrawal_rule="keep"))
    s.flush()
    other_study = research.create_study(s, other_researcher, title="Another study", slug="another")
    research.set_design(s, w.researcher, w.study, scheme="blocks", block_sizes=[2], eligibility=QUESTIONS)
    research.add_consent_document(s, w.researcher, w.study, version="1.0", title="Consent", sections=SECTIONS)
    study_token, _ = research.create_invitation(s, w.researcher, w.study, max_uses=500)
    enrolment = research.start_enrolment(s, w.alice, study_token)
    research.screen(s, w.alice, enrolment, {"adult": "yes"})
    research.consent(s, w.alice, enrolment, sections=[x["key"] for x in SECTIONS], typed_name=w.alice.display_name)

    for person in (w.alice, w.bob, w.pat, w.coach, w.clinician):
        community.accept_rules(s, circle_access(s, person, w.circle.id))
    alice = circle_access(s, w.alice, w.circle.id)
    post = community.create_post(s, alice, "Morning walk done, 3 km by the river.")
    flagged = community.create_post(s, alice, "A hard week, but still walking.")
    poll_post = community.create_post(s, alice, "Walk on Saturday?", poll_question="Which time?",
                                      poll_options=["9:00", "11:00"])
    comment = community.create_comment(s, alice, post, "Same route tomorrow.")
    bob = circle_access(s, w.bob, w.circle.id)
    community.create_comment(s, bob, post, "Well done!")  # tells alice: her notification
    space_id, _ = safety.locate(s, w.bob, "post", flagged.id)
    flag = safety.flag(s, w.bob, object_type="post", object_id=flagged.id, reason="crisis", note="worried",
                       space_id=space_id)
    conversation = community.open_conversation(s, w.alice, w.coach)
    message = community.send_message(s, w.alice, conversation, "A quick question about Saturday.")
    _token, second_session = identity.start_session(s, w.alice, user_agent="phone")
    invitation_token, _ = identity.create_invitation(s, space_id=w.circle.id, created_by=w.coach, days_valid=7,
                                                     max_uses=30)
    reset_token = secrets.token_urlsafe(32)
    tess = create_user(s, "Tess Twofactor")
    two_factor_row = two_factor.start_setup(s, tess)
    two_factor.confirm_setup(s, tess, pyotp.TOTP(two_factor_row.secret).at(dt.datetime.now(dt.UTC)
                                                                             - dt.timedelta(seconds=30)))
    challenge_token, _ = two_factor.start_challenge(s, tess)
    s.add(PasswordReset(token_hash=identity.token_hash(reset_token), user_id=dora.id,
                        expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)))

    version = protocols.register(s, WALK_PROTOCOL, w.coach)
    newer = protocols.register(s, WALK_PROTOCOL.replace('version: "1.0.0"', 'version: "1.1.0"'), w.coach)
    assignment = protocols.assign(s, w.coach, w.circle, version, dt.date.today())
    yesterday = dt.date.today() - dt.timedelta(days=1)
    tracking.log_entry(s, w.alice, "weight", 83.0, unit="kg", local_date=yesterday.isoformat())
    tracking.log_entry(s, w.alice, "weight", 82.5, unit="kg")
    tracking.update_goals(s, w.alice, weight_unit="kg", target_weight=78, daily_steps=8000)
    request = tracking.send_questionnaire(s, circle_access(s, w.coach, w.circle.id), "phq9", w.alice.id)[0]
    card = InboxCard(space_id=w.circle.id, user_id=w.alice.id, ruleset="matrix", rule_id="quiet-member",
                     reason="Alice has not posted for a week.", link=f"/circles/{w.circle.id}/members")
    s.add(card)
    s.flush()

    # an open community: coach created it (and facilitates it), alice joined under her community name
    quitting = community.create_community(s, w.coach, name="Quitting smoking", description="One day at a time.",
                                          rules="Be kind.", allow_anonymous=True)
    community.join_community(s, w.alice, quitting, pseudonym="Calm Heron 42", accept_guidelines=True)
    community_post = community.create_post(s, circle_access(s, w.alice, quitting.id), "Day 3 without a cigarette.")
    from peerlift.experience import service as experience

    experience_report = experience.create_report(
        s, circle_access(s, w.alice, quitting.id), treatment="A10BA02", duration_value=3, duration_unit="months",
        side_effects=["nausea"], would_recommend="yes")
    guide_entry = experience.add_to_guide(s, circle_access(s, w.coach, quitting.id), target_type="post",
                                          target_id=community_post.id)
    # alice's health profile: conditions shared with her circles, the rest kept to herself; she is
    # suggested to people like her, and dora asked her to connect
    from peerlift.people import service as people

    people.save_profile(s, w.alice, conditions=[{"code": "E11.9", "year": 2018}], treatments=[{"code": "A10BA02"}],
                        goals=["Lose 5%"], age_band="45-54", visibility={"conditions": "my_circles"}, suggest_me=True)
    people.save_profile(s, dora, conditions=[{"code": "E11.9"}], treatments=[], goals=[], age_band=None,
                        visibility={"conditions": "installation"}, suggest_me=True)
    connection_request = people.request_connection(s, dora, w.alice.id, "Hello")
    # dora applied to be verified as a nurse; the admins have not decided yet
    from peerlift.professionals import service as professionals

    application = professionals.apply(s, dora, profession="nurse", registration_number="12A3456E")

    # arm B's own content, for the tests that look for leaks across arms
    carol = circle_access(s, w.carol, w.other_circle.id)
    carol_post = community.create_post(s, carol, "Arm B secret: the stride plan.")
    carol_comment = community.create_comment(s, carol, carol_post, "Arm B comment: stride on.")
    carol_poll = community.create_post(s, carol, "Arm B poll?", poll_question="Arm B question", poll_options=["x", "y"])
    s.flush()

    notification_id = s.scalar(select(Notification.id).where(Notification.user_id == w.alice.id)
                               .order_by(Notification.id.desc()).limit(1))
    escalation_id = s.scalar(select(Escalation.id).where(Escalation.object_id == flagged.id))
    assert notification_id and escalation_id
    poll_id = s.scalar(select(Poll.id).where(Poll.post_id == poll_post.id))
    option_id = s.scalar(select(PollOption.id).where(PollOption.poll_id == poll_id).order_by(PollOption.id).limit(1))
    return Objects(
        world=w, other_clinician=other_clinician, other_researcher=other_researcher, dora=dora,
        other_study_id=other_study.id, post_id=post.id, flagged_post_id=flagged.id, poll_post_id=poll_post.id,
        poll_id=poll_id, option_id=option_id, comment_id=comment.id,
        conversation_id=conversation.id, message_id=message.id, notification_id=notification_id,
        session_id=second_session.id, protocol_version_id=version.id, newer_version_id=newer.id,
        assignment_id=assignment.id,
        review_item_id=flag.review_item_id, escalation_id=escalation_id, request_id=request.id, card_id=card.id,
        enrolment_id=enrolment.id, invitation_token=invitation_token, study_token=study_token,
        reset_token=reset_token, two_factor_secret=two_factor_row.secret, challenge_token=challenge_token,
        community_id=quitting.id, community_post_id=community_post.id, report_id=experience_report.id,
        guide_entry_id=guide_entry.id,
        connection_request_id=connection_request.id, application_id=application.id,
        other_posts={"post_id": carol_post.id, "comment_id": carol_comment.id,
                     "poll_id": s.scalar(select(Poll.id).where(Poll.post_id == carol_poll.id))},
    )
