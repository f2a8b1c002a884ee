"""Scheduled work of the safety domain: acknowledgement deadlines and alert emails."""

from __future__ import annotations

from sqlalchemy.orm import Session

from peerlift.delivery.models import ScheduledDelivery
from peerlift.delivery.scheduler import PERSON_GONE, Skip, active_user, handler
from peerlift.safety import service
from peerlift.safety.models import Escalation, EscalationStatus


@handler("safety.escalation_deadline")
def escalation_deadline(session: Session, row: ScheduledDelivery):
    """Lives in the scheduler, not in memory: a restart never loses a deadline."""
    outcome = service.deadline_passed(session, row.payload["escalation_id"], row.payload["tier"])
    if outcome != "escalated":
        return Skip(outcome)
    return None


@handler("email.escalation", external=True)
def email_escalation(session: Session, row: ScheduledDelivery):
    """The alert by email: who and how urgent, never what they wrote."""
    from peerlift.delivery.mail import build, link, send

    person = active_user(session, row.payload["user_id"])
    if person is None:
        return PERSON_GONE
    escalation = session.get(Escalation, row.payload["escalation_id"])
    if escalation is None or escalation.status != EscalationStatus.open:
        return Skip("acknowledged before the email went out")
    urgency = "now" if escalation.level == "crisis" else "today"
    body = (f"Hello {person.first_name},\n\nA member of a circle you care for may be at risk and needs a clinician "
            f"{urgency}. Please open the escalation and acknowledge it:\n\n"
            f"{link(f'/safety/escalations/{escalation.id}')}\n\n"
            "If nobody acknowledges in time, the next person on the rota is alerted.\n")
    send(build(person.email, f"peerlift: a member needs a clinician {urgency}", body, message_key=row.dedupe_key))
