"""The search page: a form that works without JavaScript, and its results."""

from __future__ import annotations

from fastapi import APIRouter, Request

from peerlift.community.models import Space
from peerlift.errors import InvalidInput, NotFound
from peerlift.policy import searchable_spaces
from peerlift.search import queries
from peerlift.web.deps import DB, CurrentUser
from peerlift.web.templating import page

router = APIRouter(include_in_schema=False)


@router.get("/search")
def search_page(request: Request, db: DB, user: CurrentUser, q: str | None = None, space_id: str | None = None,
                author_type: str | None = None, has_professional_answer: str | None = None,
                cursor: str | None = None):
    allowed = searchable_spaces(db, user)
    spaces = db.query(Space.id, Space.name).filter(Space.id.in_(allowed)).order_by(Space.name).all() if allowed else []
    chosen = int(space_id) if space_id and space_id.isdigit() else None
    answered = has_professional_answer in ("true", "1", "on")
    context = {"q": q or "", "spaces": spaces, "space_id": chosen, "author_type": author_type or "",
               "has_professional_answer": answered,
               "results": None, "error": None}
    status = 200
    if q is not None:
        try:
            context["results"] = queries.search(db, user, q, space_id=chosen, author_type=author_type or None,
                                                has_professional_answer=answered, cursor=cursor)
        except (InvalidInput, NotFound) as error:
            context["error"], status = error.message, 422 if isinstance(error, InvalidInput) else 404
    return page(request, "search.html", context, status_code=status)
