"""Documents of a case and the dossier of its handoff, under /v1/disputes/{id}."""

import asyncio
import functools
import hashlib
import json
import re
import uuid
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, BinaryIO
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import UploadFile as StarletteUploadFile

from mediation.core.db import UnitOfWorkRoute, session_of
from mediation.core.errors import (
    Conflict,
    Forbidden,
    IdempotencyInProgress,
    IdempotencyKeyMismatch,
    NotFound,
    PayloadTooLarge,
    PreconditionRequired,
    RangeNotSatisfiable,
    RequestBodyTimeout,
    StaleVersion,
    UnsupportedMediaType,
    ValidationFailed,
    field_errors,
    form_body_required,
    problem_responses,
)
from mediation.core.http import header_ref, sends
from mediation.core.i18n import Text
from mediation.core.idempotency import run_idempotent
from mediation.core.pii import redact_text
from mediation.core.principal import Permission, Principal
from mediation.core.schemas import WriteModel
from mediation.disputes.models import Dispute
from mediation.disputes.router import IdempotencyKey, IfMatch, OptionalIfMatch, View, dispute_response
from mediation.disputes.service import DisputeService
from mediation.disputes.views import Viewer
from mediation.documents.media import ALLOWED, GENERATED_PAGE, TEXT, file_charset, saved_name
from mediation.documents.models import Document
from mediation.documents.schemas import ManifestEntryOut
from mediation.documents.service import DocumentKind, DocumentService, may_read_content
from mediation.documents.storage import LocalBlobStore
from mediation.identity.auth import identity_of, permission

router = APIRouter(prefix="/v1", route_class=UnitOfWorkRoute, tags=["documents"])
Reader = Annotated[Principal, permission(Permission.cases_read)]
Writer = Annotated[Principal, permission(Permission.cases_write)]
# An upload creates a document rather than changing what a client read, so it does not require the
# case's ETag (an Idempotency-Key makes it safe to retry); one the client sends is held to.


class DocumentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    dispute_id: uuid.UUID
    kind: DocumentKind
    original_name: str = Field(
        description="The file's name as handed in (without client folders); to a role without "
        "`pii:read` with ID and phone numbers masked."
    )
    size: int
    media_type: str = Field(description="Detected from the content, not the client's claim.")
    sha256: str
    submitted_by_kind: str = Field(description="party | center | body | court | system")
    submitted_by_party_id: uuid.UUID | None
    submitted_role: str
    stage: str = Field(description="The case's state when the document was added.")
    generated: bool
    note: str | None = Field(
        description="The note given at upload; to a role without `pii:read` with ID and phone numbers "
        "masked, as other text typed about a case (and `withdrawn_reason`)."
    )
    late: bool = Field(
        description="Added after the latest handoff froze its dossier: not in it (a later handoff takes it in)."
    )
    status: str = Field(description="active | withdrawn")
    withdrawn_reason: str | None
    withdrawn_at: datetime | None
    created_at: datetime
    href: str


class DossierManifestOut(BaseModel):
    """The list of documents frozen when the case was handed off (the full dossier a court reads is
    `DossierOut`, under /v1/handoffs)."""

    id: uuid.UUID
    dispute_id: uuid.UUID
    kind: str
    target_id: uuid.UUID
    case_version: int
    frozen_at: datetime
    manifest: list[ManifestEntryOut]
    late_documents: list[uuid.UUID] = Field(description="Added after the freeze; not part of this dossier.")


class WithdrawIn(WriteModel):
    reason: Annotated[str, Field(min_length=2, max_length=500)]


def store(request: Request) -> LocalBlobStore:
    return LocalBlobStore(request.app.state.settings.documents_dir)


def _services(request: Request) -> tuple[DisputeService, DocumentService]:
    session = session_of(request)
    settings = request.app.state.settings
    documents = DocumentService(session, store(request), settings)
    disputes = DisputeService(session, request.app.state.clock, settings, identity_of(request).cipher)
    return disputes, documents


def manifest_out(
    dispute_id: uuid.UUID, manifest: list[dict[str, Any]], view: Viewer
) -> list[ManifestEntryOut]:
    """A frozen dossier's manifest as this caller reads it: each file's name as the documents list
    gives it (`_out`), its ID and phone numbers masked without pii:read. The manifest itself stays
    as frozen: its hashes are what the court was handed."""
    return [
        ManifestEntryOut.model_validate(
            {**item, "name": view.text(dispute_id, item.get("name"))} if "name" in item else item
        )
        for item in manifest
    ]


def _out(document: Any, view: Viewer) -> DocumentOut:
    values = {name: getattr(document, name) for name in DocumentOut.model_fields if name != "href"}
    # Text typed or named by people (the file's name, the note, the reason for a withdrawal) reads
    # as the case's timeline gives it to this caller: its ID and phone numbers masked without pii:read.
    for name in ("original_name", "note", "withdrawn_reason"):
        values[name] = view.text(document.dispute_id, values[name])
    values["href"] = f"/v1/disputes/{document.dispute_id}/documents/{document.id}/content"
    return DocumentOut.model_validate(values)


class UploadFields(WriteModel):
    """The form fields beside `file`."""

    kind: DocumentKind = DocumentKind.evidence
    party_id: uuid.UUID | None = Field(default=None, description="The party who handed it in.")
    note: Annotated[str | None, Field(max_length=500)] = None


UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    # The form's fields are these and no others, as everywhere else (extra="forbid").
                    "additionalProperties": False,
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "kind": {
                            "type": "string",
                            "enum": [k.value for k in DocumentKind],
                            "default": "evidence",
                        },
                        "party_id": {"type": "string", "format": "uuid"},
                        "note": {"type": "string", "maxLength": 500},
                    },
                }
            }
        },
    }
}


@router.post(
    "/disputes/{dispute_id}/documents",
    status_code=201,
    response_model=DocumentOut,
    summary="上传材料 Upload a document",
    description=(
        "multipart/form-data with `file`, `kind`, and optionally `party_id` (the party who handed it "
        "in) and `note`. The media type is detected from the content; PDF, images, office documents "
        "and plain text (UTF-8, GB 18030 or GBK, UTF-16 with its byte order mark) are accepted; a "
        "file is plain text only if all of it is, not just its first bytes. Identical content is "
        "stored once. The upload is work on the case: it moves the case's version on by one and adds "
        "one timeline entry (`add_document`, with the kind, the file's name and the note) and one "
        "`document_added` event (the document's id and kind, never its name or note). The response "
        "carries the case's new ETag (a document has none of its own): an If-Match on the case "
        "read before the upload is stale (412). The upload creates a document, so `If-Match` is "
        "not required (retries are made safe by `Idempotency-Key`); when sent, it is checked "
        "against the case's current ETag under the case's lock and a stale one is refused (412 "
        "`stale-version`, nothing stored). An archived case's file is closed: 409 "
        "`case_archived`, nothing stored."
    ),
    responses=problem_responses(
        NotFound,
        Conflict,
        PayloadTooLarge,
        UnsupportedMediaType,
        StaleVersion,
        IdempotencyInProgress,
        IdempotencyKeyMismatch,
        RequestBodyTimeout,
    )
    | sends(201, "ETag", "Location"),
    openapi_extra=UPLOAD_BODY,
)
async def upload_document(
    request: Request,
    dispute_id: uuid.UUID,
    principal: Writer,
    view: View,
    if_match: OptionalIfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    disputes, documents = _services(request)
    await check_scope(request, disputes, dispute_id, principal)
    content_type = request.headers.get("content-type")
    if content_type is None or content_type.split(";")[0].strip().lower() != "multipart/form-data":
        raise form_body_required(content_type)
    async with request.form(max_files=1, max_fields=10) as form:
        upload = form.get("file")
        if not isinstance(upload, StarletteUploadFile):
            raise ValidationFailed.of_field(
                "file", "missing", Text("请选择要上传的文件", "Attach the file as `file`")
            )
        try:
            fields = UploadFields.model_validate({k: v for k, v in form.items() if k != "file"})
        except ValidationError as exc:
            errors = field_errors([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()])
            raise ValidationFailed(Text("表单字段有误", "Invalid form fields"), errors=errors) from exc

        async def work() -> Response:
            document, dispute = await add_document(
                request, principal, disputes, documents, dispute_id, upload, fields, if_match=if_match
            )
            location = f"/v1/disputes/{dispute_id}/documents/{document.id}"
            # The upload moved the case's version on: the case's new ETag, as a change to a clock
            # or an obligation's performance answers with it (a document has no version of its own).
            return dispute_response(_out(document, view), dispute.version, 201, Location=location)

        # A retried upload (the same key, file and fields) answers with the document it made, even
        # with the If-Match it first carried (the version its own upload moved on): the key is
        # judged first, the If-Match only when the upload is made.
        content = await upload_content(upload, fields) if idempotency_key is not None else None
        return await run_idempotent(request, principal, idempotency_key, work, content=content)


async def check_scope(
    request: Request, disputes: DisputeService, dispute_id: uuid.UUID, principal: Principal
) -> None:
    """Who may add to which case is settled before the body is read, so a caller without rights
    never gets to push a file into the spool; in a short read of its own, so no write lock is held
    while a slow client uploads."""
    async with request.app.state.db.reader() as probe:
        await DisputeService(probe, disputes.clock, disputes.settings, disputes.cipher).get(
            dispute_id, principal
        )


async def add_document(
    request: Request,
    principal: Principal,
    disputes: DisputeService,
    documents: DocumentService,
    dispute_id: uuid.UUID,
    upload: StarletteUploadFile,
    fields: UploadFields,
    *,
    if_match: str | None = None,
) -> tuple[Document, Dispute]:
    """The upload itself, as the API and the case page make it; with the case, its version moved on.
    `if_match`: the case's ETag, when the caller names one (checked under the case's lock)."""
    dispute = await disputes.get(dispute_id, principal)
    document = await documents.upload(
        dispute,
        principal,
        upload.file,
        upload.filename or "unnamed",
        fields.kind,
        fields.party_id,
        fields.note,
        request.app.state.clock.now(),
        disputes=disputes,
        if_match=if_match,
    )
    request.state.audit_object = ("document", document.id)
    return document, dispute


async def upload_content(upload: StarletteUploadFile, fields: UploadFields) -> str:
    """What an idempotency key stands for in an upload: the file's hash, its name and the fields
    (the multipart body itself differs in its boundary each time it is sent)."""
    digest = await asyncio.to_thread(_sha256_of, upload.file)
    return json.dumps({"file": digest, "name": upload.filename, **fields.model_dump(mode="json")})


def _sha256_of(file: BinaryIO) -> str:
    digest = hashlib.sha256()
    file.seek(0)
    while chunk := file.read(1 << 20):
        digest.update(chunk)
    file.seek(0)
    return digest.hexdigest()


@router.get(
    "/disputes/{dispute_id}/documents",
    response_model=list[DocumentOut],
    summary="案件材料 Documents of a case",
    description=(
        "A court or commission sees the documents of its dossier, active later ones marked late, and "
        "those its own organisation handed in, withdrawn or not; another's document withdrawn and not "
        "in its dossier is not shown to it."
    ),
    responses=problem_responses(NotFound),
)
async def list_documents(
    request: Request, dispute_id: uuid.UUID, principal: Reader, view: View
) -> list[DocumentOut]:
    disputes, documents = _services(request)
    dispute = await disputes.get(dispute_id, principal)
    return [_out(d, view) for d in await documents.of_case(dispute, principal)]


@router.get(
    "/disputes/{dispute_id}/documents/{document_id}",
    response_model=DocumentOut,
    summary="材料信息 Document metadata",
    responses=problem_responses(NotFound),
)
async def get_document(
    request: Request, dispute_id: uuid.UUID, document_id: uuid.UUID, principal: Reader, view: View
) -> DocumentOut:
    disputes, documents = _services(request)
    dispute = await disputes.get(dispute_id, principal)
    return _out(await documents.get(dispute, document_id, principal), view)


# What a download can be: an uploaded file of an accepted type, or a page the service generated
# (the agreement, a dossier index) as HTML.
SERVED_MEDIA_TYPES: dict[str, dict[str, Any]] = {
    media_type: {"schema": {"type": "string", "format": "binary"}}
    for media_type in sorted({*ALLOWED, GENERATED_PAGE})
}


@router.get(
    "/disputes/{dispute_id}/documents/{document_id}/content",
    summary="下载材料 Download a document",
    description=(
        "Streams the file with its original name (RFC 6266 / RFC 5987 `filename*`), its SHA-256 as "
        "the ETag, and `Range` support. The name in `Content-Disposition` is the name as this caller "
        "reads it in `original_name`: to a role without `pii:read` with ID and phone numbers masked "
        "(`李四身份证110***********0021.pdf`). A name whose extension is not one of the detected media "
        "type's is served with that type's added (`证据.bat` as `证据.bat.txt`); `original_name` keeps "
        "the name as handed in; plain text is served with the `charset` it is written in. A page the service generated (the printable agreement, a "
        "handoff's letter or filing pack) is served to a role without `pii:read` with ID and phone "
        'numbers masked: whole (200, `Range` ignored), with the weak ETag `W/"<sha256>-masked"`; '
        "the stored page, whose hash the manifest holds, goes only to roles with `pii:read`. "
        "Uploaded files are served as they are; an identity document (`identity_document`) only to "
        "roles with `pii:read` (403 `pii_read_required` otherwise). Every download of a document holding personal "
        "data, and every refused attempt, is audited."
    ),
    response_class=FileResponse,
    responses={
        200: {
            "content": SERVED_MEDIA_TYPES,
            "description": (
                "The file, with the media type detected at upload; a generated page masked for "
                "roles without `pii:read`."
            ),
            "headers": {"ETag": header_ref("FileETag")},
        },
        206: {
            "content": SERVED_MEDIA_TYPES,
            "description": "Partial content (Range).",
            "headers": {"ETag": header_ref("FileETag")},
        },
        **problem_responses(NotFound, Forbidden, RangeNotSatisfiable),
    },
)
async def download_document(
    request: Request, dispute_id: uuid.UUID, document_id: uuid.UUID, principal: Reader, view: View
) -> Response:
    disputes, documents = _services(request)
    return await document_content(request, principal, view, disputes, documents, dispute_id, document_id)


async def document_content(
    request: Request,
    principal: Principal,
    view: Viewer,
    disputes: DisputeService,
    documents: DocumentService,
    dispute_id: uuid.UUID,
    document_id: uuid.UUID,
) -> Response:
    """A document's content with its headers, as the API and the case page serve it. `view`: how
    the caller reads the case, for the file's name."""
    request.state.audit_refusals = True
    dispute = await disputes.get(dispute_id, principal)
    document = await documents.get(dispute, document_id, principal)
    if not may_read_content(document, principal):
        raise Forbidden(
            Text(
                "查看身份证明材料需要查看完整身份信息的权限",
                "Identity documents need the pii:read permission",
            ),
            code="pii_read_required",
        )
    path = store(request).path_of(document.sha256)
    if not path.is_file():
        raise NotFound(Text("文件内容缺失", "The document's content is missing"))
    if document.contains_personal_data:
        request.state.audit_reads = [("document.download", "document", str(document.id))]
    # The file's name is data of its own: a photo of the evidence need not show the ID number its
    # name does, and what the file holds is judged by who may read it (an identity document only
    # with pii:read). So the name is served as this caller reads it in the documents list, the
    # timeline and the dossier's manifest: masked without pii:read, by the same redaction
    # (个人信息保护法 Art. 6, 51: no more personal data than the task needs).
    name = view.text(document.dispute_id, document.original_name) or document.original_name
    if name != redact_text(name):
        # A number in the name is disclosed by the header itself, to a HEAD as to a GET.
        request.state.pii_in_headers = True
    headers = {
        "X-Content-Type-Options": "nosniff",
        "Content-Disposition": content_disposition(saved_name(name, document.media_type)),
    }
    if document.generated and not principal.can(Permission.pii_read):
        # Pages the service printed quote the parties' free text (facts, claims) with any ID and
        # phone numbers typed into it; a role without pii:read reads them masked, as it does in
        # the case's views (个人信息保护法 Art. 51). The stored page stays the record, with its hash.
        page = (await asyncio.to_thread(path.read_bytes)).decode("utf-8", errors="replace")
        headers["ETag"] = f'W/"{document.sha256}-masked"'
        return Response(redact_text(page), media_type=document.media_type, headers=headers)
    _settle_range(request, path.stat().st_size)
    media_type = document.media_type
    if media_type == TEXT:
        # Text is kept as it was written (GBK, UTF-16, UTF-8) and said to be in that character set;
        # left unsaid, it would be labelled UTF-8, and GBK shown as that is unreadable.
        media_type = f"{TEXT}; charset={await asyncio.to_thread(_charset_of, path)}"
    return FileResponse(path, media_type=media_type, headers={"ETag": f'"{document.sha256}"', **headers})


@functools.lru_cache(maxsize=1024)
def _charset_of(path: Path) -> str:
    # The store is addressed by content: the bytes at a path never change, nor does their charset.
    # Cached, a text file read in parts (`Range`) is judged once, not once a part.
    return file_charset(path)


# 19 digits hold any file length (2^63 - 1); a longer number is unreadable, and the file is sent whole.
_BYTE_RANGE = re.compile(r"^(\d{0,19})-(\d{0,19})$")


def _settle_range(request: Request, size: int) -> None:
    """RFC 9110 §14.2: a Range the server cannot read (another unit, a malformed or backward range)
    is ignored, and the whole file is sent; one that lies wholly beyond the file is 416, as a
    problem like every other refusal, with the file's length (`Content-Range: bytes */size`)."""
    header = request.headers.get("range")
    if header is None:
        return
    unit, _, ranges = header.partition("=")
    wanted = [_BYTE_RANGE.match(r.strip()) for r in ranges.split(",")]
    usable = unit.strip().lower() == "bytes" and all(
        m and (m[1] or m[2]) and not (m[1] and m[2] and int(m[1]) > int(m[2])) for m in wanted
    )
    if not usable:
        # The file server reads the header from the request itself: taken out, it sends it whole.
        request.scope["headers"] = [(k, v) for k, v in request.scope["headers"] if k != b"range"]
        return
    # A range starting past the end, or an empty suffix, is left out; the rest are served.
    served = [
        f"{m[1]}-{m[2]}" if m[1] else f"-{m[2]}"
        for m in wanted
        if m and ((int(m[1]) < size) if m[1] else (int(m[2]) > 0 and size > 0))
    ]
    if not served:
        raise RangeNotSatisfiable(
            Text("文件共 {n} 字节", "The file has {n} bytes").format(n=size),
            headers={"Content-Range": f"bytes */{size}"},
        )
    if len(served) < len(wanted):
        kept = f"bytes={','.join(served)}".encode("latin-1")
        request.scope["headers"] = [(k, kept if k == b"range" else v) for k, v in request.scope["headers"]]


def content_disposition(name: str) -> str:
    """RFC 6266 with an RFC 8187 (5987) `filename*` for the real name and an ASCII `filename` for
    old clients: `attachment; filename="_.pdf"; filename*=UTF-8''%E6%AC%A0%E6%9D%A1.pdf`."""
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in name)
    encoded = quote(name, safe="!#$&+-.^_`|~")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"


@router.post(
    "/disputes/{dispute_id}/documents/{document_id}/withdraw",
    response_model=DocumentOut,
    summary="撤回材料 Withdraw a document",
    description="Documents are never deleted while the case is kept; a withdrawal keeps the file and the reason. "
    "Only the organisation that submitted the document, or the center's staff, may withdraw it "
    "(403 `not_submitter`). One already withdrawn answers 409 `already_withdrawn` to them, whatever "
    "`If-Match` says, so a withdrawal sent again after a lost answer learns it was done. A record "
    "the service generated (`generated`: the receipt, the agreement as signed, the confirmation "
    "application) is not withdrawn (409 `generated_document`): the "
    "court's dossier is made of them. A withdrawal moves the case's version on by one and adds one "
    "timeline entry (`withdraw_document`, the reason as its reason) and one `document_withdrawn` event. "
    "It is a change to the case, so it takes the case's current ETag in `If-Match` (428 "
    "`precondition-required` without it, 412 `stale-version` when stale; judged under the case's lock "
    "before the withdrawal itself, and either refusal changes nothing); the response carries the case's "
    "new ETag. An `Idempotency-Key` makes "
    "it safe to retry: the same key with the same body replays the first answer "
    "(`Idempotent-Replayed: true`), with another body it is 422. "
    "An archived case's file is closed: 409 `case_archived`.",
    responses=problem_responses(
        Forbidden,
        NotFound,
        Conflict,
        StaleVersion,
        PreconditionRequired,
        IdempotencyKeyMismatch,
        IdempotencyInProgress,
    )
    | sends(200, "ETag"),
)
async def withdraw_document(
    request: Request,
    dispute_id: uuid.UUID,
    document_id: uuid.UUID,
    data: WithdrawIn,
    principal: Writer,
    view: View,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    disputes, documents = _services(request)

    async def work() -> Response:
        document, dispute = await withdraw(
            request, principal, disputes, documents, dispute_id, document_id, data.reason, if_match
        )
        # The case's new ETag, as the upload answers with it.
        return dispute_response(_out(document, view), dispute.version)

    return await run_idempotent(request, principal, idempotency_key, work)


async def withdraw(
    request: Request,
    principal: Principal,
    disputes: DisputeService,
    documents: DocumentService,
    dispute_id: uuid.UUID,
    document_id: uuid.UUID,
    reason: str,
    if_match: str | None,
) -> tuple[Document, Dispute]:
    """A withdrawal, as the API and the case page make it, of the case at the version `if_match`
    names; with the case, its version moved on."""
    # The case first, as uploads and handoffs lock it: a withdrawal is then either in a dossier's
    # freeze or after it, and the document's own lock is taken second.
    dispute = await disputes.get(dispute_id, principal, for_update=True)
    document = await documents.get(dispute, document_id, principal)
    now = request.app.state.clock.now()
    withdrawn = await documents.withdraw(
        dispute, document, principal, reason, now, disputes=disputes, if_match=if_match
    )
    return withdrawn, dispute


@router.get(
    "/disputes/{dispute_id}/dossier",
    response_model=DossierManifestOut,
    summary="移交材料清单 The dossier frozen at handoff",
    description="The manifest (ids, hashes, kinds) frozen when the case was handed to the court or commission.",
    responses=problem_responses(NotFound),
)
async def get_dossier(
    request: Request, dispute_id: uuid.UUID, principal: Reader, view: View
) -> DossierManifestOut:
    disputes, documents = _services(request)
    dispute = await disputes.get(dispute_id, principal)
    dossier = await documents.latest_dossier(dispute.id)
    if dossier is None:
        raise NotFound(Text("案件尚未移交, 没有材料清单", "The case has not been handed off; no dossier"))
    listed = {item["document_id"] for item in dossier.manifest}
    late = [
        d.id
        for d in await documents.of_case(dispute, principal)
        if d.late and d.status == "active" and str(d.id) not in listed
    ]
    return DossierManifestOut(
        id=dossier.id,
        dispute_id=dossier.dispute_id,
        kind=dossier.kind,
        target_id=dossier.target_id,
        case_version=dossier.case_version,
        frozen_at=dossier.frozen_at,
        manifest=manifest_out(dossier.dispute_id, dossier.manifest, view),
        late_documents=late,
    )
