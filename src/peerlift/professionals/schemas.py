from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field


class ProfessionOut(BaseModel):
    key: str
    label: str


class ApplicationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    profession: str = Field(max_length=200, description="A key of GET /api/v1/professions")
    profession_other: str = Field("", max_length=1000, description="The profession in your words, for \"other\"")
    registration_number: str = Field(max_length=1000, description="Your number on the professional register")
    registry: str = Field("", max_length=1000, description="The register and its country, e.g. \"NMC, UK\"")


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field("", max_length=5000, description="Why (needed to reject or revoke; the applicant reads it)")


class ApplicationOut(BaseModel):
    id: int
    user_id: int
    profession: str
    profession_label: str
    registration_number: str
    registry: str
    status: str = Field(description="applied, verified, rejected or revoked")
    applied_at: dt.datetime
    decided_at: dt.datetime | None
    reason: str


class AdminApplicationOut(ApplicationOut):
    display_name: str
    email: str
