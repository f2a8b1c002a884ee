"""HTML routes of studies: the researcher's pages, and a participant's way in (invitation link,
screening, consent, randomisation) and out (withdrawal)."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse
from sqlalchemy import select

from peerlift.errors import Forbidden, NotFound, PeerliftError
from peerlift.identity.models import User
from peerlift.policy import CAN_CREATE_STUDY_ROLES, enrolment_access, is_study_researcher, study_access
from peerlift.research import queries, service
from peerlift.research.models import EnrolmentStatus, Study
from peerlift.settings import get_settings
from peerlift.web.deps import DB, CurrentUser, OptionalUser, client_ip
from peerlift.web.templating import TEMPLATES, page

router = APIRouter(include_in_schema=False)


# --- researchers ------------------------------------------------------------------------------------

@router.get("/studies")
def studies(request: Request, db: DB, user: CurrentUser):
    return page(request, "studies.html", {"studies": queries.studies_for(db, user),
                                          "can_create": user.role in CAN_CREATE_STUDY_ROLES})


@router.get("/studies/new")
def new_study_form(request: Request, user: CurrentUser):
    if user.role not in CAN_CREATE_STUDY_ROLES:
        raise Forbidden("Only researchers and admins create studies.")
    return page(request, "study_new.html", {"form": {}})


@router.post("/studies/new")
def create_study(request: Request, db: DB, user: CurrentUser,
                 title: Annotated[str, Form(max_length=1000)] = "",
                 slug: Annotated[str, Form(max_length=200)] = "",
                 registry_id: Annotated[str, Form(max_length=200)] = "",
                 ethics_ref: Annotated[str, Form(max_length=500)] = "",
                 description: Annotated[str, Form(max_length=10_000)] = "",
                 target_size: Annotated[str, Form(max_length=12)] = "0",
                 researcher_email: Annotated[str, Form(max_length=254)] = ""):
    form = {"title": title, "slug": slug, "registry_id": registry_id, "ethics_ref": ethics_ref,
            "description": description, "target_size": target_size, "researcher_email": researcher_email}
    try:
        try:
            size = int(target_size or 0)
        except ValueError:
            from peerlift.errors import InvalidInput

            raise InvalidInput("The target size is a whole number.", field="target_size")
        researchers = []
        if researcher_email.strip():
            person = db.scalar(select(User).where(User.email == researcher_email.strip().lower()))
            if person is None:
                from peerlift.errors import InvalidInput

                raise InvalidInput("No account with that email address.", field="researchers")
            researchers.append(person)
        study = service.create_study(db, user, title=title, slug=slug, registry_id=registry_id,
                                     ethics_ref=ethics_ref, description=description, target_size=size,
                                     researchers=researchers)
    except PeerliftError as exc:
        if isinstance(exc, Forbidden):
            raise
        db.rollback()
        return page(request, "study_new.html", {"error": exc.message, "field": exc.field, "form": form},
                    status_code=exc.status_code)
    return RedirectResponse(f"/studies/{study.id}", status_code=303)


def _study_page(request: Request, db, user, study: Study, *, error: str | None = None, field: str | None = None,
                status: int = 200, invitation_url: str | None = None, forms: dict | None = None):
    view = queries.study_view(db, study)
    return page(request, "study.html", {
        "study": study, "view": view, "error": error, "field": field, "invitation_url": invitation_url,
        "is_researcher": is_study_researcher(db, user, study), "forms": forms or {},
        "rule_text": service.withdrawal_rule_text(view.design["withdrawal_rule"]),
        "deletion_rule": service.deletion_rule, "deletion_rules": service.DELETION_RULES,
        "default_deletion_rule": get_settings().deletion_in_study,
        "design_json": json.dumps({"eligibility": view.design["eligibility"]}, indent=2),
    }, status_code=status)


@router.get("/studies/{study_id}")
def study_page(request: Request, study_id: int, db: DB, user: CurrentUser):
    return _study_page(request, db, user, study_access(db, user, study_id))


def _act(request: Request, db, user, study_id: int, action, forms: dict | None = None):
    study = study_access(db, user, study_id)
    try:
        result = action(study)
    except PeerliftError as exc:
        if isinstance(exc, (Forbidden, NotFound)):
            raise
        db.rollback()
        study = study_access(db, user, study_id)
        return _study_page(request, db, user, study, error=exc.message, field=exc.field, status=exc.status_code,
                           forms=forms)
    if isinstance(result, str):
        return _study_page(request, db, user, study, invitation_url=result)
    return RedirectResponse(f"/studies/{study_id}", status_code=303)


@router.post("/studies/{study_id}/arms")
def add_arm(request: Request, study_id: int, db: DB, user: CurrentUser,
            slug: Annotated[str, Form(max_length=200)] = "", name: Annotated[str, Form(max_length=500)] = "",
            description: Annotated[str, Form(max_length=5000)] = ""):
    return _act(request, db, user, study_id,
                lambda study: service.add_arm(db, user, study, slug=slug, name=name, description=description),
                {"arm": {"slug": slug, "name": name, "description": description}})


@router.post("/studies/{study_id}/team")
def add_team_member(request: Request, study_id: int, db: DB, user: CurrentUser,
                    email: Annotated[str, Form(max_length=254)] = "", role: Annotated[str, Form(max_length=32)] = ""):
    person = db.scalar(select(User).where(User.email == email.strip().lower()))
    return _act(request, db, user, study_id,
                lambda study: service.add_team_member(db, user, study, person, role),
                {"team": {"email": email, "role": role}})


def _ints(text: str, field: str) -> list[int]:
    from peerlift.errors import InvalidInput

    try:
        return [int(p) for p in text.replace(",", " ").split()]
    except ValueError:
        raise InvalidInput("Write whole numbers separated by commas.", field=field)


@router.post("/studies/{study_id}/design")
def set_design(request: Request, study_id: int, db: DB, user: CurrentUser,
               scheme: Annotated[str, Form(max_length=32)] = "",
               block_sizes: Annotated[str, Form(max_length=200)] = "",
               factors: Annotated[str, Form(max_length=500)] = "",
               eligibility: Annotated[str, Form(max_length=50_000)] = "[]",
               withdrawal_rule: Annotated[str, Form(max_length=32)] = "keep"):
    def action(study):
        from peerlift.errors import InvalidInput

        try:
            questions = json.loads(eligibility or "[]")
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"The screening questions are not valid JSON (line {exc.lineno}).",
                               field="eligibility")
        keys = [k for k in factors.replace(",", " ").split()]
        return service.set_design(db, user, study, scheme=scheme, block_sizes=_ints(block_sizes, "block_sizes"),
                                  factors=[{"key": k} for k in keys] or None, eligibility=questions,
                                  withdrawal_rule=withdrawal_rule)

    return _act(request, db, user, study_id, action, {"design": {
        "scheme": scheme, "block_sizes": block_sizes, "factors": factors, "eligibility": eligibility,
        "withdrawal_rule": withdrawal_rule}})


@router.post("/studies/{study_id}/consent-documents")
def add_consent_document(request: Request, study_id: int, db: DB, user: CurrentUser,
                         version: Annotated[str, Form(max_length=64)] = "",
                         title: Annotated[str, Form(max_length=500)] = "",
                         sections: Annotated[str, Form(max_length=100_000)] = "",
                         on_account_deletion: Annotated[str, Form(max_length=32)] = ""):
    """Sections are written as blocks separated by a blank line: the first line is the heading."""
    def action(study):
        blocks = [b.strip() for b in sections.replace("\r\n", "\n").split("\n\n") if b.strip()]
        parsed = []
        for n, block in enumerate(blocks, start=1):
            heading, _, text = block.partition("\n")
            parsed.append({"key": f"s{n}", "heading": heading.strip(), "text": text.strip()})
        return service.add_consent_document(db, user, study, version=version, title=title, sections=parsed,
                                            on_account_deletion=on_account_deletion or None)

    return _act(request, db, user, study_id, action,
                {"document": {"version": version, "title": title, "sections": sections,
                              "on_account_deletion": on_account_deletion}})


@router.post("/studies/{study_id}/invitations")
def create_invitation(request: Request, study_id: int, db: DB, user: CurrentUser,
                      days_valid: Annotated[str, Form(max_length=6)] = "30",
                      max_uses: Annotated[str, Form(max_length=6)] = "100"):
    def action(study):
        days = _ints(days_valid, "days_valid")
        uses = _ints(max_uses, "max_uses")
        token, _inv = service.create_invitation(db, user, study, days_valid=days[0] if days else 0,
                                                max_uses=uses[0] if uses else 0)
        return f"{get_settings().base_url.rstrip('/')}/study/{token}"

    return _act(request, db, user, study_id, action)


# --- a participant's way in -----------------------------------------------------------------------

@router.get("/study/{token}")
def invitation(request: Request, token: str, db: DB, user: OptionalUser):
    found = service.find_invitation(db, token)
    study = db.get(Study, found.study_id)
    from peerlift.identity.pages import TIMEZONES

    return page(request, "study_join.html", {"token": token, "study": study, "timezones": TIMEZONES,
                                             "form": {"timezone": get_settings().default_timezone}})


@router.post("/study/{token}")
def begin(request: Request, token: str, db: DB, user: CurrentUser):
    try:
        enrolment = service.start_enrolment(db, user, token, ip=client_ip(request))
    except service.AlreadyEnrolled:
        db.rollback()
        found = service.find_invitation(db, token)
        mine = dict((s.id, e) for e, s in queries.enrolments_of(db, user)).get(found.study_id)
        return RedirectResponse(f"/enrolments/{mine.id}", status_code=303)
    return RedirectResponse(f"/enrolments/{enrolment.id}", status_code=303)


@router.post("/study/{token}/signup")
def sign_up(request: Request, token: str, db: DB,
            email: Annotated[str, Form(max_length=254)] = "",
            password: Annotated[str, Form(max_length=256)] = "",
            display_name: Annotated[str, Form(max_length=200)] = "",
            pronouns: Annotated[str, Form(max_length=40)] = "",
            timezone: Annotated[str, Form(max_length=64)] = ""):
    from peerlift.identity.pages import TIMEZONES, _signed_in

    try:
        user, enrolment = service.sign_up_for_study(db, token=token, email=email, password=password,
                                                    display_name=display_name, timezone=timezone,
                                                    pronouns=pronouns, ip=client_ip(request))
    except PeerliftError as exc:
        db.rollback()
        found = service.find_invitation(db, token)
        return page(request, "study_join.html", {
            "token": token, "study": db.get(Study, found.study_id), "timezones": TIMEZONES,
            "error": exc.message, "field": exc.field,
            "form": {"email": email, "display_name": display_name, "pronouns": pronouns, "timezone": timezone},
        }, status_code=exc.status_code)
    return _signed_in(request, db, user, f"/enrolments/{enrolment.id}")


def _enrolment_page(request: Request, db, user, enrolment, *, error: str | None = None, field: str | None = None,
                    status: int = 200, form: dict | None = None):
    study = db.get(Study, enrolment.study_id)
    design = service.design_of(db, study)
    document = service.current_consent_document(db, study)
    return page(request, "enrolment.html", {
        "study": study, "enrolment": enrolment, "questions": design.eligibility,
        "document": document, "error": error, "field": field,
        "form": form or {}, "rule_text": service.withdrawal_rule_text(design.withdrawal_rule),
        "deletion_text": service.deletion_rule_text(service.deletion_rule(document)),
        "S": EnrolmentStatus,
    }, status_code=status)


@router.get("/enrolments/{enrolment_id}")
def enrolment_page(request: Request, enrolment_id: int, db: DB, user: CurrentUser):
    return _enrolment_page(request, db, user, enrolment_access(db, user, enrolment_id))


@router.post("/enrolments/{enrolment_id}/randomise")
def randomise(request: Request, enrolment_id: int, db: DB, user: CurrentUser):
    """Consented but not yet placed (say no circle was open then): try again."""
    enrolment = enrolment_access(db, user, enrolment_id)
    try:
        service.randomise(db, user, enrolment)
    except PeerliftError as exc:
        db.rollback()
        return _enrolment_page(request, db, user, enrolment_access(db, user, enrolment_id), error=exc.message,
                               status=exc.status_code)
    return RedirectResponse(f"/circles/{enrolment.space_id}", status_code=303)


@router.post("/enrolments/{enrolment_id}/screening")
async def screen(request: Request, enrolment_id: int, db: DB, user: CurrentUser):
    form = await request.form()
    answers = {k[2:]: v for k, v in form.items() if k.startswith("q_") and isinstance(v, str)}
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(_screen, request, enrolment_id, db, user, answers)


def _screen(request, enrolment_id, db, user, answers):
    enrolment = enrolment_access(db, user, enrolment_id)
    study = db.get(Study, enrolment.study_id)
    # Questions left unanswered arrive as missing keys: the service names the first one.
    for q in service.design_of(db, study).eligibility:
        answers.setdefault(q["key"], None)
    try:
        service.screen(db, user, enrolment, answers)
    except PeerliftError as exc:
        db.rollback()
        return _enrolment_page(request, db, user, enrolment_access(db, user, enrolment_id), error=exc.message,
                               field=exc.field, status=exc.status_code, form={"answers": answers})
    return RedirectResponse(f"/enrolments/{enrolment_id}", status_code=303)


@router.post("/enrolments/{enrolment_id}/consent")
async def consent(request: Request, enrolment_id: int, db: DB, user: CurrentUser):
    form = await request.form()
    sections = [v for v in form.getlist("section") if isinstance(v, str)]
    typed_name = form.get("typed_name") if isinstance(form.get("typed_name"), str) else ""
    version = form.get("document_version") if isinstance(form.get("document_version"), str) else None
    declined = form.get("decision") == "decline"
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(_consent, request, enrolment_id, db, user, sections, typed_name[:300],
                                   (version or None), declined)


def _consent(request, enrolment_id, db, user, sections, typed_name, version, declined):
    enrolment = enrolment_access(db, user, enrolment_id)
    try:
        if declined:
            service.decline(db, user, enrolment)
        else:
            service.consent(db, user, enrolment, sections=sections, typed_name=typed_name,
                            document_version=version, ip=client_ip(request))
            try:
                with db.begin_nested():
                    service.randomise(db, user, enrolment)
            except PeerliftError as exc:
                # the consent stands; placing the person waits (the page offers to try again)
                db.expire(enrolment)
                return _enrolment_page(request, db, user, enrolment, error=exc.message, status=exc.status_code)
    except PeerliftError as exc:
        db.rollback()
        return _enrolment_page(request, db, user, enrolment_access(db, user, enrolment_id), error=exc.message,
                               field=exc.field, status=exc.status_code,
                               form={"sections": sections, "typed_name": typed_name})
    if enrolment.status == EnrolmentStatus.randomised:
        return RedirectResponse(f"/circles/{enrolment.space_id}", status_code=303)
    return RedirectResponse(f"/enrolments/{enrolment_id}", status_code=303)


def _signed(db, user, enrolment_id: int):
    enrolment = enrolment_access(db, user, enrolment_id)
    signed = queries.consent_of(db, enrolment)
    if signed is None:
        raise NotFound("You have not signed a consent for this study.", field="enrolment_id")
    return db.get(Study, enrolment.study_id), signed[0], signed[1]


@router.get("/enrolments/{enrolment_id}/consent.txt")
def consent_text(enrolment_id: int, db: DB, user: CurrentUser):
    study, signed, document = _signed(db, user, enrolment_id)
    return PlainTextResponse(queries.consent_text(study, signed, document, user), headers={
        "Content-Disposition": f'attachment; filename="consent-{study.slug}-{document.version}.txt"'})


@router.get("/enrolments/{enrolment_id}/consent.html")
def consent_html(request: Request, enrolment_id: int, db: DB, user: CurrentUser):
    study, signed, document = _signed(db, user, enrolment_id)
    html = TEMPLATES.get_template("consent_copy.html").render(
        study=study, consent=signed, document=document, person=user,
        deletion_text=service.deletion_rule_text(service.deletion_rule(document)))
    return HTMLResponse(html, headers={
        "Content-Disposition": f'attachment; filename="consent-{study.slug}-{document.version}.html"'})


# --- and out ---------------------------------------------------------------------------------------

@router.get("/enrolments/{enrolment_id}/withdraw")
def withdraw_form(request: Request, enrolment_id: int, db: DB, user: CurrentUser):
    enrolment = enrolment_access(db, user, enrolment_id)
    return _withdraw_page(request, db, enrolment)


def _withdraw_page(request, db, enrolment, *, error=None, status=200, reason=""):
    study = db.get(Study, enrolment.study_id)
    rule = service.design_of(db, study).withdrawal_rule
    return page(request, "withdraw.html", {"study": study, "enrolment": enrolment, "rule": rule,
                                           "rule_text": service.withdrawal_rule_text(rule), "error": error,
                                           "reason": reason, "S": EnrolmentStatus}, status_code=status)


@router.post("/enrolments/{enrolment_id}/withdraw")
def withdraw(request: Request, enrolment_id: int, db: DB, user: CurrentUser,
             reason: Annotated[str, Form(max_length=2000)] = "", confirm: Annotated[bool, Form()] = False):
    enrolment = enrolment_access(db, user, enrolment_id)
    try:
        service.withdraw(db, user, enrolment, reason=reason, confirm=confirm)
    except PeerliftError as exc:
        db.rollback()
        return _withdraw_page(request, db, enrolment_access(db, user, enrolment_id), error=exc.message,
                              status=exc.status_code, reason=reason)
    return RedirectResponse("/profile?withdrawn=1", status_code=303)


def my_studies(db, user) -> list[dict]:
    """What the profile page lists of a person's studies."""
    return [{"enrolment": e, "study": s, "active": e.status in service.WITHDRAWABLE,
             "consented": e.consented_at is not None}
            for e, s in queries.enrolments_of(db, user)]
