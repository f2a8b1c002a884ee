from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReportIn(_In):
    treatment: str = Field(max_length=400, description="An ATC medicine code (or its listed name), or free text")
    duration_value: int | None = Field(None, description="1 to 999; empty when ongoing")
    duration_unit: str = Field(max_length=16, description="days, weeks, months, years or ongoing")
    what_helped: str = Field("", max_length=20_000)
    side_effects: list[Any] = Field(default_factory=list, max_length=100,
                                    description="Short terms: at most 10, each up to 60 characters")
    would_recommend: str = Field(max_length=16, description="yes, no or unsure")
    body: str = Field("", max_length=200_000)
    anonymous: bool = False


class ReportPatch(_In):
    treatment: str = Field(max_length=400)
    duration_value: int | None = None
    duration_unit: str = Field(max_length=16)
    what_helped: str = Field("", max_length=20_000)
    side_effects: list[Any] = Field(default_factory=list, max_length=100)
    would_recommend: str = Field(max_length=16)
    body: str = Field("", max_length=200_000)


class ReportPersonOut(_Out):
    id: int
    display_name: str


class ReportOut(_Out):
    id: int
    circle_id: int
    author: ReportPersonOut
    anonymous: bool
    treatment_code: str | None
    treatment_name: str
    treatment_key: str
    duration_value: int | None
    duration_unit: str
    duration: str
    what_helped: str
    side_effects: list[str]
    would_recommend: str
    body: str
    body_html: str
    visibility: str
    created_at: dt.datetime
    edited_at: dt.datetime | None
    helpful_count: int
    my_helpful: bool
    screening: dict | None = None


class SideEffectCountOut(_Out):
    term: str
    reports: int


class AggregateOut(_Out):
    treatment_key: str
    treatment_code: str | None
    treatment_name: str
    reports: int
    recommend: dict[str, int]
    side_effects: list[SideEffectCountOut]
    median_days: float | None
    median_duration: str | None
    ongoing: int
    summary: str
    community_ids: list[int]


class HelpfulOut(_Out):
    helpful_count: int
    my_helpful: bool
    changed: bool


class GuideEntryIn(_In):
    target_type: str = Field(max_length=32, description="post, comment or experience")
    target_id: int
    heading: str = Field("", max_length=2_000)


class GuideMoveIn(_In):
    direction: str = Field(max_length=8, description="up or down")


class GuideItemOut(_Out):
    id: int
    position: int
    heading: str
    target_type: str
    target_id: int
    url: str
    author: ReportPersonOut
    body_html: str
    excerpt: str
    helpful_count: int
    added_at: dt.datetime

