"""The case page's documents (案件材料): the list, the upload form, downloads and withdrawals.

Everything goes through what the API uses: the list is `DocumentService.of_case` (what the API
lists to the same caller), an upload is the API's upload with its fields (`UploadFields`), a
download is the API's download with its headers, a withdrawal the API's. No rule lives here; the
page only leaves out what the service would refuse (the upload form to a role that may not change
the case, the withdraw form to one that did not hand the document in, the download link of an
identity document to a role without `pii:read`).
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from mediation.core.db import session_of
from mediation.core.errors import NotFound, ProblemError, ValidationFailed
from mediation.core.i18n import Text
from mediation.core.principal import Permission, Principal
from mediation.disputes.models import Dispute
from mediation.disputes.router import service
from mediation.disputes.service import DisputeService
from mediation.disputes.views import Viewer
from mediation.documents.router import (
    UploadFields,
    WithdrawIn,
    add_document,
    check_scope,
    document_content,
    upload_content,
    withdraw,
)
from mediation.documents.service import DocumentKind, DocumentService, may_read_content, takes_documents
from mediation.identity.auth import require
from mediation.web import cases
from mediation.web.forms import (
    FormField,
    Option,
    describe,
    errors_of,
    form_data,
    name_fields,
    read_form,
    run_once,
    with_stray_on_top,
)
from mediation.web.labels import ENUM_LABELS
from mediation.web.rendering import WebRoute, render, secure_page, see_other
from mediation.web.session import check_csrf, staff

router = APIRouter(route_class=WebRoute, include_in_schema=False)

Staff = Annotated[Principal, Depends(staff)]
Service = Annotated[DisputeService, Depends(service)]

UPLOAD_FORM = "upload_document"
WITHDRAW_FORM = "withdraw_document:"
# The fields a page's upload form sends: those of the API's form, its one-time key and the token.
UPLOAD_FIELDS_MAX = 10

DONE_MESSAGES = {
    "document_added": "已上传材料",
    "document_withdrawn": "已撤回材料",
}


def upload_fields(parties: list[Option]) -> list[FormField]:
    """The API's upload form beside its file: the kind (named in Chinese), the party who handed the
    document in (any of the case's), a note."""
    kinds = [Option(k.value, ENUM_LABELS["document_kind"][k.value]) for k in DocumentKind]
    fields = []
    for f in describe(UploadFields, {"party_id": parties}):
        if f.name == "kind":
            f = replace(f, label="材料类型", options=kinds)
        elif f.name == "party_id":
            f = replace(f, label="提交材料的当事人 (当事人当面提交的填写)")
        fields.append(f)
    return fields


def withdraw_fields() -> list[FormField]:
    return [replace(f, label="撤回理由") if f.name == "reason" else f for f in describe(WithdrawIn)]


def size_text(size: int) -> str:
    if size < 1024:
        return f"{size} 字节"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size / (1024 * 1024):.1f} MB"


async def section(
    request: Request, svc: DisputeService, principal: Principal, dispute: Dispute, view: Viewer
) -> dict[str, Any]:
    """The case page's keys for its 案件材料 card. `view`: the page's, so a note read unmasked is
    counted with the page's other reads of the case's personal data."""
    documents = _documents(svc)
    parties = {p.id: p.name for p in dispute.parties}
    # An archived case's file is closed: the service takes no upload or withdrawal on it.
    may_change = principal.can(Permission.cases_write) and takes_documents(dispute)
    rows = []
    for d in await documents.of_case(dispute, principal):
        submitter = ENUM_LABELS["staff_role"].get(d.submitted_role, d.submitted_role)
        if d.submitted_by_party_id is not None:
            party = parties.get(d.submitted_by_party_id, "")
            submitter = f"当事人{party}提交, {submitter}经办"
        rows.append(
            {
                "id": d.id,
                "kind": d.kind,
                "name": view.text(dispute.id, d.original_name),
                "size": size_text(d.size),
                "submitter": submitter,
                "created_at": d.created_at,
                "status": d.status,
                "withdrawn_reason": view.text(dispute.id, d.withdrawn_reason),
                "withdrawn_at": d.withdrawn_at,
                "late": d.late,
                "generated": d.generated,
                "note": view.text(dispute.id, d.note),
                "href": f"/cases/{dispute.id}/documents/{d.id}/content"
                if may_read_content(d, principal)
                else None,
                # Offered where the service would take it: an active document, from whoever handed it
                # in or the center's staff (the service's own rule, asked of it).
                "can_withdraw": may_change and d.status == "active" and documents.may_withdraw(d, principal),
            }
        )
    return {
        "case_documents": rows,
        # The API takes a document from any role that may change the case, at any stage of it but
        # the last (archived).
        "can_upload": may_change,
        "file_closed": not takes_documents(dispute),
        "upload_fields": upload_fields([Option(str(p.id), p.name) for p in dispute.parties])
        if may_change
        else [],
        "withdraw_fields": withdraw_fields(),
        "document_max_bytes": size_text(svc.settings.document_max_bytes),
    }


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _documents(svc: DisputeService) -> DocumentService:
    assert svc.documents is not None  # the pages' service is built with its documents
    return svc.documents


def _document_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise NotFound(Text("文件不存在", "No such document")) from exc


async def _refused(
    request: Request,
    svc: DisputeService,
    principal: Principal,
    case_id: uuid.UUID,
    failed: str,
    exc: ValidationError | ProblemError,
    values: dict[str, Any],
    shown: list[FormField],
    at: str,
) -> HTMLResponse:
    """The case page again, the refusal beside the form that caused it: at its field when the
    refusal names one the form shows, else at `at` (the file, for a refusal of the file itself: too
    large, a type not accepted), nothing stored."""
    await session_of(request).rollback()
    errors = errors_of(exc)
    if isinstance(exc, ProblemError) and not any(name != "_form" for name in errors):
        body = exc.body()
        errors = {at: name_fields(str(body.get("detail") or body["title"]))}
    errors = with_stray_on_top(errors, {f.name for f in shown} | {"file"})
    context = await cases.CasePage(
        request, svc, principal, reveal=cases.shows_numbers(await request.form())
    ).context(case_id, failed_action=failed, errors=errors, values=values)
    status = exc.http_status if isinstance(exc, ProblemError) else 422
    return render(request, "case.html", context, status)


@router.post("/cases/{dispute_id}/documents", response_class=HTMLResponse)
async def upload_document(request: Request, dispute_id: str, principal: Staff, svc: Service) -> Response:
    """上传材料: the API's upload, from the case page's form (multipart, streamed to the store as
    the API's is, never held in memory)."""
    case_id = cases.parse_id(dispute_id)
    # Who may add to the case is settled before the body is read, as in the API.
    await check_scope(request, svc, case_id, principal)
    async with request.form(max_files=1, max_fields=UPLOAD_FIELDS_MAX) as form:
        check_csrf(request, _text(form.get("csrf")))
        shown = upload_fields([])
        values: dict[str, Any] = {}
        try:
            values = form_data(form, shown)
            require(principal, Permission.cases_write)
            upload = form.get("file")
            # A form sent with no file chosen carries an empty part without a name.
            if not isinstance(upload, UploadFile) or not upload.filename:
                raise ValidationFailed.of_field(
                    "file", "missing", Text("请选择要上传的文件", "Choose the file to upload")
                )
            fields = UploadFields.model_validate(values)
            chosen: UploadFile = upload

            async def work() -> JSONResponse:
                document, _ = await add_document(
                    request, principal, svc, _documents(svc), case_id, chosen, fields
                )
                return JSONResponse({"document_id": str(document.id)})

            # The same form sent again (its one-time key) with the same file stores it once.
            await run_once(
                request,
                principal,
                _text(form.get("idempotency_key")),
                work,
                content=await upload_content(chosen, fields),
            )
        except (ValidationError, ProblemError) as exc:
            if isinstance(exc, NotFound):
                raise
            return await _refused(request, svc, principal, case_id, UPLOAD_FORM, exc, values, shown, "file")
    return see_other(f"/cases/{case_id}?done=document_added#documents")


@router.get("/cases/{dispute_id}/documents/{document_id}/content")
async def download_document(
    request: Request, dispute_id: str, document_id: str, principal: Staff, svc: Service
) -> Response:
    """下载材料: the API's download (the same scope, audit, name, type, nosniff and Range), for a
    signed-in member of staff. Kept out of every cache, as the API's answers are."""
    response = await document_content(
        request,
        principal,
        cases.viewer_for(request, principal),
        svc,
        _documents(svc),
        cases.parse_id(dispute_id),
        _document_id(document_id),
    )
    secure_page(response)
    return response


@router.post("/cases/{dispute_id}/documents/{document_id}/withdraw", response_class=HTMLResponse)
async def withdraw_document(
    request: Request, dispute_id: str, document_id: str, principal: Staff, svc: Service
) -> Response:
    """撤回材料: the document is kept with the reason; only who handed it in, or the center's staff.
    The form carries the case's version the page showed, as the API's If-Match: a page read before
    another change to the case is refused (412) and shown again as the case is now."""
    case_id, doc_id = cases.parse_id(dispute_id), _document_id(document_id)
    form = await read_form(request)
    check_csrf(request, _text(form.get("csrf")))
    shown = withdraw_fields()
    values: dict[str, Any] = {}
    try:
        values = form_data(form, shown)
        require(principal, Permission.cases_write)
        reason = WithdrawIn.model_validate(values).reason
        version = _text(form.get("version"))

        async def work() -> JSONResponse:
            await withdraw(request, principal, svc, _documents(svc), case_id, doc_id, reason, version)
            return JSONResponse({"done": True})

        # A double click, or the browser sending the form again, withdraws once.
        await run_once(request, principal, _text(form.get("idempotency_key")), work)
    except (ValidationError, ProblemError) as exc:
        if isinstance(exc, NotFound):
            raise
        failed = f"{WITHDRAW_FORM}{doc_id}"
        return await _refused(request, svc, principal, case_id, failed, exc, values, shown, "_form")
    return see_other(f"/cases/{case_id}?done=document_withdrawn#documents")
