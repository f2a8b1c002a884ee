from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field

from peerlift.people.models import Visibility

VISIBILITY_HELP = ("only_me; my_circles (people who share a circle with me); my_communities (... or an open "
                   "community); installation (anyone signed in)")


class ConditionIO(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str | None = Field(None, max_length=12, description="An ICD-10-CM code from GET /api/v1/codes/conditions")
    text: str | None = Field(None, max_length=200, description="Free text, when no code fits")
    year: int | None = Field(None, description="Year of diagnosis")


class TreatmentIO(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str | None = Field(None, max_length=12, description="An ATC code from GET /api/v1/codes/medicines")
    text: str | None = Field(None, max_length=200)


class VisibilityIO(BaseModel):
    model_config = ConfigDict(extra="forbid")
    conditions: Visibility = Visibility.only_me
    treatments: Visibility = Visibility.only_me
    goals: Visibility = Visibility.only_me
    diagnosis_years: Visibility = Visibility.only_me
    age_band: Visibility = Visibility.only_me


class HealthProfileIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    conditions: list[ConditionIO] = Field(default_factory=list, max_length=20)
    treatments: list[TreatmentIO] = Field(default_factory=list, max_length=20)
    goals: list[str] = Field(default_factory=list, max_length=20)
    age_band: str | None = Field(None, max_length=8, description="18-24, 25-34, ..., 75+")
    visibility: VisibilityIO = Field(default_factory=VisibilityIO, description=VISIBILITY_HELP)
    suggest_me: bool = Field(False, description='Suggest me to people like me (off unless turned on)')
    hidden: bool = Field(False, description="Hide me from suggestions (wins over suggest_me)")


class HealthProfileOut(HealthProfileIn):
    model_config = ConfigDict(extra="forbid")
    user_id: int


class OtherProfileOut(BaseModel):
    """Another person's profile: a field they do not share with the viewer is absent (null)."""
    user_id: int
    display_name: str
    conditions: list[ConditionIO] | None = None
    treatments: list[TreatmentIO] | None = None
    goals: list[str] | None = None
    age_band: str | None = None


class CodeOut(BaseModel):
    code: str
    name: str


class SuggestionOut(BaseModel):
    user_id: int
    display_name: str
    score: int
    reasons: list[str]
    request_pending: bool


class CommunitySuggestionOut(BaseModel):
    id: int
    name: str
    reasons: list[str]


class LikeMeOut(BaseModel):
    opted_in: bool
    people: list[SuggestionOut]
    communities: list[CommunitySuggestionOut]


class ConnectionRequestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field("", max_length=500)


class ConnectionRequestOut(BaseModel):
    id: int
    user_id: int
    display_name: str
    note: str
    status: str
    incoming: bool
    created_at: dt.datetime
    conversation_id: int | None
