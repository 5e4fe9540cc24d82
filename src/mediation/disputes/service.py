"""Dispute use cases. Services add and flush; the request's unit of work commits."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import ColumnElement, and_, exists, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased, selectinload
from sqlalchemy.orm.exc import StaleDataError

from mediation.bodies.models import Body
from mediation.core.clock import Clock
from mediation.core.errors import (
    DuplicateExternalReference,
    Forbidden,
    InvalidTransition,
    NotFound,
    StaleVersion,
    ValidationFailed,
)
from mediation.core.http import check_if_match, decode_cursor, encode_cursor
from mediation.core.i18n import Text
from mediation.core.pii import PiiCipher, mask_id_number, mask_phone
from mediation.core.principal import Principal
from mediation.core.settings import Settings
from mediation.disputes import lifecycle
from mediation.disputes.enums import Category, Consent, Severity, Tier
from mediation.disputes.identity import region_prefix
from mediation.disputes.lifecycle import Action, GuardContext, Status, Transition
from mediation.disputes.models import CaseNumberCounter, Dispute, Party, TimelineEntry
from mediation.disputes.paperwork import agreement_lines, handoff_lines, receipt_lines
from mediation.disputes.schemas import ConsentIn, DisputeCreate, PartyIn
from mediation.disputes.scope import visible_to
from mediation.documents.service import HANDOFF_KINDS, DocumentKind, DocumentService
from mediation.events.service import record_dispute_event

QUERY_CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: read aloud at the window

# Center practice (domain.md §4.4): small matters stay in the village, big ones go up.
TIER_FOR_SEVERITY = {
    Severity.ordinary: Tier.village,
    Severity.major: Tier.town,
    Severity.serious: Tier.county,
}
GROUP_THRESHOLD = {Category.labour: 10}  # 劳动争议调解仲裁法 Art. 7: ten or more workers
DEFAULT_GROUP_THRESHOLD = 5

# The body/court/commission an action names, by payload field.
TARGET_FIELD = {
    Action.assign: "body_id",
    Action.request_confirmation: "court_id",
    Action.refer_arbitration: "commission_id",
    Action.refer_litigation: "court_id",
}


def hash_query_code(case_number: str, code: str) -> str:
    return hashlib.sha256(f"{case_number}:{code.strip().upper()}".encode()).hexdigest()


@dataclass(slots=True)
class ListFilters:
    status: list[str] | None = None
    category: str | None = None
    body_id: uuid.UUID | None = None
    region: str | None = None
    channel: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    text: str | None = None
    # ("id_number" | "phone", keyed hash): cases with a party holding that number
    party_index: tuple[str, str] | None = None
    # cases sharing a party (same ID or phone number) with this case
    related_to: uuid.UUID | None = None


class DisputeService:
    def __init__(
        self,
        session: AsyncSession,
        clock: Clock,
        settings: Settings,
        cipher: PiiCipher,
        documents: DocumentService | None = None,
    ) -> None:
        self.session = session
        self.clock = clock
        self.settings = settings
        self.cipher = cipher
        # Generates receipts, agreements and handoff papers, and freezes the dossier at handoff.
        self.documents = documents

    # ---- intake ---------------------------------------------------------------------------------

    async def register(self, data: DisputeCreate, principal: Principal) -> tuple[Dispute, str]:
        if principal.region is not None and not data.region_code.startswith(principal.region):
            message = Text("案发地不在本中心辖区内", "The place is outside your center's region")
            raise ValidationFailed.of_field("region_code", "outside_region", message)
        if data.external_reference is not None:
            await self._refuse_duplicate_reference(data.channel, data.external_reference)
        now = self.clock.now()
        today = self.clock.today()
        case_number = await self._next_case_number(data.region_code[:6], today.year)
        query_code = "".join(secrets.choice(QUERY_CODE_ALPHABET) for _ in range(8))
        threshold = GROUP_THRESHOLD.get(data.category, DEFAULT_GROUP_THRESHOLD)
        dispute = Dispute(
            case_number=case_number,
            query_code_hash=hash_query_code(case_number, query_code),
            category=data.category,
            subject_matters=[m.value for m in data.subject_matters],
            description=data.description,
            channel=data.channel,
            external_reference=data.external_reference,
            region_code=data.region_code,
            address=data.address,
            amount_in_dispute=data.amount_in_dispute,
            people_involved=data.people_involved,
            severity=data.severity,
            is_group=data.people_involved >= threshold,
            is_risk=data.is_risk,
            tier=TIER_FOR_SEVERITY[data.severity],
            status=Status.registered,
            version=1,
            applied_on=today,
            created_by=principal.id,
            created_at=now,
            updated_at=now,
        )
        dispute.parties = [self._new_party(i, p) for i, p in enumerate(data.parties)]
        self.session.add(dispute)
        try:
            await self.session.flush()
        except IntegrityError as exc:
            # Two pushes of the same work order raced past the check above.
            raise DuplicateExternalReference(
                Text("该工单已登记", "This work order is already registered")
            ) from exc
        self._append_timeline(dispute, "register", None, Status.registered, principal, None, {}, now, seq=1)
        record_dispute_event(
            self.session,
            dispute,
            "registered",
            {
                "action": "register",
                "to": Status.registered.value,
                "version": 1,
                "channel": dispute.channel,
                "category": dispute.category,
            },
            now,
        )
        if self.documents is not None:
            await self.documents.generate(
                dispute, principal, DocumentKind.receipt, "受理回执", receipt_lines(dispute), now
            )
        return dispute, query_code

    def _new_party(self, position: int, data: PartyIn) -> Party:
        party = Party(
            id=uuid.uuid4(),
            position=position,
            consent=Consent.unknown,
            **data.model_dump(exclude={"id_number", "phone"}),
        )
        row_id = str(party.id)
        if data.id_number:
            party.id_number_enc = self.cipher.encrypt(
                data.id_number, table="parties", column="id_number", row_id=row_id
            )
            party.id_number_masked = mask_id_number(data.id_number)
            party.id_number_index = self.cipher.index(data.id_number, kind="id_number")
        if data.phone:
            party.phone_enc = self.cipher.encrypt(data.phone, table="parties", column="phone", row_id=row_id)
            party.phone_masked = mask_phone(data.phone)
            party.phone_index = self.cipher.index(data.phone, kind="phone")
        return party

    async def _refuse_duplicate_reference(self, channel: str, reference: str) -> None:
        existing = await self.session.scalar(
            select(Dispute).where(Dispute.channel == channel, Dispute.external_reference == reference)
        )
        if existing is not None:
            raise DuplicateExternalReference(
                Text("该平台工单已登记为案件 {n}", "Already registered as case {n}").format(
                    n=existing.case_number
                ),
                dispute_id=str(existing.id),
                case_number=existing.case_number,
                headers={"Location": f"/v1/disputes/{existing.id}"},
            )

    async def _next_case_number(self, region6: str, year: int) -> str:
        insert = pg_insert if self.session.get_bind().dialect.name == "postgresql" else sqlite_insert
        stmt = (
            insert(CaseNumberCounter)
            .values(region=region6, year=year, last_value=1)
            .on_conflict_do_update(
                index_elements=["region", "year"], set_={"last_value": CaseNumberCounter.last_value + 1}
            )
            .returning(CaseNumberCounter.last_value)
        )
        value = (await self.session.execute(stmt)).scalar_one()
        return f"{region6}-{year}-{value:06d}"

    # ---- reads ----------------------------------------------------------------------------------

    async def get(self, dispute_id: uuid.UUID, principal: Principal, *, for_update: bool = False) -> Dispute:
        """The case, if the caller may see it. A case outside the caller's scope answers exactly like
        a case that does not exist, so its existence does not leak."""
        stmt = (
            select(Dispute)
            .where(Dispute.id == dispute_id, visible_to(principal))
            .options(selectinload(Dispute.parties))
        )
        if for_update:
            stmt = stmt.with_for_update(of=Dispute)
        dispute = await self.session.scalar(stmt)
        if dispute is None:
            raise NotFound(Text("案件不存在", "No such case"))
        return dispute

    async def search(
        self, filters: ListFilters, principal: Principal, limit: int, cursor: str | None
    ) -> tuple[list[Dispute], str | None]:
        stmt = select(Dispute).where(visible_to(principal)).options(selectinload(Dispute.parties))
        if filters.status:
            stmt = stmt.where(Dispute.status.in_(filters.status))
        if filters.category:
            stmt = stmt.where(Dispute.category == filters.category)
        if filters.body_id:
            stmt = stmt.where(Dispute.body_id == filters.body_id)
        if filters.channel:
            stmt = stmt.where(Dispute.channel == filters.channel)
        if filters.region:
            stmt = stmt.where(Dispute.region_code.startswith(region_prefix(filters.region)))
        if filters.party_index:
            kind, digest = filters.party_index
            column = Party.id_number_index if kind == "id_number" else Party.phone_index
            stmt = stmt.where(exists().where(Party.dispute_id == Dispute.id, column == digest))
        if filters.related_to:
            stmt = stmt.where(Dispute.id != filters.related_to, _shares_party_with(filters.related_to))
        if filters.created_from:
            stmt = stmt.where(Dispute.created_at >= filters.created_from)
        if filters.created_to:
            stmt = stmt.where(Dispute.created_at < filters.created_to)
        if filters.text:
            party_match = exists().where(
                Party.dispute_id == Dispute.id, Party.name.contains(filters.text, autoescape=True)
            )
            stmt = stmt.where(
                or_(
                    Dispute.description.contains(filters.text, autoescape=True),
                    Dispute.case_number.contains(filters.text, autoescape=True),
                    party_match,
                )
            )
        if cursor:
            values = decode_cursor(cursor)
            try:
                at = datetime.fromisoformat(values["t"])
                last_id = uuid.UUID(values["i"])
            except (KeyError, ValueError, TypeError):
                decode_cursor("!")  # raises the same validation problem
                raise
            stmt = stmt.where(
                or_(Dispute.created_at < at, and_(Dispute.created_at == at, Dispute.id < last_id))
            )
        stmt = stmt.order_by(Dispute.created_at.desc(), Dispute.id.desc()).limit(limit + 1)
        rows = list((await self.session.scalars(stmt)).all())
        next_cursor = None
        if len(rows) > limit:
            rows = rows[:limit]
            last = rows[-1]
            next_cursor = encode_cursor({"t": last.created_at.isoformat(), "i": str(last.id)})
        return rows, next_cursor

    def party_index(self, kind: str, value: str) -> tuple[str, str]:
        return kind, self.cipher.index(value, kind=kind)

    async def timeline(self, dispute_id: uuid.UUID, principal: Principal) -> list[TimelineEntry]:
        await self.get(dispute_id, principal)
        rows = await self.session.scalars(
            select(TimelineEntry).where(TimelineEntry.dispute_id == dispute_id).order_by(TimelineEntry.seq)
        )
        return list(rows.all())

    async def lookup_status(self, case_number: str, query_code: str) -> Dispute:
        dispute = await self.session.scalar(select(Dispute).where(Dispute.case_number == case_number.strip()))
        expected = dispute.query_code_hash if dispute else "0" * 64
        given = hash_query_code(case_number, query_code)
        if dispute is None or not hmac.compare_digest(expected, given):
            raise NotFound(Text("案件编号或查询码不正确", "Case number or query code is wrong"))
        return dispute

    # ---- the lifecycle --------------------------------------------------------------------------

    def _context(
        self, dispute: Dispute, principal: Principal, payload: Any, target: Body | None
    ) -> GuardContext:
        return GuardContext(
            dispute=dispute,
            payload=payload,
            principal=principal,
            today=self.clock.today(),
            confirmation_window_days=self.settings.confirmation_window_days,
            labour_mediation_days=self.settings.labour_mediation_days,
            target=target,
        )

    async def apply(
        self,
        dispute_id: uuid.UUID,
        action: Action,
        payload: BaseModel,
        principal: Principal,
        if_match: str | None,
    ) -> Dispute:
        dispute = await self.get(dispute_id, principal, for_update=True)
        check_if_match(if_match, dispute.version)
        transition = lifecycle.find_transition(dispute.status, action)
        if transition is None:
            allowed = [t.action.value for t in lifecycle.transitions_from(dispute.status)]
            raise InvalidTransition(
                Text("案件处于「{s}」, 不能{a}", "The case is {se}; cannot {a}").format(
                    s=lifecycle.STATUS_LABELS[Status(dispute.status)].zh,
                    se=dispute.status,
                    a=action.value,
                ),
                status_now=dispute.status,
                allowed_actions=allowed,
            )
        if principal.role not in transition.roles:
            raise Forbidden(
                Text("角色 {r} 不能执行 {a}", "Role {r} may not {a}").format(
                    r=principal.role.value, a=action.value
                ),
                allowed_roles=sorted(r.value for r in transition.roles),
            )
        target = await self._target(action, payload)
        ctx = self._context(dispute, principal, payload, target)
        from_status = dispute.status
        lifecycle.fire(dispute, transition, ctx)
        now = self.clock.now()
        self._apply_effects(dispute, transition, payload, ctx, now)
        dispute.updated_at = now
        dispute.version += 1
        seq = dispute.version
        data = payload.model_dump(mode="json")
        self._append_timeline(
            dispute, action.value, from_status, dispute.status, principal, _reason_of(data), data, now, seq
        )
        event: dict[str, Any] = {
            "action": action.value,
            "from": from_status,
            "to": dispute.status,
            "version": seq,
        }
        if dispute.body_id:
            event["body_id"] = str(dispute.body_id)
        if dispute.handoff_target_id:
            event["handoff_target_id"] = str(dispute.handoff_target_id)
        record_dispute_event(self.session, dispute, transition.event, event, now)
        await self._flush_versioned()
        if self.documents is not None:
            await self._paperwork(dispute, action, principal, now)
        return dispute

    async def _paperwork(self, dispute: Dispute, action: Action, principal: Principal, now: datetime) -> None:
        """The documents an action produces, stored with their hash; a handoff freezes its dossier."""
        assert self.documents is not None
        if action == Action.agree:
            await self.documents.generate(
                dispute, principal, DocumentKind.agreement, "人民调解协议书", agreement_lines(dispute), now
            )
        elif action in (Action.request_confirmation, Action.refer_arbitration, Action.refer_litigation):
            assert dispute.handoff is not None and dispute.handoff_target_id is not None
            kind = str(dispute.handoff["kind"])
            title = {
                "judicial_confirmation": "司法确认申请书",
                "arbitration": "移送仲裁函",
                "litigation": "移送诉讼函",
            }[kind]
            await self.documents.generate(
                dispute, principal, HANDOFF_KINDS[kind], title, handoff_lines(dispute), now
            )
            await self.documents.freeze(dispute, kind, dispute.handoff_target_id, now)

    async def _target(self, action: Action, payload: BaseModel) -> Body | None:
        name = TARGET_FIELD.get(action)
        if name is None:
            return None
        return await self.session.get(Body, getattr(payload, name))

    def _apply_effects(
        self, dispute: Dispute, transition: Transition, payload: Any, ctx: GuardContext, now: datetime
    ) -> None:
        """Set the columns each action changes. Runs after the machine moved, inside the transaction."""
        action, today = transition.action, ctx.today
        if action == Action.assign:
            dispute.body_id = payload.body_id
            dispute.mediator_name = None
        elif action == Action.sign_for:
            dispute.mediator_name = payload.mediator_name
            dispute.mediation_started_on = today
        elif action in (Action.return_, Action.transfer):
            dispute.body_id = None
            dispute.mediator_name = None
        elif action == Action.escalate:
            next_tier = Tier(dispute.tier).next()
            assert next_tier is not None  # guarded by has_next_tier
            dispute.tier = next_tier
            dispute.body_id = None
            dispute.mediator_name = None
        elif action == Action.agree:
            dispute.agreement = payload.agreement.model_dump(mode="json")
            dispute.agreement_effective_on = payload.agreement.effective_on
        elif action == Action.request_confirmation:
            deadline = lifecycle.confirmation_deadline(ctx)
            dispute.handoff_target_id = payload.court_id
            dispute.handoff = {
                "kind": "judicial_confirmation",
                "target_id": str(payload.court_id),
                "basis": payload.basis.value,
                "applicant_party_ids": [str(i) for i in payload.applicant_party_ids],
                "requested_on": today.isoformat(),
                "window_ended_on": deadline.isoformat() if deadline else None,
            }
        elif action in (Action.confirm, Action.reject, Action.not_accept):
            decision = {"decision": action.value, **payload.model_dump(mode="json")}
            if action == Action.confirm:
                # 民诉法 Art. 250: enforcement must be applied for within two years.
                decision["enforcement_deadline"] = _add_years(payload.ruled_on, 2).isoformat()
            dispute.handoff = {**(dispute.handoff or {}), "court_decision": decision}
        elif action == Action.remediate:
            dispute.agreement = None
            dispute.agreement_effective_on = None
            dispute.handoff_target_id = None
            dispute.handoff = None
            dispute.mediation_started_on = today
        elif action == Action.refer_arbitration:
            dispute.handoff_target_id = payload.commission_id
            dispute.handoff = {
                "kind": "arbitration",
                "target_id": str(payload.commission_id),
                "arbitration_agreement": payload.arbitration_agreement,
                "referred_on": today.isoformat(),
            }
        elif action == Action.refer_litigation:
            dispute.handoff_target_id = payload.court_id
            dispute.handoff = {
                "kind": "litigation",
                "target_id": str(payload.court_id),
                "claims": payload.claims,
                "referred_on": today.isoformat(),
            }
        elif action in (
            Action.decline,
            Action.withdraw,
            Action.fail,
            Action.record_performance,
            Action.record_outcome,
        ):
            dispute.outcome = {**(dispute.outcome or {}), action.value: payload.model_dump(mode="json")}
        elif action == Action.archive:
            dispute.outcome = {**(dispute.outcome or {}), "follow_up": payload.model_dump(mode="json")}
        if transition.target in (Status.closed, Status.declined) and dispute.closed_at is None:
            dispute.closed_at = now

    async def record_consent(
        self,
        dispute_id: uuid.UUID,
        party_id: uuid.UUID,
        data: ConsentIn,
        principal: Principal,
        if_match: str | None,
    ) -> Dispute:
        dispute = await self.get(dispute_id, principal, for_update=True)
        check_if_match(if_match, dispute.version)
        if principal.role not in (lifecycle.CENTER | lifecycle.BODY):
            raise Forbidden(Text("该角色不能记录当事人意愿", "This role may not record consent"))
        open_states = {
            Status.registered,
            Status.accepted,
            Status.assigned,
            Status.mediating,
            Status.confirmation_rejected,
        }
        if dispute.status not in open_states:
            raise InvalidTransition(
                Text("调解已结束, 不能再记录意愿", "Mediation is over; consent can no longer be recorded"),
                status_now=dispute.status,
            )
        party = next((p for p in dispute.parties if p.id == party_id), None)
        if party is None:
            raise NotFound(Text("该案没有这个当事人", "No such party in this case"))
        party.consent = data.decision
        now = self.clock.now()
        dispute.updated_at = now
        dispute.version += 1
        seq = dispute.version
        payload = {"party_id": str(party_id), "decision": data.decision.value}
        self._append_timeline(
            dispute, "record_consent", dispute.status, dispute.status, principal, data.note, payload, now, seq
        )
        record_dispute_event(self.session, dispute, "consent_recorded", {**payload, "version": seq}, now)
        await self._flush_versioned()
        return dispute

    def available_actions(self, dispute: Dispute, principal: Principal) -> list[dict[str, Any]]:
        out = []
        for t in lifecycle.transitions_from(dispute.status):
            ctx = self._context(dispute, principal, None, None)
            blocked = lifecycle.evaluate(t, ctx, with_payload=False)
            out.append(
                {
                    "action": t.action.value,
                    "label": t.label.get(),
                    "to": t.target.value,
                    "roles": sorted(r.value for r in t.roles),
                    "allowed_for_caller": principal.role in t.roles and not blocked,
                    "blocked_by": [r.as_dict() for r in blocked],
                    "requires": [
                        {"name": g.name, "description": g.description.get(), "article": g.article}
                        for g in t.guards
                    ],
                    "href": f"/v1/disputes/{dispute.id}/actions/{t.action.value}",
                }
            )
        return out

    # ---- shared ---------------------------------------------------------------------------------

    def _append_timeline(
        self,
        dispute: Dispute,
        action: str,
        from_status: str | None,
        to_status: str | None,
        principal: Principal,
        reason: str | None,
        payload: dict[str, Any],
        at: datetime,
        seq: int,
    ) -> None:
        self.session.add(
            TimelineEntry(
                dispute_id=dispute.id,
                seq=seq,
                action=action,
                from_status=from_status,
                to_status=to_status,
                actor_role=principal.role.value,
                actor_id=principal.id,
                reason=reason,
                payload=payload,
                occurred_at=at,
            )
        )

    async def _flush_versioned(self) -> None:
        try:
            await self.session.flush()
        except (StaleDataError, IntegrityError) as exc:
            # Another request changed the case between our read and our write.
            raise StaleVersion(
                Text("案件已被他人修改, 请刷新后重试", "The case changed meanwhile; reload and retry")
            ) from exc


def _shares_party_with(dispute_id: uuid.UUID) -> ColumnElement[bool]:
    """Some party of the case has the same ID number or phone number as a party of `dispute_id`."""
    theirs = aliased(Party)
    mine = aliased(Party)
    same_person = or_(
        and_(theirs.id_number_index.is_not(None), theirs.id_number_index == mine.id_number_index),
        and_(theirs.phone_index.is_not(None), theirs.phone_index == mine.phone_index),
    )
    return exists().where(theirs.dispute_id == Dispute.id, mine.dispute_id == dispute_id, same_person)


def _reason_of(data: dict[str, Any]) -> str | None:
    for key in ("reason", "note", "reason_code", "ground"):
        if data.get(key):
            return str(data[key])
    return None


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)
