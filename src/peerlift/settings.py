"""One settings object, read from PEERLIFT_* environment variables."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


DEFAULT_CRISIS_RESOURCES: dict[str, list[dict[str, str]]] = {
    "GB": [{"name": "Emergency services", "phone": "999"},
           {"name": "NHS 111 (press 2 for mental health)", "phone": "111"},
           {"name": "Samaritans, day or night", "phone": "116 123"},
           {"name": "Shout crisis text line", "text": "Text SHOUT to 85258"}],
    "US": [{"name": "Emergency services", "phone": "911"},
           {"name": "988 Suicide & Crisis Lifeline", "phone": "988", "text": "Text 988"}],
    "IE": [{"name": "Emergency services", "phone": "112 or 999"},
           {"name": "Samaritans", "phone": "116 123"}],
    "AU": [{"name": "Emergency services", "phone": "000"},
           {"name": "Lifeline", "phone": "13 11 14"}],
    "CA": [{"name": "Emergency services", "phone": "911"},
           {"name": "9-8-8 Suicide Crisis Helpline", "phone": "988"}],
}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PEERLIFT_", extra="ignore")

    database_url: str = Field(
        "sqlite:///var/peerlift.db",
        description="SQLAlchemy URL: sqlite:///path.db (default) or postgresql+psycopg://user@host/db",
    )
    base_url: str = Field("http://127.0.0.1:8000", description="Public address, used in invitation links")
    secure_cookies: bool = Field(False, description="Mark cookies Secure (set when served over https)")
    session_days: int = Field(14, ge=1, le=365, description="Days a sign-in lasts without activity")
    default_timezone: str = Field("Europe/London", description="IANA zone for new accounts and circles")
    post_max_chars: int = Field(10_000, ge=100, le=100_000)
    feed_page_size: int = Field(20, ge=5, le=100)
    feed_cache_mb: int = Field(64, ge=0, le=4096, description="Feed answers each process keeps for re-reads of "
                                                             "unchanged pages, in MB; 0 turns it off")
    search_rank_window: int = Field(1000, ge=0, le=1_000_000, description=(
        "A search ranks at most this many of its matches, the most recently written or edited; 0: all of them"))
    sql_echo: bool = False
    redis_url: str | None = Field(None, description="redis://host:6379/0: fan-out of live events between processes")
    stream_keepalive_seconds: float = Field(15.0, gt=0, le=300, description="Keep-alive comment interval on streams")

    smtp_url: str | None = Field(
        None, description="smtp://user:pass@host:587?starttls=true or smtps://host:465; unset: email goes to the log")
    mail_from: str = Field("peerlift <no-reply@peerlift.invalid>", description="From address of every email")
    access_log: bool = Field(True, description="A line per request on the server's log (uvicorn's access log); "
                                               "behind a proxy that keeps its own, it may be off")
    run_worker: bool = Field(True, description="Run a scheduler worker inside `peerlift serve`")
    gc_freeze: bool = Field(True, description="Keep long-lived objects (open streams) out of full garbage collections; see collector.py")
    forwarded_allow_ips: str = Field(
        "127.0.0.1,::1", description="Proxies whose X-Forwarded-For/-Proto are believed: addresses or networks, "
                                     "comma-separated, or *")
    cues_per_day: int = Field(3, ge=0, le=1000, description="Most cues a person gets in 24 hours (DMs, notifications)")
    cue_files: str = Field("", description="Cue rule files for every circle, separated by commas")
    cue_defaults: bool = Field(True, description="Run the shipped default rules (the facilitator's inbox)")

    @property
    def cue_paths(self) -> list:
        from pathlib import Path

        return [Path(p.strip()) for p in self.cue_files.split(",") if p.strip()]

    triage_lexicons: list[str] = Field(
        default_factory=list, description='JSON list of extra triage lexicon files, e.g. ["/etc/peerlift/lexicon.yaml"]')
    triage_model: str = Field(
        "", description='Learned second opinion for triage: empty for the shipped model, "off", or a model file')
    login_failures_per_account: int = Field(5, ge=1, le=1000, description="Failed sign-ins allowed per account in the window")
    login_failures_per_address: int = Field(20, ge=1, le=100_000, description="Failed sign-ins allowed per client address in the window")
    login_window_minutes: int = Field(15, ge=1, le=24 * 60, description="The throttling window of failed sign-ins")
    escalation_ack_minutes: int = Field(
        15, ge=1, le=24 * 60, description="Minutes a clinician has to acknowledge an escalation before the next is alerted")
    country: str = Field("GB", min_length=2, max_length=2,
                         description="ISO country of the installation: crisis resources and phone numbers")
    crisis_resources: dict[str, list[dict[str, str]]] = Field(
        default_factory=lambda: dict(DEFAULT_CRISIS_RESOURCES),
        description="JSON: country code -> list of {name, phone, text, url} shown to a person in crisis")
    answer_disclaimer: str = Field(
        "General information, not medical advice for you. For advice about your own care, talk to your own doctor "
        "or nurse; in an emergency call your local emergency number.", max_length=1000,
        description="Shown under every answer a verified professional writes to a question")
    posts_per_minute: int = Field(6, ge=1, le=100_000, description="Posts, comments and experience reports one person may write a minute")
    posts_per_hour: int = Field(60, ge=1, le=1_000_000, description="Posts, comments and experience reports one person may write an hour")
    two_factor_roles: str = Field(
        "clinician,researcher,admin",
        description="Roles that must sign in with a second factor (TOTP), separated by commas; empty: optional for all")

    @property
    def two_factor_role_set(self) -> frozenset[str]:
        return frozenset(r.strip() for r in self.two_factor_roles.split(",") if r.strip())

    @field_validator("two_factor_roles")
    @classmethod
    def _two_factor_roles(cls, value: str) -> str:
        known = ("participant", "facilitator", "clinician", "researcher", "admin")
        unknown = [r.strip() for r in value.split(",") if r.strip() and r.strip() not in known]
        if unknown:
            raise ValueError(f"PEERLIFT_TWO_FACTOR_ROLES: unknown role {unknown[0]!r}; use {', '.join(known)}")
        return value

    # Deleting an account (privacy/deletion.py): what happens to what the person wrote.
    deletion_writing: Literal["delete", "keep_pseudonymised"] = Field(
        "delete", description="Posts, comments, reactions, votes and direct messages of a deleted account outside "
                              "any study: delete, or keep_pseudonymised (shown as \"Deleted member\")")
    deletion_in_study: Literal["keep_pseudonymised", "delete"] = Field(
        "keep_pseudonymised", description="A study's rule on account deletion when its consent document states none")
    # Retention (privacy/retention.py, `peerlift purge`, daily in the worker); 0 keeps forever.
    retention_days_notifications: int = Field(365, ge=0, le=36_500, description="Days notifications are kept")
    retention_days_sessions: int = Field(30, ge=0, le=36_500, description="Days expired sign-in sessions are kept")
    retention_days_login_failures: int = Field(
        30, ge=0, le=36_500, description="Days failed sign-ins are kept (a day or more outlasts the throttling window)")
    retention_days_password_resets: int = Field(30, ge=0, le=36_500,
                                                description="Days expired or used password-reset links are kept")
    retention_days_deleted_accounts: int = Field(
        30, ge=0, le=36_500, description="Days the engagement events of a deleted account are kept when no study holds them")
    retention_days_events: int = Field(
        730, ge=0, le=36_500, description="Days engagement events are kept of people in no study, outside study circles")

    @field_validator("smtp_url")
    @classmethod
    def _smtp(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        from urllib.parse import urlsplit

        try:
            parts = urlsplit(value)
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"PEERLIFT_SMTP_URL is not a valid URL: {exc}") from exc
        if parts.scheme not in ("smtp", "smtps"):
            raise ValueError("PEERLIFT_SMTP_URL must start with smtp:// or smtps://")
        if not parts.hostname:
            raise ValueError("PEERLIFT_SMTP_URL names no host")
        if port is not None and not 0 < port < 65536:
            raise ValueError("PEERLIFT_SMTP_URL has a port out of range")
        return value

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _proxies(cls, value: str) -> str:
        import ipaddress

        items = [item.strip() for item in value.split(",") if item.strip()]
        if items == ["*"]:
            return "*"
        if not items:
            raise ValueError("PEERLIFT_FORWARDED_ALLOW_IPS is empty: name the proxy's address (e.g. 127.0.0.1)")
        normal = []
        for item in items:
            try:  # written as uvicorn compares them: a network with its host bits cleared
                normal.append(str(ipaddress.ip_network(item, strict=False)) if "/" in item
                              else str(ipaddress.ip_address(item)))
            except ValueError:
                raise ValueError(f"PEERLIFT_FORWARDED_ALLOW_IPS: {item!r} is not an IP address or network "
                                 "(use e.g. 127.0.0.1, 10.0.0.0/8, ::1, or * alone)") from None
        return ",".join(normal)

    @field_validator("default_timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"PEERLIFT_DEFAULT_TIMEZONE: unknown time zone {value!r}") from exc
        return value

    @field_validator("database_url")
    @classmethod
    def _db(cls, value: str) -> str:
        if value.startswith("postgresql://"):
            value = "postgresql+psycopg://" + value.removeprefix("postgresql://")
        if not (value.startswith("sqlite") or value.startswith("postgresql+psycopg")):
            raise ValueError("PEERLIFT_DATABASE_URL must be a sqlite:/// or postgresql:// URL")
        return value


@lru_cache
def get_settings() -> Settings:
    return Settings()
