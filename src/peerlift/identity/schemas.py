from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field

from peerlift.identity.models import Role


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str = Field(max_length=254)
    password: str = Field(max_length=256)


class SignupIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: str = Field(max_length=128, description="The invitation token from the link /join/{token}")
    email: str = Field(max_length=254)
    password: str = Field(max_length=256)
    display_name: str = Field(max_length=80)
    timezone: str = Field(max_length=64)
    pronouns: str = Field("", max_length=40)


class ProfileIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    display_name: str | None = Field(None, max_length=200)
    pronouns: str | None = Field(None, max_length=200)
    bio: str | None = Field(None, max_length=2000)
    timezone: str | None = Field(None, max_length=64)


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    display_name: str
    handle: str
    pronouns: str
    bio: str


class MeOut(UserOut):
    email: str
    timezone: str
    role: Role
    created_at: dt.datetime


class SessionOut(BaseModel):
    user: MeOut
    csrf_token: str


class ForgotIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str = Field(max_length=254)


class ResetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: str = Field(max_length=128)
    password: str = Field(max_length=256)


class PasswordChangeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    current_password: str = Field(max_length=256)
    new_password: str = Field(max_length=256)


class EmailChangeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str = Field(max_length=254, description="The new sign-in address")
    password: str = Field(max_length=256, description="Your current password")
