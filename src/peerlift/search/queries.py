"""Searching: what a person types becomes plain terms (never query syntax), matched against the
index of the spaces they may read, ranked (bm25 on SQLite, ts_rank on PostgreSQL), newest first
among equals."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from functools import lru_cache

from markupsafe import Markup, escape
from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session

from peerlift.errors import InvalidInput, NotFound
from peerlift.identity.models import Role, User
from peerlift.policy import CircleAccess, searchable_accesses
from peerlift.search.kinds import KINDS, Opening
from peerlift.search.models import TEXT_SEARCH_CONFIG, space_terms
from peerlift.settings import get_settings

MAX_QUERY_CHARS = 200
MAX_TERMS = 12
MAX_LIMIT = 50
MAX_OFFSET = 1_000
SNIPPET_CHARS = 220
AUTHOR_TYPES = {
    "member": (Role.participant,),  # ... who is not a verified professional
    "staff": (Role.facilitator, Role.clinician, Role.researcher, Role.admin),
    "professional": None,           # a verified professional now, whatever their role
}
VERIFIED = "SELECT user_id FROM professional WHERE status = 'verified'"
PROFESSIONAL_ANSWERED = (
    "SELECT c.post_id FROM comment c JOIN professional pr ON pr.user_id = c.author_id AND pr.status = 'verified' "
    "WHERE c.as_professional AND c.parent_id IS NULL AND c.deleted_at IS NULL AND c.visibility = 'visible'")
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass
class Hit:
    kind: str
    id: int
    url: str
    space_id: int
    space_name: str
    author_id: int
    author_name: str
    author_type: str
    created_at: dt.datetime
    snippet_html: Markup
    author_professional: str | None = None


@dataclass
class Results:
    query: str
    terms: list[str]
    hits: list[Hit]
    next_cursor: str | None


def terms_of(q: str | None) -> list[str]:
    """The words of a query, lower-cased: letters and digits only, so nothing typed is query syntax."""
    if q is None or not q.strip():
        raise InvalidInput("Type a word or two to search for.", field="q")
    if len(q) > MAX_QUERY_CHARS:
        raise InvalidInput(f"The search has {len(q):,} characters; the most is {MAX_QUERY_CHARS}.", field="q")
    terms = list(dict.fromkeys(word.lower() for word in _WORD.findall(q) if word.strip("_")))
    if not terms:
        raise InvalidInput("The search needs at least one letter or digit.", field="q")
    return terms[:MAX_TERMS]


def offset_of(cursor: str | None) -> int:
    if cursor is None or cursor == "":
        return 0
    if not cursor.isdigit() or int(cursor) > MAX_OFFSET:
        raise InvalidInput("The cursor is not one this search gave out.", field="cursor")
    return int(cursor)


def _sqlite_match(terms: list[str], space_ids: list[int]) -> str:
    """All the words in one of the spaces: ``("s83_knee" AND "s83_pain") OR ("s39_knee" AND ...)``,
    as ``search.models.space_terms`` indexed them."""
    return " OR ".join(
        "(" + " AND ".join('"' + space_terms(space_id, term).replace('"', '""') + '"' for term in terms) + ")"
        for space_id in space_ids)


def _ranked(session: Session, terms: list[str], space_ids: list[int], author_type: str | None,
            limit: int, offset: int, has_professional_answer: bool = False, window: int = 0) -> list[tuple]:
    """The page's rows, best first: of the ``window`` most recently indexed matches (written or edited)
    when it is not 0, else of them all."""
    by_author = ""
    params: dict = {"limit": limit, "offset": offset}
    roles = AUTHOR_TYPES.get(author_type) if author_type else None
    if roles is not None:
        by_author = "AND d.author_id IN (SELECT id FROM user_account WHERE role IN :roles)"
        params["roles"] = [role.value for role in roles]
    if author_type == "member":
        by_author += f" AND d.author_id NOT IN ({VERIFIED})"
    elif author_type == "professional":
        by_author = f"AND d.author_id IN ({VERIFIED})"
    if has_professional_answer:
        by_author += f" AND d.kind = 'post' AND d.object_id IN ({PROFESSIONAL_ANSWERED})"
    if session.get_bind().dialect.name == "postgresql":
        # The words as the index stemmed them, each joined to each of the searcher's spaces:
        # ('s83_knee' & 's83_pain') | ('s39_knee' & ...), as search.models.space_words indexed them.
        # "id + 0": the matches come from the GIN index, never from walking the primary key backwards
        # and testing every row (what a prepared statement's generic plan chose for a rare word: 1 s).
        sql = text(f"""
            WITH spaced AS (
                SELECT string_agg('(' || words.conjunction || ')', ' | ')::tsquery AS query
                FROM unnest(CAST(:spaces AS integer[])) space_id,
                     LATERAL (SELECT string_agg(quote_literal('s' || space_id || '_' || lexeme), ' & ') AS conjunction
                              FROM unnest(to_tsvector('{TEXT_SEARCH_CONFIG}', :words))) words)
            SELECT d.kind, d.object_id, d.space_id, d.author_id, d.created_at, d.body
            FROM (SELECT d.* FROM search_document d
                  WHERE d.space_words @@ (SELECT query FROM spaced) {by_author}
                  ORDER BY d.id + 0 DESC LIMIT :window) d, plainto_tsquery('{TEXT_SEARCH_CONFIG}', :words) query
            ORDER BY ts_rank(d.tsv, query) DESC, d.created_at DESC, d.id DESC
            LIMIT :limit OFFSET :offset""")
        params.update(words=" ".join(terms), spaces=space_ids, window=window or None)
    else:
        # Score the matches in the index alone, at most the ``window`` most recently indexed ones,
        # keep those scoring at least as well as the last one asked for (ties included), and read
        # only their documents. With an author filter the documents are read to filter them first.
        filtered = f"JOIN search_document d ON d.id = search_fts.rowid WHERE search_fts MATCH :match {by_author}" \
            if by_author else "WHERE search_fts MATCH :match"
        sql = text(f"""
            WITH ranked AS MATERIALIZED (
                SELECT search_fts.rowid AS id, bm25(search_fts) AS score FROM search_fts {filtered}
                ORDER BY search_fts.rowid DESC LIMIT :window)
            SELECT d.kind, d.object_id, d.space_id, d.author_id, d.created_at, d.body
            FROM ranked JOIN search_document d ON d.id = ranked.id
            WHERE ranked.score <= coalesce((SELECT score FROM ranked ORDER BY score LIMIT 1 OFFSET :last), 1e308)
            ORDER BY ranked.score, d.created_at DESC, d.id DESC
            LIMIT :limit OFFSET :offset""")
        params.update(match=_sqlite_match(terms, space_ids), last=limit + offset - 1, window=window or -1)
    sql = sql.bindparams(*[bindparam(name, expanding=True) for name in ("roles",) if name in params])
    return list(session.execute(sql, params))


def search(session: Session, user: User, q: str | None, *, space_id: int | None = None,
           author_type: str | None = None, has_professional_answer: bool = False, limit: int = 20,
           cursor: str | None = None) -> Results:
    """``author_type``: member (participants who are not verified professionals), staff, or professional
    (verified now); ``has_professional_answer``: only questions a verified professional answered."""
    terms = terms_of(q)
    offset = offset_of(cursor)
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"The limit is between 1 and {MAX_LIMIT}.", field="limit")
    if author_type and author_type not in AUTHOR_TYPES:
        raise InvalidInput(f"The author type is one of: {', '.join(AUTHOR_TYPES)}.", field="author_type")
    accesses = searchable_accesses(session, user)
    spaces = list(accesses)
    if space_id is not None:
        if space_id not in accesses:
            raise NotFound("No circle with that id.", field="space_id")
        spaces = [space_id]
    if not spaces:
        return Results(q or "", terms, [], None)
    window = get_settings().search_rank_window
    rows = _ranked(session, terms, spaces, author_type or None, limit + 1, offset,
                   has_professional_answer=has_professional_answer, window=window)
    more = len(rows) > limit and not (window and offset + limit >= window)  # the pages end with the window
    rows = rows[:limit]
    hits = _hits(session, accesses, terms, rows, filtered_by_author=bool(author_type))
    return Results(q or "", terms, hits, str(offset + limit) if more else None)


def _hits(session: Session, accesses: dict[int, CircleAccess], terms: list[str], rows: list[tuple], *,
          filtered_by_author: bool = False) -> list[Hit]:
    """The rows as results, each checked once more against the object itself (still searchable), with
    its author shown as the space shows them to this person: a community name in an open community,
    "Anonymous member" for an anonymous post (whose author's role no filter may reveal either)."""
    from peerlift.community.queries import shown_person
    from peerlift.professionals.service import people_with_labels

    openings: dict[tuple[str, int], Opening] = {}
    for name, kind in KINDS.items():
        ids = [row[1] for row in rows if row[0] == name]
        if ids:
            openings.update(((name, object_id), opening) for object_id, opening in kind.openings(session, ids).items())
    authors = people_with_labels(session, {row[3] for row in rows})
    hits = []
    for kind, object_id, space_id, author_id, created_at, body in rows:
        opening = openings.get((kind, object_id))
        if opening is None or author_id not in authors:
            continue
        author, profession = authors[author_id]
        access = accesses[space_id]
        shown = shown_person(access, author, anonymous=opening.anonymous, professional=profession)
        concealed = opening.anonymous and shown.id != author_id
        if filtered_by_author and concealed:
            continue  # an anonymous author is never picked out by their role
        author_type = ("member" if concealed or (author.role == Role.participant and not shown.professional)
                       else "professional" if shown.professional else "staff")
        hits.append(Hit(kind=kind, id=object_id, url=opening.url, space_id=space_id, space_name=access.space.name,
                        author_id=shown.id, author_name=shown.display_name, author_type=author_type,
                        created_at=created_at if isinstance(created_at, dt.datetime) else _parse(created_at),
                        snippet_html=snippet(body, terms), author_professional=shown.professional))
    return hits


def _parse(value) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


_SUFFIXES = ("ing", "ed", "es", "s", "ly")


def _stem(term: str) -> str:
    for suffix in _SUFFIXES:
        if term.endswith(suffix) and len(term) - len(suffix) >= 3:
            return term[: -len(suffix)]
    return term


@lru_cache(maxsize=256)
def _matching_words(terms: tuple[str, ...]) -> re.Pattern | None:
    """Words starting with the stem of any of ``terms``, whatever their case."""
    stems = sorted({_stem(term) for term in terms if term}, key=len, reverse=True)
    if not stems:
        return None
    return re.compile(r"\b(?:" + "|".join(map(re.escape, stems)) + r")\w*", re.IGNORECASE | re.UNICODE)


def snippet(body: str, terms: list[str], width: int = SNIPPET_CHARS) -> Markup:
    """A passage of ``body`` around the first matching word, escaped, the matching words in ``<mark>``."""
    pattern = _matching_words(tuple(terms))
    matches = list(pattern.finditer(body)) if pattern is not None else []
    start = 0
    if matches and matches[0].start() > width // 3:
        start = body.rfind(" ", 0, matches[0].start() - width // 3) + 1
    end = min(len(body), start + width)
    if end < len(body):
        space = body.rfind(" ", start, end)
        end = space if space > start else end
    out = [Markup("…")] if start > 0 else []
    position = start
    for m in matches:
        if m.start() < start or m.end() > end:
            continue
        out.append(escape(body[position:m.start()]))
        out.append(Markup("<mark>") + escape(m.group()) + Markup("</mark>"))
        position = m.end()
    out.append(escape(body[position:end]))
    if end < len(body):
        out.append(Markup("…"))
    return Markup("").join(out)
