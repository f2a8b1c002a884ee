from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field

from peerlift.community.models import CircleRole


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PersonOut(_Out):
    id: int
    display_name: str
    handle: str
    pronouns: str
    circle_role: str | None = None
    professional: str | None = Field(None, description="A verified professional's profession (shown as a badge: "
                                                       "\"Verified nurse\"); null for everyone else")


class CircleOut(_Out):
    id: int
    name: str
    description: str
    timezone: str
    my_role: str
    member_count: int
    unread_count: int
    rules_accepted: bool
    archived: bool


class CircleDetailOut(CircleOut):
    rules: str
    allow_member_dms: bool


class CircleIn(_In):
    name: str = Field(max_length=200)
    description: str = Field("", max_length=2000)
    rules: str = Field("", max_length=5000)
    timezone: str | None = Field(None, max_length=64)
    allow_member_dms: bool = False
    arm_id: int | None = None


class MemberIn(_In):
    email: str = Field(max_length=254)
    role: CircleRole = CircleRole.member


class MemberRoleIn(_In):
    role: CircleRole


class ReadIn(_In):
    post_id: int | None = Field(None, ge=1, description="Mark read up to this post; omit for everything")


class InvitationIn(_In):
    days_valid: int = Field(7, description="1 to 90")
    max_uses: int = Field(30, description="1 to 500")
    note: str = Field("", max_length=200)
    email: str | None = Field(None, max_length=254, description="Also send the link to this address")


class InvitationOut(_Out):
    id: int
    circle_id: int
    url: str
    token: str
    expires_at: dt.datetime
    max_uses: int


class PollIn(_In):
    question: str = Field(max_length=300)
    options: list[str] = Field(max_length=50)
    multiple: bool = False
    closes_at: dt.datetime | None = None


class PostIn(_In):
    body: str = Field(max_length=200_000)
    poll: PollIn | None = None
    anonymous: bool = Field(False, description="Open communities that allow it: members see \"Anonymous member\"")
    question: bool = Field(False, description="A question: its comments are answers, the asker accepts one")
    for_professionals: bool = Field(False, description="A question for verified professionals (implies question): "
                                                       "listed as awaiting a professional until one answers")
    confirm_personal_information: bool = Field(
        False, description="Post even though the text seems to hold a phone number, email, address or full name")


class PostPatch(_In):
    body: str = Field(max_length=200_000)
    confirm_personal_information: bool = False


class ScreeningOut(BaseModel):
    level: str = Field(description="Triage level: green, amber, red or crisis")
    held: bool = Field(description="Held for review: only the author (and the circle's moderators) see it")
    held_reason: str
    message: str = Field(description="A supportive message for the author, when the writing suggests risk")
    emergency: bool = Field(description="A medical emergency: the author is told to call the emergency number")
    resources: list[dict[str, str]] = Field(description="Crisis lines configured for the installation")


class PollOptionOut(_Out):
    id: int
    text: str
    votes: int | None = Field(description="null until the viewer has voted or the poll has closed")


class PollOut(_Out):
    id: int
    post_id: int
    question: str
    multiple: bool
    closes_at: dt.datetime | None
    closed: bool
    results_visible: bool
    voters: int | None
    my_votes: list[int]
    options: list[PollOptionOut]


class PostOut(_Out):
    id: int
    circle_id: int
    author: PersonOut
    body: str
    body_html: str
    created_at: dt.datetime
    edited_at: dt.datetime | None
    pinned: bool
    comment_count: int
    reactions: dict[str, int]
    my_reactions: list[str]
    poll: PollOut | None
    unread: bool
    can_edit: bool
    can_delete: bool
    visibility: str = Field("visible", description="visible, held (for review) or removed")
    removed_reason: str = ""
    anonymous: bool = Field(False, description="Posted anonymously (the community's moderators still see who)")
    is_question: bool = False
    for_professionals: bool = False
    accepted_comment_id: int | None = Field(None, description="The answer the asker accepted")
    with_clinical_team: bool = Field(False, description="A question that triaged red or crisis: a clinician was "
                                                        "alerted, and it does not wait for answers")
    can_accept: bool = Field(False, description="The viewer asked this question and may accept an answer")
    safety: ScreeningOut | None = Field(None, description="Only in the answer to the author's own write")


class FeedOut(_Out):
    posts: list[PostOut]
    pinned: list[PostOut]
    next_cursor: int | None = Field(description="Pass as ?before= for the next (older) page")
    unread_count: int


class RevisionOut(BaseModel):
    body: str
    written_at: dt.datetime


class CommentIn(_In):
    body: str = Field(max_length=200_000)
    parent_id: int | None = None
    as_professional: bool = Field(False, description="Answer a question as a verified professional (403 for anyone "
                                                     "who is not verified)")


class AcceptIn(_In):
    comment_id: int | None = Field(description="The answer to accept; null to accept none")


class CommentPatch(_In):
    body: str = Field(max_length=200_000)


class CommentOut(_Out):
    id: int
    post_id: int
    parent_id: int | None
    author: PersonOut
    body: str
    body_html: str
    created_at: dt.datetime
    edited_at: dt.datetime | None
    reactions: dict[str, int]
    my_reactions: list[str]
    can_edit: bool
    can_delete: bool
    replies: list[CommentOut] = []
    visibility: str = "visible"
    removed_reason: str = ""
    as_professional: bool = Field(False, description="Written as an answer from a verified professional")
    professional_answer: str | None = Field(
        None, description="The profession of a professional answer whose author is verified now; null when "
                          "the verification has since ended")
    accepted: bool = Field(False, description="The answer the asker accepted")
    disclaimer: str | None = Field(None, description="The installation's disclaimer, on every professional answer")
    safety: ScreeningOut | None = None


class ReactionsOut(BaseModel):
    reactions: dict[str, int]
    my_reactions: list[str]
    changed: bool


class VoteIn(_In):
    option_ids: list[int] = Field(max_length=10)


class ConversationIn(_In):
    user_id: int


class ConversationOut(_Out):
    id: int
    other: PersonOut
    last_message_at: dt.datetime | None
    last_message_excerpt: str
    unread_count: int


class MessageIn(_In):
    body: str = Field(max_length=200_000)


class MessageOut(_Out):
    id: int
    conversation_id: int
    sender: PersonOut
    body: str
    body_html: str
    created_at: dt.datetime
    mine: bool
    safety: ScreeningOut | None = None


class MessagesOut(BaseModel):
    messages: list[MessageOut]
    next_cursor: int | None


class CommunityIn(_In):
    name: str = Field(max_length=200)
    description: str = Field("", max_length=2000)
    rules: str = Field("", max_length=5000, description="The guidelines, shown and accepted on joining")
    allow_anonymous: bool = False
    timezone: str | None = Field(None, max_length=64)


class CommunityOut(_Out):
    id: int
    name: str
    description: str
    rules: str = Field(description="The guidelines")
    allow_anonymous: bool
    member_count: int
    joined: bool
    my_role: str | None


class JoinIn(_In):
    pseudonym: str | None = Field(None, max_length=200,
                                  description="Your community name; needed on first joining, never your real name")
    accept_guidelines: bool = Field(False, description="Needed when the community has guidelines")
