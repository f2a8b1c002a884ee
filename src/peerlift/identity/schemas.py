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
    two_factor_setup_required: bool = Field(
        False, description="The person's role needs two-factor sign-in and it is not set up: until it is, "
                           "only /api/v1/me/two-factor and sign-out answer (everything else: 403 two_factor_required)")


class ChallengeOut(BaseModel):
    """The password was right; a second-factor code is owed: send it with the challenge to
    /api/v1/auth/login/two-factor before ``expires_at``."""

    two_factor_required: bool = True
    challenge: str
    expires_at: dt.datetime


class TwoFactorLoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    challenge: str = Field(max_length=128, description="The challenge from /api/v1/auth/login")
    code: str = Field(max_length=64, description="The 6-digit code from the authenticator app, or a recovery code")


class TwoFactorStatusOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    enabled: bool
    enabled_at: dt.datetime | None
    required: bool = Field(description="The person's role needs two-factor sign-in")
    setup_pending: bool = Field(description="A secret was made and waits for a code to confirm it")
    recovery_codes_left: int


class TwoFactorSetupOut(BaseModel):
    secret: str = Field(description="Base32 secret, for typing into an authenticator app")
    otpauth_uri: str = Field(description="otpauth://totp/... URI, the content of the QR code")


class TwoFactorCodeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(max_length=64, description="The current 6-digit code from the authenticator app")


class TwoFactorDisableIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    password: str = Field(max_length=256)
    code: str = Field(max_length=64, description="A current code from the app, or a recovery code")


class RecoveryCodesOut(BaseModel):
    recovery_codes: list[str] = Field(description="Single-use codes, shown this once: only hashes are kept")


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
