"""One error base for the whole product; every 4xx has the same shape.

``{"error": {"code": "...", "message": "...", "field": "..."}}``
"""

from __future__ import annotations

from pydantic import BaseModel


class PeerliftError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if code:
            self.code = code

    def body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message, "field": self.field}}


class BadRequest(PeerliftError):
    status_code = 400
    code = "bad_request"


class InvalidInput(PeerliftError):
    status_code = 422
    code = "invalid"


class NotAuthenticated(PeerliftError):
    status_code = 401
    code = "not_authenticated"


class Forbidden(PeerliftError):
    status_code = 403
    code = "forbidden"


class NotFound(PeerliftError):
    status_code = 404
    code = "not_found"


class Conflict(PeerliftError):
    status_code = 409
    code = "conflict"


class Gone(PeerliftError):
    status_code = 410
    code = "gone"


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail


def responses(*codes: int) -> dict:
    """OpenAPI ``responses=`` entry listing a route's error statuses with the error shape."""
    return {code: {"model": ErrorResponse, "content": {"application/json": {}}} for code in codes}
