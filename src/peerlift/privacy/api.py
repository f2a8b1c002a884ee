"""JSON routes of a person's data rights: download everything, and delete the account."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse

from peerlift.errors import responses
from peerlift.policy import account_for_deletion
from peerlift.privacy import deletion, export
from peerlift.privacy.schemas import AdminDeletionIn, DeletionIn, DeletionOut, DeletionPlanOut
from peerlift.web.deps import DB, CurrentUser, client_ip
from peerlift.web.session_cookie import clear_session_cookie

router = APIRouter(prefix="/api/v1", tags=["privacy"])

ZIP = {200: {"description": "A zip: peerlift-data.json with everything, README.txt and one CSV per kind",
             "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}}}}


class ZipResponse(StreamingResponse):
    media_type = "application/zip"


def download(request: Request, db, user) -> StreamingResponse:
    """The person's data as a zip, streamed from memory; the download is audited."""
    buffer = export.build(db, user)
    export.record_download(user.id, client_ip(request), buffer.getbuffer().nbytes)
    return ZipResponse(export.chunks(buffer), headers={
        "Content-Disposition": f'attachment; filename="{export.filename(user)}"', "Cache-Control": "no-store"})


@router.get("/me/export", response_class=ZipResponse, responses={**ZIP, **responses(401)})
def export_my_data(request: Request, db: DB, user: CurrentUser):
    """Everything peerlift holds about you that is yours to see, as JSON and CSV files in a zip."""
    return download(request, db, user)


@router.get("/me/deletion", response_model=DeletionPlanOut, responses=responses(401))
def my_deletion_plan(db: DB, user: CurrentUser) -> DeletionPlanOut:
    """What deleting your account would do, study by study, before you confirm."""
    return DeletionPlanOut.of(deletion.plan(db, user))


@router.post("/me/deletion", response_model=DeletionOut, responses=responses(401, 403, 409, 422, 429))
def delete_my_account(body: DeletionIn, request: Request, response: Response, db: DB,
                      user: CurrentUser) -> DeletionOut:
    """Delete your account (your password again, and ``confirm``); you are signed out everywhere."""
    removed = deletion.delete_account(db, user, user, password=body.password, confirm=body.confirm,
                                      ip=client_ip(request))
    clear_session_cookie(response)
    return DeletionOut(user_id=user.id, deleted_at=user.deleted_at, removed=removed)


@router.get("/users/{user_id}/deletion", response_model=DeletionPlanOut, responses=responses(401, 403, 404))
def deletion_plan(user_id: int, db: DB, user: CurrentUser) -> DeletionPlanOut:
    """Admins: what deleting this account would do."""
    return DeletionPlanOut.of(deletion.plan(db, account_for_deletion(db, user, user_id)))


@router.post("/users/{user_id}/deletion", response_model=DeletionOut,
             responses=responses(401, 403, 404, 409, 422, 429))
def delete_account(user_id: int, body: AdminDeletionIn, request: Request, db: DB, user: CurrentUser) -> DeletionOut:
    """Admins: delete an account on the person's request (the admin's own password, and a reason)."""
    target = account_for_deletion(db, user, user_id)
    removed = deletion.delete_account(db, user, target, password=body.password, confirm=body.confirm,
                                      reason=body.reason, ip=client_ip(request))
    return DeletionOut(user_id=target.id, deleted_at=target.deleted_at, removed=removed)
