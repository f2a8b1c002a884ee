"""JSON route of search: what the person may open, ranked."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from peerlift.errors import responses
from peerlift.search import queries
from peerlift.search.schemas import SearchHitOut, SearchOut
from peerlift.web.deps import DB, Reader

router = APIRouter(prefix="/api/v1", tags=["search"])


@router.get("/search", response_model=SearchOut, responses=responses(401, 404, 422))
async def search(db: DB, user: Reader,
           q: Annotated[str | None, Query(description=f"Words to find (at most {queries.MAX_QUERY_CHARS} "
                                                     "characters); every word must match")] = None,
           space_id: Annotated[int | None, Query(description="Only this circle or community")] = None,
           author_type: Annotated[Literal["member", "staff", "professional"] | None,
                                  Query(description="member: participants who are not verified professionals; "
                                                    "staff: facilitators, clinicians and other staff; "
                                                    "professional: verified professionals")] = None,
           has_professional_answer: Annotated[bool, Query(description="Only questions that a verified "
                                                                      "professional answered")] = False,
           limit: Annotated[int, Query(ge=1, le=queries.MAX_LIMIT)] = 20,
           cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None):
    def work() -> SearchOut:
        results = queries.search(db, user, q, space_id=space_id, author_type=author_type,
                                 has_professional_answer=has_professional_answer, limit=limit, cursor=cursor)
        return SearchOut(query=results.query, next_cursor=results.next_cursor,
                         results=[SearchHitOut.model_validate(hit) for hit in results.hits])

    return await run_in_threadpool(work)  # a search can take tens of milliseconds: never on the loop
