"""Email through SMTP (aiosmtplib), or to the log when no server is configured.

Privacy by default: no email carries health content. They say that something is waiting
and link to it; the person reads it after signing in.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage
from email.utils import make_msgid
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib
from sqlalchemy.orm import Session

from peerlift.delivery.models import ScheduledDelivery
from peerlift.delivery.scheduler import Skip, handler
from peerlift.settings import get_settings

log = logging.getLogger("peerlift.mail")


def build(to: str, subject: str, body: str, *, message_key: str) -> EmailMessage:
    settings = get_settings()
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = to
    message["Subject"] = subject
    # A stable Message-ID per delivery: a resend after a crash can be recognised as the same mail.
    domain = settings.mail_from.rsplit("@", 1)[-1].strip("> ") or "peerlift.invalid"
    message["Message-ID"] = make_msgid(idstring=message_key.replace(":", "."), domain=domain)
    message.set_content(body)
    return message


def send(message: EmailMessage) -> None:
    url = get_settings().smtp_url
    if not url:
        log.info("email (no PEERLIFT_SMTP_URL set) to %s: %s\n%s", message["To"], message["Subject"],
                 message.get_content())
        return
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    implicit_tls = parts.scheme == "smtps"
    _run(lambda: aiosmtplib.send(
        message,
        hostname=parts.hostname,
        port=parts.port or (465 if implicit_tls else 25),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        use_tls=implicit_tls,
        start_tls=query.get("starttls", ["false"])[0].lower() in ("1", "true", "yes"),
        timeout=20,
    ))


def _run(make_coroutine) -> None:
    """Run an SMTP exchange to the end from synchronous code, even where this thread already runs
    an event loop (then in a short-lived thread of its own)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(make_coroutine())
        return
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(lambda: asyncio.run(make_coroutine())).result()


def link(path: str) -> str:
    return get_settings().base_url.rstrip("/") + path


@handler("email.invitation", external=True)
def send_invitation(session: Session, row: ScheduledDelivery):
    token = row.payload.get("token")
    if not token:
        return Skip("the invitation link was already sent")
    body = (
        "Hello,\n\n"
        f"{row.payload.get('inviter', 'Your coach')} has invited you to join a private peer circle on peerlift.\n\n"
        f"Create your account here: {link('/join/' + token)}\n\n"
        "The link works for a limited time. If you did not expect this, you can ignore this email.\n"
    )
    send(build(row.payload["to"], "You are invited to a peerlift circle", body, message_key=row.dedupe_key))
    row.payload = {k: v for k, v in row.payload.items() if k != "token"}  # the token is not kept once sent


@handler("email.password_reset", external=True)
def send_password_reset(session: Session, row: ScheduledDelivery):
    token = row.payload.get("token")
    if not token:
        return Skip("the reset link was already sent")
    body = (
        "Hello,\n\n"
        "Someone (we hope you) asked to reset the password of your peerlift account.\n\n"
        f"Choose a new password here: {link('/password/reset/' + token)}\n\n"
        "The link works once, within one hour. If you did not ask for it, ignore this email: "
        "your password stays as it is.\n"
    )
    send(build(row.payload["to"], "Reset your peerlift password", body, message_key=row.dedupe_key))
    row.payload = {k: v for k, v in row.payload.items() if k != "token"}
