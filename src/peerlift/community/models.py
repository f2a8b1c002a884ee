from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import (
    CheckConstraint,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from peerlift.db import Base, UTCDateTime, utcnow
from peerlift.identity.models import User


class SpaceKind(str, enum.Enum):
    circle = "circle"
    community = "community"


class CircleRole(str, enum.Enum):
    member = "member"
    peer_supporter = "peer_supporter"
    facilitator = "facilitator"
    clinician = "clinician"


REACTIONS: tuple[str, ...] = ("like", "heart", "clap", "hug", "strong")
REACTION_EMOJI = {"like": "👍", "heart": "❤️", "clap": "👏", "hug": "🤗", "strong": "💪"}


class Space(Base):
    """A private circle or an open community: one model, so the feed is written once."""

    __tablename__ = "space"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[SpaceKind] = mapped_column(Enum(SpaceKind, native_enum=False, length=16), default=SpaceKind.circle)
    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="")
    rules: Mapped[str] = mapped_column(Text, default="")
    timezone: Mapped[str] = mapped_column(String(64))
    allow_member_dms: Mapped[bool] = mapped_column(default=False)
    premoderated: Mapped[bool] = mapped_column(default=False)  # every post reviewed before the circle sees it
    allow_anonymous: Mapped[bool] = mapped_column(default=False)  # communities: posts may hide their author
    arm_id: Mapped[int | None] = mapped_column(ForeignKey("arm.id", ondelete="SET NULL"), nullable=True, index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    archived_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Raised by triggers on every write that changes what its feed shows (community/feed_cache.py).
    content_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class Membership(Base):
    __tablename__ = "membership"
    __table_args__ = (UniqueConstraint("space_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    space_id: Mapped[int] = mapped_column(ForeignKey("space.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    role: Mapped[CircleRole] = mapped_column(Enum(CircleRole, native_enum=False, length=20), default=CircleRole.member)
    joined_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    rules_accepted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_read_post_id: Mapped[int] = mapped_column(Integer, default=0)
    gated: Mapped[bool] = mapped_column(default=False)  # this member's writing is reviewed before others see it
    muted_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)

    user: Mapped[User] = relationship(lazy="raise")


class Post(Base):
    __tablename__ = "post"
    __table_args__ = (
        Index("ix_post_space_id_id", "space_id", "id"),
        Index("ix_post_space_id_pinned_at", "space_id", "pinned_at",
              sqlite_where=text("pinned_at IS NOT NULL"), postgresql_where=text("pinned_at IS NOT NULL")),
        # the writing limits count a person's last hour without reading their whole history
        Index("ix_post_author_id_created_at", "author_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    space_id: Mapped[int] = mapped_column(ForeignKey("space.id", ondelete="CASCADE"))
    author_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    body: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    edited_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    deleted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    pinned_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    comment_count: Mapped[int] = mapped_column(Integer, default=0)
    visibility: Mapped[str] = mapped_column(String(8), default="visible")  # safety.models.Visibility
    removed_reason: Mapped[str] = mapped_column(Text, default="")
    anonymous: Mapped[bool] = mapped_column(default=False)  # members see "Anonymous member"
    is_question: Mapped[bool] = mapped_column(default=False)  # answers are its top-level comments
    for_professionals: Mapped[bool] = mapped_column(default=False)  # listed as awaiting a professional
    # The answer the asker accepted: a plain id, not a foreign key, so that post and comment do not depend
    # on each other (a backup loads tables in dependency order). Deleting the comment clears it.
    accepted_comment_id: Mapped[int | None] = mapped_column(Integer, nullable=True)

    author: Mapped[User] = relationship(lazy="raise")
    poll: Mapped[Poll | None] = relationship(lazy="raise", back_populates="post", uselist=False)


class PostRevision(Base):
    """The text a post had before each edit."""

    __tablename__ = "post_revision"

    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("post.id", ondelete="CASCADE"), index=True)
    body: Mapped[str] = mapped_column(Text)
    written_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    replaced_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Comment(Base):
    __tablename__ = "comment"
    __table_args__ = (Index("ix_comment_post_id_id", "post_id", "id"),
                      Index("ix_comment_author_id_created_at", "author_id", "created_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("post.id", ondelete="CASCADE"))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("comment.id", ondelete="CASCADE"), nullable=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    body: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    edited_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    deleted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)

    visibility: Mapped[str] = mapped_column(String(8), default="visible")
    removed_reason: Mapped[str] = mapped_column(Text, default="")
    as_professional: Mapped[bool] = mapped_column(default=False)  # written as a verified professional

    author: Mapped[User] = relationship(lazy="raise")


class CommentRevision(Base):
    __tablename__ = "comment_revision"

    id: Mapped[int] = mapped_column(primary_key=True)
    comment_id: Mapped[int] = mapped_column(ForeignKey("comment.id", ondelete="CASCADE"), index=True)
    body: Mapped[str] = mapped_column(Text)
    written_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    replaced_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Reaction(Base):
    """One person's reaction of one kind to a post or a comment (never both)."""

    __tablename__ = "reaction"
    __table_args__ = (
        UniqueConstraint("post_id", "comment_id", "user_id", "kind"),
        CheckConstraint("(post_id IS NULL) <> (comment_id IS NULL)", name="one_target"),
        Index("ix_reaction_comment_id", "comment_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int | None] = mapped_column(ForeignKey("post.id", ondelete="CASCADE"), nullable=True)
    comment_id: Mapped[int | None] = mapped_column(ForeignKey("comment.id", ondelete="CASCADE"), nullable=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Mention(Base):
    __tablename__ = "mention"

    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int | None] = mapped_column(ForeignKey("post.id", ondelete="CASCADE"), nullable=True, index=True)
    comment_id: Mapped[int | None] = mapped_column(ForeignKey("comment.id", ondelete="CASCADE"), nullable=True, index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Poll(Base):
    __tablename__ = "poll"

    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("post.id", ondelete="CASCADE"), unique=True)
    question: Mapped[str] = mapped_column(String(300))
    multiple: Mapped[bool] = mapped_column(default=False)
    closes_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)

    post: Mapped[Post] = relationship(back_populates="poll", lazy="raise")
    options: Mapped[list[PollOption]] = relationship(
        lazy="raise", order_by="PollOption.position", cascade="all, delete-orphan"
    )


class PollOption(Base):
    __tablename__ = "poll_option"
    __table_args__ = (UniqueConstraint("poll_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    poll_id: Mapped[int] = mapped_column(ForeignKey("poll.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(String(200))


class PollVote(Base):
    __tablename__ = "poll_vote"
    __table_args__ = (UniqueConstraint("option_id", "user_id"), Index("ix_poll_vote_poll_id_user_id", "poll_id", "user_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    poll_id: Mapped[int] = mapped_column(ForeignKey("poll.id", ondelete="CASCADE"))
    option_id: Mapped[int] = mapped_column(ForeignKey("poll_option.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Conversation(Base):
    """A private conversation between two people; ``user_low_id < user_high_id``."""

    __tablename__ = "conversation"
    __table_args__ = (
        UniqueConstraint("user_low_id", "user_high_id"),
        CheckConstraint("user_low_id < user_high_id", name="ordered_pair"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_low_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    user_high_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_message_id: Mapped[int] = mapped_column(Integer, default=0)
    low_last_read_id: Mapped[int] = mapped_column(Integer, default=0)
    high_last_read_id: Mapped[int] = mapped_column(Integer, default=0)

    user_low: Mapped[User] = relationship(foreign_keys=[user_low_id], lazy="raise")
    user_high: Mapped[User] = relationship(foreign_keys=[user_high_id], lazy="raise")


class Message(Base):
    __tablename__ = "message"
    __table_args__ = (Index("ix_message_conversation_id_id", "conversation_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversation.id", ondelete="CASCADE"))
    sender_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    body: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
