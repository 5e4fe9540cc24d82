"""Documents of a case: upload, list, read, withdraw, generate, and the dossier frozen at handoff."""

from __future__ import annotations

import asyncio
import html
import io
import unicodedata
import uuid
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, BinaryIO

from sqlalchemy import bindparam, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from mediation.core.db import ordered_id
from mediation.core.errors import (
    Conflict,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
)
from mediation.core.http import check_if_match
from mediation.core.i18n import Text
from mediation.core.principal import BODY_ROLES, CENTER_ROLES, Permission, Principal, Role
from mediation.core.settings import Settings
from mediation.disputes.models import Dispute
from mediation.documents.media import ALLOWED, GENERATED_PAGE, detect
from mediation.documents.models import Blob, Document, Dossier
from mediation.documents.storage import BlobStore, Staged, TooLarge

if TYPE_CHECKING:
    # The dispute service builds on this one (it prints the receipt, freezes the dossier).
    from mediation.disputes.service import DisputeService


class DocumentKind(StrEnum):
    evidence = "evidence"  # 证据
    identity_document = "identity_document"  # 身份证明
    power_of_attorney = "power_of_attorney"  # 授权委托书
    property_proof = "property_proof"  # 财产权利证明 (房产证、土地承包经营权证等)
    minutes = "minutes"  # 调解笔录
    agreement = "agreement"  # 调解协议书
    receipt = "receipt"  # 受理回执
    decline_notice = "decline_notice"  # 不予受理告知书
    application = "application"  # 司法确认申请书
    filing_pack = "filing_pack"  # 移送材料
    court_ruling = "court_ruling"  # 法院裁定书
    other = "other"


# Kinds that by their nature name or identify people; evidence usually does too.
PERSONAL = frozenset(
    {
        DocumentKind.evidence,
        DocumentKind.identity_document,
        DocumentKind.power_of_attorney,
        DocumentKind.property_proof,
        DocumentKind.minutes,
        DocumentKind.agreement,
        DocumentKind.receipt,
        DocumentKind.decline_notice,
        DocumentKind.application,
        DocumentKind.filing_pack,
        DocumentKind.court_ruling,
    }
)
HANDOFF_KINDS = {
    "judicial_confirmation": DocumentKind.application,
    "labour_arbitration": DocumentKind.filing_pack,
    "commercial_arbitration": DocumentKind.filing_pack,
    "rural_land_arbitration": DocumentKind.filing_pack,
    "litigation": DocumentKind.filing_pack,
}

HANDOFF_PAPERS = frozenset(HANDOFF_KINDS.values())


def _manifest_entry(document: Document) -> dict[str, Any]:
    """A document as a dossier lists it: by its hash, which the court checks the content against."""
    return {
        "document_id": str(document.id),
        "sha256": document.sha256,
        "kind": document.kind,
        "size": document.size,
        "media_type": document.media_type,
        "name": document.original_name,
    }


def _paper_of(document: Document, paper: Document) -> dict[str, str]:
    """A manifest entry's mark for a handoff's own paper: this handoff's, or an earlier one's."""
    if document.id == paper.id:
        return {"paper_of": "this_handoff"}
    if document.generated and document.kind in HANDOFF_PAPERS:
        return {"paper_of": "earlier_handoff"}
    return {}


# Built once: these run for every document, the intake's receipt included.
_ADD_BLOB = {
    on_postgresql: insert(Blob)
    .values(
        sha256=bindparam("sha256"),
        size=bindparam("size"),
        media_type=bindparam("media_type"),
        created_at=bindparam("created_at"),
    )
    .on_conflict_do_nothing(index_elements=["sha256"])
    for on_postgresql, insert in ((True, pg_insert), (False, sqlite_insert))
}
_DOSSIERS_OF = select(func.count()).select_from(Dossier).where(Dossier.dispute_id == bindparam("dispute_id"))
# The case under its lock, read again: another upload, a withdrawal or an action may have committed
# (and moved the version on) while this upload was being read, and its timeline entry is recorded
# under the case's version check. The parties come with it, as with every read of the case.
_LOCK_CASE = (
    select(Dispute)
    .where(Dispute.id == bindparam("dispute_id"))
    .options(joinedload(Dispute.parties))
    .with_for_update(of=Dispute)
    .execution_options(populate_existing=True)
)

FILE_TOO_LARGE = Text("单个文件超过上限 {n} 字节", "The file exceeds {n} bytes")
CASE_TOO_LARGE = Text("本案材料总量超过上限 {n} 字节", "The case's documents would exceed {n} bytes")


# 人民调解法 Art. 27: the case's materials are bound into its file and archived (立卷归档). Once the
# case is archived its file is closed: nothing is added to it or taken out of it.
CLOSED_FILE = "archived"


def takes_documents(dispute: Dispute) -> bool:
    """Whether the case's file is open: documents may be handed in or withdrawn."""
    return dispute.status != CLOSED_FILE


def _refuse_closed_file(dispute: Dispute) -> None:
    if not takes_documents(dispute):
        raise Conflict(
            Text(
                "案件已归档, 案卷已封存, 不能再提交或撤回材料",
                "The case is archived: its file is closed, and documents can no longer be added or withdrawn",
            ),
            code="case_archived",
        )


# The timeline entries of a document handed in or withdrawn (`upload`, `withdraw`), each naming it
# by `document_id` in its payload.
DOCUMENT_ENTRIES = frozenset({"add_document", "withdraw_document"})

# Who is shown only part of a case's documents (`DocumentService.of_case`): a court or commission
# gets what was handed to it, plus later additions marked late. A document withdrawn before its
# handoff, or after it was added late, was not handed over. Every other role that reads the case
# (its center, the body that has it) reads all of its file.
SHOWN_WHAT_WAS_HANDED_OVER = frozenset({Role.court, Role.arbitration})


def _handed_over(manifest: set[uuid.UUID], document_id: uuid.UUID, late: bool, status: str) -> bool:
    return document_id in manifest or (late and status == "active")


async def _shown_of(
    session: AsyncSession,
    dispute_id: uuid.UUID,
    principal: Principal,
    documents: list[tuple[uuid.UUID, bool, str, uuid.UUID | None]],
) -> set[uuid.UUID]:
    """Of a case's documents (id, late, status, submitted_by_organisation_id), those a court or
    commission is shown: what was handed over to it, and what its own organisation handed in,
    withdrawn or not. The latter it wrote and may withdraw (`DocumentService.may_withdraw`), so it
    learns nothing from it; and a withdrawal sent again (a retry after an answer that was lost) then
    finds the document withdrawn, not missing."""
    manifest = await _manifest_ids(session, dispute_id)
    return {
        i
        for i, late, status, by in documents
        if _handed_over(manifest, i, late, status) or _own_filing(by, principal)
    }


def _own_filing(organisation_id: uuid.UUID | None, principal: Principal) -> bool:
    """Whether `principal`'s organisation handed in a document that records `organisation_id` as
    its submitter's: the organisation it was handed in for, not the one its submitter's account
    has now (an account moves; what it filed stays with the organisation it filed for)."""
    return organisation_id is not None and organisation_id == principal.organisation_id


async def _latest_dossier(session: AsyncSession, dispute_id: uuid.UUID) -> Dossier | None:
    return await session.scalar(
        select(Dossier)
        .where(Dossier.dispute_id == dispute_id)
        .order_by(Dossier.frozen_at.desc(), Dossier.id.desc())
        .limit(1)
    )


async def _manifest_ids(session: AsyncSession, dispute_id: uuid.UUID) -> set[uuid.UUID]:
    dossier = await _latest_dossier(session, dispute_id)
    return {uuid.UUID(item["document_id"]) for item in dossier.manifest} if dossier else set()


async def documents_shown(
    session: AsyncSession, dispute_id: uuid.UUID, principal: Principal
) -> set[uuid.UUID] | None:
    """The ids of the case's documents `principal` is shown (as `DocumentService.of_case` lists
    them), or None when it is shown all of them. For the case's other reads that name documents:
    its timeline says which document was handed in or withdrawn."""
    if principal.role not in SHOWN_WHAT_WAS_HANDED_OVER:
        return None
    rows = await session.execute(
        select(Document.id, Document.late, Document.status, Document.submitted_by_organisation_id).where(
            Document.dispute_id == dispute_id
        )
    )
    return await _shown_of(
        session, dispute_id, principal, [(i, late, status, by) for i, late, status, by in rows.all()]
    )


NAME_MAX = 255  # documents.original_name


def _base_name(filename: str) -> str:
    """The name without any folder a browser or client sent along (C:\\扫描件\\欠条.pdf -> 欠条.pdf).

    Control and format characters are dropped (a NUL cannot be stored in a PostgreSQL text
    column, a right-to-left override disguises `fdp.exe` as `exe.pdf`); spaces, the ideographic
    space of Chinese names among them, are kept."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if c.isprintable() or unicodedata.category(c) == "Zs").strip()
    if len(name) > NAME_MAX:
        # Cut from the stem, so the name keeps the extension its reader opens it by.
        stem, dot, extension = name.rpartition(".")
        if dot and stem and len(extension) <= 16:
            name = stem[: NAME_MAX - len(extension) - 1].rstrip() + "." + extension
        else:
            name = name[:NAME_MAX]
    return name or "unnamed"


def _submitter_kind(principal: Principal) -> str:
    if principal.role in CENTER_ROLES:
        return "center"
    if principal.role in BODY_ROLES:
        return "body"
    if principal.role in (Role.court, Role.arbitration):
        return "court"
    return "system"


def page_of(title: str, lines: list[str]) -> str:
    """A page the service prints: its title and one paragraph per line."""
    body = "\n".join(f"<p>{html.escape(line)}</p>" for line in lines)
    return (
        '<!doctype html><html lang="zh-CN"><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><h1>{html.escape(title)}</h1>{body}</html>\n"
    )


def may_read_content(document: Document, principal: Principal) -> bool:
    """A role that sees ID numbers masked (a supervisor) is not handed the scan of the ID card
    itself: it serves no supervision, and would undo the mask (个人信息保护法 Art. 6, 51)."""
    return document.kind != DocumentKind.identity_document or principal.can(Permission.pii_read)


class DocumentService:
    def __init__(self, session: AsyncSession, store: BlobStore, settings: Settings) -> None:
        self.session = session
        self.store = store
        self.settings = settings

    # ---- upload ---------------------------------------------------------------------------------

    async def upload(
        self,
        dispute: Dispute,
        principal: Principal,
        source: BinaryIO,
        filename: str,
        kind: DocumentKind,
        party_id: uuid.UUID | None,
        note: str | None,
        now: datetime,
        *,
        disputes: DisputeService,
        if_match: str | None = None,
    ) -> Document:
        """A document handed in to the case: stored, and recorded on the case's timeline as work
        on it (`add_document`), with one `document_added` event, under the case's version.
        `if_match`: the case's ETag the caller names, if it names one; judged under the case's lock."""
        _refuse_closed_file(dispute)
        if party_id is not None and party_id not in {p.id for p in dispute.parties}:
            message = Text("该案没有这个当事人", "No such party in this case")
            raise ValidationFailed.of_field("party_id", "unknown", message)
        used = await self._case_bytes(dispute.id)
        room = self.settings.case_document_max_bytes - used
        limit = min(self.settings.document_max_bytes, room)
        try:
            staged = await self._stage(source, limit)
        except TooLarge as exc:
            if limit == self.settings.document_max_bytes:
                raise PayloadTooLarge(FILE_TOO_LARGE.format(n=limit)) from exc
            raise PayloadTooLarge(CASE_TOO_LARGE.format(n=self.settings.case_document_max_bytes)) from exc
        # Whatever ends the upload from here (a refusal, a database error, the request cancelled),
        # the staged copy goes with it: nothing half-written is left. Once committed it has been
        # moved into the store, and discarding it is a no-op.
        try:
            if staged.size == 0:
                message = Text("文件为空", "The file is empty")
                raise ValidationFailed.of_field("file", "empty", message)
            media_type = await asyncio.to_thread(detect, staged.head, filename, staged.path)
            if media_type not in ALLOWED:
                raise UnsupportedMediaType(
                    Text("不接受该类型的文件 ({t})", "Files of this type are not accepted ({t})").format(
                        t=media_type
                    ),
                    detected_media_type=media_type,
                    allowed_media_types=sorted(ALLOWED),
                )
            # Concurrent uploads to the case (and a handoff freezing its dossier) wait here, so the
            # case's total and the late flag are judged against what they committed, and the case
            # is read again as they left it (its status, its version).
            (await self.session.scalars(_LOCK_CASE, {"dispute_id": dispute.id})).unique().one()
            if if_match is not None:
                # Adding a document creates rather than changes, so the case's ETag is not required
                # (an Idempotency-Key makes it safe to retry); but a caller who names the version it
                # acts on is held to it, as on every other change to the case.
                check_if_match(if_match, dispute.version)
            _refuse_closed_file(dispute)
            if await self._case_bytes(dispute.id) + staged.size > self.settings.case_document_max_bytes:
                raise PayloadTooLarge(CASE_TOO_LARGE.format(n=self.settings.case_document_max_bytes))
            document = await self._attach(
                dispute, principal, staged, media_type, filename, kind, party_id, note, now, generated=False
            )
            # The event carries no name or note: a file's name often names a party (欠条（张三）.pdf),
            # and other systems learn only that a document of this kind was added. The timeline keeps
            # them, read with the case's own rights.
            added = {"name": document.original_name, "party_id": str(party_id) if party_id else None}
            await disputes.record_work(
                dispute,
                "add_document",
                principal,
                None,
                {"document_id": str(document.id), "kind": kind.value},
                "document_added",
                timeline_only={**added, "note": note} if note else added,
            )
            return document
        except BaseException:
            self.store.discard(staged)
            raise

    async def _stage(self, source: BinaryIO, limit: int) -> Staged:
        """Copy the upload into the store's staging area. The copy runs in a thread, which a
        cancelled request cannot stop: what it staged after the request is gone is removed when it
        ends."""
        copy = asyncio.ensure_future(asyncio.to_thread(self.store.stage, source, limit))
        try:
            return await asyncio.shield(copy)
        except asyncio.CancelledError:
            copy.add_done_callback(self._discard_orphan)
            raise

    def _discard_orphan(self, copy: asyncio.Future[Staged]) -> None:
        if not copy.cancelled() and copy.exception() is None:
            self.store.discard(copy.result())

    async def _attach(
        self,
        dispute: Dispute,
        principal: Principal,
        staged: Staged,
        media_type: str,
        filename: str,
        kind: DocumentKind,
        party_id: uuid.UUID | None,
        note: str | None,
        now: datetime,
        *,
        generated: bool,
        placed: bool = False,
        late: bool | None = None,
    ) -> Document:
        """`placed`: the content is in the store already. `late`: whether a dossier of the case was
        frozen before this document (None: look)."""
        await self.session.execute(
            _ADD_BLOB[self.session.get_bind().dialect.name == "postgresql"],
            {"sha256": staged.sha256, "size": staged.size, "media_type": media_type, "created_at": now},
        )
        if not placed:
            # The file goes into place before the row commits: a row never points at missing
            # content (a failed commit leaves, at worst, content nobody references).
            await asyncio.to_thread(self.store.commit, staged)
        if late is None:
            # Under the case's lock a dossier that exists was frozen before this document: it is
            # late for the latest handoff (the next freeze takes it in and clears the flag).
            late = bool(await self.session.scalar(_DOSSIERS_OF, {"dispute_id": dispute.id}))
        document = Document(
            id=ordered_id(),
            dispute_id=dispute.id,
            kind=kind.value,
            original_name=_base_name(filename),
            sha256=staged.sha256,
            size=staged.size,
            media_type=media_type,
            submitted_by_kind="party" if party_id else _submitter_kind(principal),
            submitted_by_party_id=party_id,
            submitted_by=principal.id,
            submitted_by_organisation_id=principal.organisation_id,
            submitted_role=principal.role.value,
            stage=dispute.status,
            generated=generated,
            contains_personal_data=kind in PERSONAL,
            late=late,
            note=note,
            status="active",
            created_at=now,
        )
        self.session.add(document)
        # Papers the service prints are part of the action that printed them, with its timeline entry
        # and event; a document handed in is recorded as work on the case by `upload`.
        await self.session.flush()
        return document

    async def _case_bytes(self, dispute_id: uuid.UUID) -> int:
        total = await self.session.scalar(
            select(func.coalesce(func.sum(Document.size), 0)).where(
                Document.dispute_id == dispute_id, Document.generated.is_(False)
            )
        )
        return int(total or 0)

    # ---- reads ----------------------------------------------------------------------------------

    async def of_case(self, dispute: Dispute, principal: Principal) -> list[Document]:
        rows = list(
            (
                await self.session.scalars(
                    select(Document)
                    .where(Document.dispute_id == dispute.id)
                    .order_by(Document.created_at, Document.id)
                )
            ).all()
        )
        if principal.role in SHOWN_WHAT_WAS_HANDED_OVER:
            shown = await _shown_of(
                self.session,
                dispute.id,
                principal,
                [(d.id, d.late, d.status, d.submitted_by_organisation_id) for d in rows],
            )
            rows = [d for d in rows if d.id in shown]
        return rows

    async def get(self, dispute: Dispute, document_id: uuid.UUID, principal: Principal) -> Document:
        for document in await self.of_case(dispute, principal):
            if document.id == document_id:
                return document
        raise NotFound(Text("文件不存在", "No such document"))

    async def latest_dossier(self, dispute_id: uuid.UUID) -> Dossier | None:
        return await _latest_dossier(self.session, dispute_id)

    async def manifest_ids(self, dispute_id: uuid.UUID) -> set[uuid.UUID]:
        return await _manifest_ids(self.session, dispute_id)

    # ---- withdrawal -----------------------------------------------------------------------------

    async def withdraw(
        self,
        dispute: Dispute,
        document: Document,
        principal: Principal,
        reason: str,
        now: datetime,
        *,
        disputes: DisputeService,
        if_match: str | None,
    ) -> Document:
        """The caller holds the case's lock (taken before the document's, as uploads and handoffs
        take it); the document's row is locked and read again, so of two withdrawals at once the
        second sees the first and is refused. Recorded on the case's timeline (`withdraw_document`,
        with the reason) and as one `document_withdrawn` event, under the case's version, which
        `if_match` must name (428 without it, 412 when stale) before anything else is judged about
        a document not yet withdrawn.

        One already withdrawn is refused as such (409 `already_withdrawn`) to whoever may withdraw
        it, whatever ETag comes with the request: a withdrawal sent again after its answer was lost
        comes with the ETag it had, which the withdrawal itself moved on, and "reload and retry"
        would only lead to the same refusal (RFC 9110 §13.1.1, a change already applied)."""
        await self.session.execute(
            select(Document)
            .where(Document.id == document.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        if document.status == "withdrawn":
            await self._may_withdraw(document, principal)
            raise Conflict(Text("文件已撤回", "The document is already withdrawn"), code="already_withdrawn")
        check_if_match(if_match, dispute.version)
        _refuse_closed_file(dispute)
        await self._may_withdraw(document, principal)
        document.status = "withdrawn"
        document.withdrawn_reason = reason
        document.withdrawn_at = now
        await disputes.record_work(
            dispute,
            "withdraw_document",
            principal,
            reason,
            {"document_id": str(document.id)},
            "document_withdrawn",
            timeline_only={"kind": document.kind, "name": document.original_name},
        )
        return document

    def may_withdraw(self, document: Document, principal: Principal) -> bool:
        """A document is taken back by whoever handed it in: the organisation that submitted it, or
        the center's staff, who keep the case's file. A court or commission reads a body's evidence in
        its dossier, and a body what the center or a court filed; neither removes it. The service's
        own records (the receipt, the agreement as signed, the application) are nobody's to take
        back: the court's dossier and its checklist are made of them (`_may_withdraw`)."""
        if document.generated:
            return principal.role == Role.system
        if principal.role in CENTER_ROLES or principal.role == Role.system:
            return True
        return _own_filing(document.submitted_by_organisation_id, principal)

    async def _may_withdraw(self, document: Document, principal: Principal) -> None:
        if self.may_withdraw(document, principal):
            return
        if document.generated:
            # What the service printed stands as printed: a wrong receipt is corrected by
            # correcting the case (更正登记信息), a wrong agreement by a new version of it.
            raise Conflict(
                Text(
                    "系统生成的文书不能撤回; 内容有误的, 请更正登记信息或起草新版本协议",
                    "A record the service generated cannot be withdrawn; correct the case or draft a "
                    "new version of the agreement instead",
                ),
                code="generated_document",
            )
        raise Forbidden(
            Text(
                "只有提交该材料的单位或中心工作人员可以撤回",
                "Only the organisation that submitted the document, or the center's staff, may withdraw it",
            ),
            code="not_submitter",
        )

    # ---- generated documents and dossiers ---------------------------------------------------------

    async def generate(
        self,
        dispute: Dispute,
        principal: Principal,
        kind: DocumentKind,
        title: str,
        lines: list[str],
        now: datetime,
    ) -> Document:
        """Store a document the service produced (receipt, application, filing pack), so what was
        printed can be proven later by its hash."""
        return await self.generate_html(dispute, principal, kind, title, page_of(title, lines), now)

    async def generate_html(
        self,
        dispute: Dispute,
        principal: Principal,
        kind: DocumentKind,
        title: str,
        page: str,
        now: datetime,
    ) -> Document:
        """Store a complete HTML page the service rendered (the agreement), with its hash."""
        return await self.attach_page(dispute, principal, kind, title, await self.store_page(page), now)

    async def store_page(self, page: str) -> Staged:
        """Write a page the service rendered into the store (synced, in place) before its row exists:
        a row never points at missing content, and a transaction that fails leaves, at worst,
        content nobody references. It touches no session, so it may run while the caller goes on."""
        content = page.encode()

        def store() -> Staged:
            staged = self.store.stage(io.BytesIO(content), len(content))
            self.store.commit(staged)
            return staged

        return await asyncio.to_thread(store)

    async def attach_page(
        self,
        dispute: Dispute,
        principal: Principal,
        kind: DocumentKind,
        title: str,
        stored: Staged,
        now: datetime,
        *,
        new_case: bool = False,
    ) -> Document:
        """The document row for a page `store_page` put in place. `new_case`: the case is being
        registered in this transaction, so no dossier of it can exist yet (nothing is late)."""
        name = f"{title}-{dispute.case_number}.html"
        return await self._attach(
            dispute,
            principal,
            stored,
            GENERATED_PAGE,
            name,
            kind,
            None,
            None,
            now,
            generated=True,
            placed=True,
            late=False if new_case else None,
        )

    async def freeze(
        self, dispute: Dispute, kind: str, target_id: uuid.UUID, now: datetime, paper: Document
    ) -> Dossier:
        """The dossier of a handoff: every active document of the case, as it is now. `paper` is
        the application or referral letter just printed for this handoff; the papers of the case's
        earlier handoffs (a confirmation applied for again, a referral after a refusal) stay in the
        file as its history, marked so the court or commission reads the one addressed to it."""
        every = (
            await self.session.scalars(
                select(Document)
                .where(Document.dispute_id == dispute.id)
                .order_by(Document.created_at, Document.id)
            )
        ).all()
        # `late` is relative to the latest dossier: what exists now is either in this one or was
        # withdrawn before it, so none of it is late for this handoff (a document added while the
        # case was back from an earlier one is part of this dossier, not a late addition to it).
        for document in every:
            document.late = False
        documents = [d for d in every if d.status == "active"]
        dossier = Dossier(
            # Ordered: two handoffs' dossiers frozen at one reading of the clock keep their order.
            id=ordered_id(),
            dispute_id=dispute.id,
            kind=kind,
            target_id=target_id,
            case_version=dispute.version,
            manifest=[_manifest_entry(d) | _paper_of(d, paper) for d in documents],
            frozen_at=now,
        )
        self.session.add(dossier)
        await self.session.flush()
        return dossier

    async def freeze_supplement(
        self,
        dossier: Dossier | None,
        dispute_id: uuid.UUID,
        handoff_id: uuid.UUID,
        kind: str,
        target_id: uuid.UUID,
        case_version: int,
        supplied: list[Document],
        request_id: str,
        now: datetime,
    ) -> Dossier:
        """The handoff's dossier frozen again with the materials the court asked for (民诉法解释
        Art. 354, 356): what it carried, and the documents supplied, each marked with the request it
        answers. Frozen like the first, by hash: the court reads what was handed to it, and the
        documents are no longer late additions."""
        carried = list(dossier.manifest) if dossier is not None else []
        listed = {item["document_id"] for item in carried}
        for document in supplied:
            document.late = False
        again = Dossier(
            id=ordered_id(),
            dispute_id=dispute_id,
            kind=kind,
            target_id=target_id,
            case_version=case_version,
            manifest=carried
            + [
                _manifest_entry(d) | {"supplied_for": request_id} for d in supplied if str(d.id) not in listed
            ],
            frozen_at=now,
            handoff_id=handoff_id,
        )
        self.session.add(again)
        await self.session.flush()
        return again
