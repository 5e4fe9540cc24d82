"""How a case looks to one caller: personal data unmasked only for roles holding `pii:read`
(each such disclosure noted for the audit trail), masked and de-identified for everyone else."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from mediation.core.errors import DataIntegrityError
from mediation.core.i18n import Text
from mediation.core.pii import PiiCipher, PiiIntegrityError, redact_text, redact_value
from mediation.core.principal import Permission, Principal
from mediation.disputes.enums import Channel
from mediation.disputes.lifecycle import STATUS_LABELS, Status
from mediation.disputes.models import CaseLink, Dispute, Party, TimelineEntry
from mediation.disputes.schemas import CaseLinkOut, DisputeOut, LinkKind, PartyOut, TimelineEntryOut

log = logging.getLogger(__name__)
T = TypeVar("T")

PARTY_TABLE = "parties"
# Free-text and structured columns that may quote a number typed by a clerk or a mediator.
_FREE_TEXT = ("description", "address", "mediator_name")
_STRUCTURED = ("agreement", "handoff", "outcome", "owner")
# What a withheld timeline entry leaves out of its payload: the reason, again, and an
# assignment's reason for overriding triage; and the name of a document the caller is not shown
# (with its note): a court reads no more of a case's file on its timeline than in its documents
# (个人信息保护法 Art. 6, minimum necessary; `DisputeService.reasons_withheld`).
_WITHHELD_KEYS = ("reason", "note", "override_reason", "name")
_DISPUTE_FIELDS = [name for name in DisputeOut.model_fields if name not in ("status_label", "parties")]


@dataclass(slots=True)
class Viewer:
    principal: Principal
    cipher: PiiCipher
    now: datetime
    pii_reads: list[str] = field(default_factory=list)
    # False: shown masked although the caller may read the numbers, until asked for them (the staff
    # case page; 个人信息保护法 Art. 6, minimum necessary): nothing is disclosed, so nothing is noted.
    reveal: bool = True

    @property
    def unmasked(self) -> bool:
        return self.reveal and self.principal.can(Permission.pii_read)

    def _decrypt(self, party: Party, column: str) -> str | None:
        token = getattr(party, f"{column}_enc")
        if token is None:
            return None
        try:
            return self.cipher.decrypt(token, table=PARTY_TABLE, column=column, row_id=str(party.id))
        except PiiIntegrityError as exc:
            log.error("encrypted %s of party %s failed its integrity check", column, party.id)
            raise DataIntegrityError(
                Text("当事人数据完整性校验失败, 已记录", "A party's stored data failed its integrity check")
            ) from exc

    def party(self, party: Party, parties: Sequence[Party] = ()) -> PartyOut:
        """One party as this caller reads it; `parties`, the case's in order, name the party an
        agent acts for by its place among them (`PartyOut.represents`)."""
        if self.unmasked:
            id_number, phone = self._decrypt(party, "id_number"), self._decrypt(party, "phone")
        else:
            id_number, phone = party.id_number_masked, party.phone_masked
        represented = (
            next(
                ((place, other.id) for place, other in enumerate(parties) if other.position == acts_for),
                None,
            )
            if (acts_for := party.represents_position) is not None
            else None
        )
        return PartyOut(
            id=party.id,
            role=party.role,
            kind=party.kind,
            name=party.name,
            id_type=party.id_type,
            id_number=id_number,
            phone=phone,
            address=party.address if self.unmasked else _redact(party.address),
            region_code=party.region_code,
            service_address=party.service_address if self.unmasked else _redact(party.service_address),
            legal_representative=party.legal_representative
            if self.unmasked
            else _redact(party.legal_representative),
            represents=represented[0] if represented else None,
            represents_party_id=represented[1] if represented else None,
            consent=party.consent,
            masked=not self.unmasked,
        )

    def dispute(self, dispute: Dispute) -> DisputeOut:
        values: dict[str, Any] = {name: getattr(dispute, name) for name in _DISPUTE_FIELDS}
        values["status_label"] = STATUS_LABELS[Status(dispute.status)].get()
        values["parties"] = [self.party(p, dispute.parties) for p in dispute.parties]
        values["clock"] = self.clock(dispute)
        if self.unmasked:
            shows = any(p.id_number_enc or p.phone_enc for p in dispute.parties)
            if shows and str(dispute.id) not in self.pii_reads:
                self.pii_reads.append(str(dispute.id))
        else:
            for name in _FREE_TEXT:
                values[name] = _redact(values.get(name))
            for name in _STRUCTURED:
                values[name] = redact_value(values.get(name))
        return DisputeOut.model_validate(values)

    def clock(self, dispute: Dispute) -> dict[str, Any] | None:
        if dispute.clock is None or dispute.clock_due_at is None:
            return None
        # A paused clock stands still: its time left is what it was at the pause.
        paused_at = dispute.clock.get("paused_at")
        until = datetime.fromisoformat(paused_at) if paused_at else self.now
        remaining = int((dispute.clock_due_at - until).total_seconds())
        return {**dispute.clock, "remaining_seconds": remaining}

    def timeline_entry(self, entry: TimelineEntry, *, withheld: bool = False) -> TimelineEntryOut:
        """An entry as this caller reads it. `withheld`: its reason is not this caller's to read
        (`DisputeService.reasons_withheld`), and so is neither shown nor counted as disclosed.
        Unmasked, an entry whose text quotes an ID or phone number is a read of the case's personal
        data, recorded as reading the case is (个人信息保护法 Art. 55); masked, nothing was disclosed."""
        out = TimelineEntryOut.model_validate(entry)
        if withheld:
            payload = {k: None if k in _WITHHELD_KEYS else v for k, v in out.payload.items()}
            out = out.model_copy(update={"reason": None, "payload": payload, "reason_withheld": True})
        masked = out.model_copy(update={"reason": _redact(out.reason), "payload": redact_value(out.payload)})
        if not self.unmasked:
            return masked
        if masked != out and str(entry.dispute_id) not in self.pii_reads:
            self.pii_reads.append(str(entry.dispute_id))
        return out

    def text(self, dispute_id: uuid.UUID, value: str | None) -> str | None:
        """Text typed about a case (a reason, an answer to an order) as this caller may read it: its
        ID and phone numbers masked without `pii:read`; as typed with it, and then a read of the
        case's personal data when the text holds such a number."""
        if not value:
            return value
        return self.shown(dispute_id, redact_text(value), lambda: value)

    def shown(self, dispute_id: uuid.UUID, masked: T, written: Callable[[], T]) -> T:
        """What this caller reads of something a mediator or a clerk wrote about a case (minutes,
        an agreement), given it `masked` and as `written`: masked without `pii:read` (or until the
        numbers are asked for); as written with it, and then a read of the case's personal data
        (个人信息保护法 Art. 55) only when the two differ, that is when a number is shown."""
        if not self.unmasked:
            return masked
        out = written()
        if out != masked and str(dispute_id) not in self.pii_reads:
            self.pii_reads.append(str(dispute_id))
        return out

    def link(self, link: CaseLink, other: Dispute) -> CaseLinkOut:
        """A link to `other`; its note is free text a clerk may have put a number in, as the
        timeline entry recording the link, which shows it masked."""
        return CaseLinkOut(
            id=link.id,
            dispute_id=other.id,
            case_number=other.case_number,
            status=other.status,
            channel=Channel(other.channel),
            kind=LinkKind(link.kind),
            note=link.note if self.unmasked else _redact(link.note),
            created_by=link.created_by,
            created_at=link.created_at,
        )


def _redact(value: str | None) -> str | None:
    return redact_text(value) if value else value
