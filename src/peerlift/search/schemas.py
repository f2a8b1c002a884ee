from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class SearchHitOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    kind: Literal["post", "comment", "experience"]
    id: int
    url: str = Field(description="Where the result opens (a post, or a comment within its post)")
    space_id: int
    space_name: str
    author_id: int
    author_name: str
    author_type: Literal["member", "staff", "professional"]
    author_professional: str | None = Field(None, description="The profession of a verified professional author")
    created_at: dt.datetime
    snippet_html: str = Field(description="A passage around the match, HTML-escaped; matches in <mark>")


class SearchOut(BaseModel):
    query: str
    results: list[SearchHitOut]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page")
