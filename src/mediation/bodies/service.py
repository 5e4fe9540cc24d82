"""The body registry: bodies, their jurisdiction, mediators and declared conflicts of interest."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mediation.bodies.models import (
    MEDIATING_KINDS,
    Body,
    BodyJurisdiction,
    BodyKind,
    Mediator,
    MediatorConflict,
)
from mediation.bodies.schemas import (
    PROFILE_FIELDS,
    BodyCreate,
    BodyOut,
    BodyPatch,
    ConflictIn,
    MediatorIn,
    MediatorPatch,
    jurisdiction_prefixes,
)
from mediation.core.errors import Conflict, Forbidden, NotFound
from mediation.core.http import check_if_match
from mediation.core.i18n import Text
from mediation.core.pii import PiiCipher, mask_id_number
from mediation.core.principal import BODY_ROLES, CENTER_ROLES, Permission, Principal, Role
from mediation.disputes.models import Dispute
from mediation.events.models import WebhookSubscription
from mediation.events.webhooks import cancel_pending, lock_subscriptions
from mediation.identity.models import User
from mediation.identity.service import LAST_ADMIN
from mediation.triage.service import ACTIVE_STATUSES

NO_BODY = Text("调解组织不存在", "No such body")


class BodyService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # ---- bodies ---------------------------------------------------------------------------------

    async def get(self, body_id: uuid.UUID) -> Body:
        body = await self.session.get(Body, body_id)
        if body is None:
            raise NotFound(NO_BODY)
        return body

    async def out(self, bodies: list[Body]) -> list[BodyOut]:
        """Bodies as the API shows them, with jurisdiction and current load (two queries in all)."""
        ids = [b.id for b in bodies]
        prefixes: dict[uuid.UUID, list[str]] = {}
        loads: dict[uuid.UUID, int] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = await self.session.execute(
                select(BodyJurisdiction.body_id, BodyJurisdiction.region_prefix)
                .where(BodyJurisdiction.body_id.in_(chunk))
                .order_by(BodyJurisdiction.region_prefix)
            )
            for body_id, prefix in rows.all():
                prefixes.setdefault(body_id, []).append(prefix)
            counted = await self.session.execute(
                select(Dispute.body_id, func.count())
                .where(Dispute.body_id.in_(chunk), Dispute.status.in_(ACTIVE_STATUSES))
                .group_by(Dispute.body_id)
            )
            loads.update({body_id: int(n) for body_id, n in counted.all() if body_id is not None})
        return [
            BodyOut(
                id=b.id,
                name=b.name,
                kind=BodyKind(b.kind),
                tier=b.tier,
                region_code=b.region_code,
                jurisdiction=prefixes.get(b.id, []),
                categories=list(b.categories or []),
                capacity=b.capacity,
                active_cases=loads.get(b.id, 0),
                active=b.active,
                suspended_reason=b.suspended_reason,
                address=b.address,
                contact_phone=b.contact_phone,
                description=b.description,
                version=b.version,
                created_at=b.created_at,
                updated_at=b.updated_at,
            )
            for b in bodies
        ]

    async def create(self, data: BodyCreate, now: datetime) -> Body:
        body = Body(
            id=uuid.uuid4(),
            name=data.name,
            kind=data.kind,
            tier=data.tier,
            region_code=data.region_code,
            active=True,
            categories=[c.value for c in data.categories],
            capacity=data.capacity,
            address=data.address,
            contact_phone=data.contact_phone,
            description=data.description,
            version=1,
            created_at=now,
        )
        self.session.add(body)
        await self.session.flush()
        await self._set_jurisdiction(body, data.jurisdiction or [data.region_code])
        return body

    async def update(
        self, body_id: uuid.UUID, data: BodyPatch, principal: Principal, if_match: str | None, now: datetime
    ) -> Body:
        # Fresh from the locked row: the caller's own body may already be in the session (its
        # credentials were checked in this transaction), as read before the lock.
        body = await self.session.get(Body, body_id, with_for_update=True, populate_existing=True)
        if body is None or not may_edit_profile(principal, body_id):
            raise NotFound(NO_BODY)
        check_if_match(if_match, body.version)
        changes = data.model_dump(exclude_unset=True)
        if not principal.can(Permission.registry_manage):
            beyond = sorted(set(changes) - PROFILE_FIELDS)
            if beyond:
                raise Forbidden(
                    Text(
                        "调解组织只能修改本组织的资料 (受理类型、容量、联系方式、简介), 不能修改: {f}",
                        "A body edits only its own profile; not: {f}",
                    ).format(f=", ".join(beyond)),
                    fields=beyond,
                )
        jurisdiction = changes.pop("jurisdiction", None)
        if "categories" in changes:
            changes["categories"] = [str(c) for c in changes["categories"]]
        if changes.get("active") is True:
            changes["suspended_reason"] = None
        if changes.get("active") is False and body.active:
            await self._keep_an_administrator(body)
            await self._cancel_pending_deliveries(body)
        for name, value in changes.items():
            setattr(body, name, value)
        if jurisdiction is not None:
            await self._set_jurisdiction(body, jurisdiction)
        body.version += 1
        body.updated_at = now
        await self.session.flush()
        return body

    async def _keep_an_administrator(self, body: Body) -> None:
        """Suspending a body signs out its administrators (401 organisation_suspended): refused when
        none would be left able to sign in, since no one could then resume the body or manage
        accounts. The active administrators are locked in the order a deactivation locks them, so a
        deactivation committing meanwhile is seen (identity.service.set_active)."""
        rows = await self.session.execute(
            select(User, Body.active)
            .outerjoin(Body, Body.id == User.organisation_id)
            .where(User.role == Role.admin.value, User.active.is_(True))
            .order_by(User.id)
            .with_for_update(of=User)
            .execution_options(populate_existing=True)
        )
        if any(
            user.active and org_active is not False and user.organisation_id != body.id
            for user, org_active in rows
        ):
            return
        raise Conflict(
            Text(
                "暂停该组织后将没有能登录的管理员 (所属组织暂停工作的管理员不能登录), 无人能恢复它或管理账号; "
                "请先在其他组织 (或不属于任何组织) 创建或启用一个管理员",
                "Suspending this body would leave no administrator able to sign in (one of a suspended "
                "body cannot), and no one to resume it or manage accounts. Create or activate an "
                "administrator outside it first",
            ),
            code=LAST_ADMIN,
        )

    async def _cancel_pending_deliveries(self, body: Body) -> None:
        """Suspension stops the body's staff and API keys at once, and with them its webhooks: the
        sequencer fans out no new event to it, and what was queued for it (first tries and retries)
        is cancelled here, as disabling a subscription cancels its own (`WebhookService.set_active`).
        Once resumed, the body sends the cancelled ones again with `POST /v1/webhooks/{id}/redeliver`.
        Its subscriptions are locked first, in id order, then their deliveries: the order every
        path takes them (`lock_subscriptions`). A delivery a relay is sending meanwhile keeps its
        claim until its outcome is recorded (`cancel_pending`)."""
        subscription_ids = await self.session.scalars(
            select(WebhookSubscription.id).where(WebhookSubscription.organisation_id == body.id)
        )
        for subscription in await lock_subscriptions(self.session, subscription_ids.all()):
            await cancel_pending(self.session, subscription.id)

    async def _set_jurisdiction(self, body: Body, codes: list[str]) -> None:
        await self.session.execute(delete(BodyJurisdiction).where(BodyJurisdiction.body_id == body.id))
        for prefix in jurisdiction_prefixes(codes):
            self.session.add(BodyJurisdiction(body_id=body.id, region_prefix=prefix))
        await self.session.flush()

    # ---- mediators ------------------------------------------------------------------------------

    async def mediators(self, body_id: uuid.UUID, principal: Principal) -> list[Mediator]:
        await self._roster_visible(body_id, principal)
        rows = await self.session.scalars(
            select(Mediator).where(Mediator.body_id == body_id).order_by(Mediator.name, Mediator.id)
        )
        return list(rows.all())

    async def add_mediator(
        self, body_id: uuid.UUID, data: MediatorIn, principal: Principal, now: datetime
    ) -> Mediator:
        body = await self._roster_editable(body_id, principal)
        if body.kind not in MEDIATING_KINDS:
            raise Forbidden(
                Text("只有调解组织登记调解员", "Only mediation bodies have mediators"), kind=body.kind
            )
        mediator = Mediator(
            id=uuid.uuid4(),
            body_id=body_id,
            name=data.name,
            title=data.title,
            specialties=[c.value for c in data.specialties],
            active=True,
            version=1,
            created_at=now,
        )
        self.session.add(mediator)
        await self.session.flush()
        return mediator

    async def update_mediator(
        self,
        body_id: uuid.UUID,
        mediator_id: uuid.UUID,
        data: MediatorPatch,
        principal: Principal,
        if_match: str | None,
        now: datetime,
    ) -> Mediator:
        await self._roster_editable(body_id, principal)
        # Locked before If-Match is compared: two edits naming the same version take turns, and the
        # second is refused (412) instead of both answering with one new version.
        mediator = await self._mediator(body_id, mediator_id, lock=True)
        check_if_match(if_match, mediator.version)
        changes = data.model_dump(exclude_unset=True)
        if "specialties" in changes:
            changes["specialties"] = [str(c) for c in changes["specialties"]]
        for name, value in changes.items():
            setattr(mediator, name, value)
        mediator.version += 1
        mediator.updated_at = now
        await self.session.flush()
        return mediator

    async def conflicts(
        self, body_id: uuid.UUID, mediator_id: uuid.UUID, principal: Principal
    ) -> list[MediatorConflict]:
        await self._conflicts_visible(body_id, principal)
        await self._mediator(body_id, mediator_id)
        rows = await self.session.scalars(
            select(MediatorConflict)
            .where(MediatorConflict.mediator_id == mediator_id)
            .order_by(MediatorConflict.declared_at)
        )
        return list(rows.all())

    async def declare_conflict(
        self,
        body_id: uuid.UUID,
        mediator_id: uuid.UUID,
        data: ConflictIn,
        principal: Principal,
        cipher: PiiCipher,
        now: datetime,
    ) -> MediatorConflict:
        if principal.role not in BODY_ROLES or principal.organisation_id != body_id:
            raise NotFound(NO_BODY)
        await self._mediator(body_id, mediator_id)
        conflict = MediatorConflict(
            id=uuid.uuid4(),
            mediator_id=mediator_id,
            dispute_id=data.dispute_id,
            person_name=data.person_name,
            relation=data.relation,
            declared_by=principal.id,
            declared_at=now,
        )
        if data.id_number:
            # The same keyed index the parties table uses, so a party with this number is found
            # without the number being stored in the clear (个人信息保护法 Art. 51).
            conflict.id_number_index = cipher.index(data.id_number, kind="id_number")
            conflict.id_number_masked = mask_id_number(data.id_number)
        if data.dispute_id is not None:
            dispute = await self.session.get(Dispute, data.dispute_id)
            if dispute is None or dispute.body_id != body_id:
                raise NotFound(Text("案件不存在", "No such case"))
        self.session.add(conflict)
        await self.session.flush()
        return conflict

    # ---- who may see and edit what --------------------------------------------------------------

    async def _mediator(self, body_id: uuid.UUID, mediator_id: uuid.UUID, *, lock: bool = False) -> Mediator:
        mediator = await self.session.get(
            Mediator, mediator_id, with_for_update=lock or None, populate_existing=lock
        )
        if mediator is None or mediator.body_id != body_id:
            raise NotFound(Text("调解员不存在", "No such mediator"))
        return mediator

    async def _roster_visible(self, body_id: uuid.UUID, principal: Principal) -> Body:
        # The center chooses and supervises; a body sees its own roster; others see none.
        body = await self.get(body_id)
        own = principal.role in BODY_ROLES and principal.organisation_id == body_id
        center = (
            principal.role in CENTER_ROLES
            and principal.region is not None
            and body.region_code.startswith(principal.region)
        )
        if not (own or center or principal.can(Permission.registry_manage)):
            raise NotFound(NO_BODY)
        return body

    async def _roster_editable(self, body_id: uuid.UUID, principal: Principal) -> Body:
        body = await self.get(body_id)
        own_admin = principal.role == Role.body_admin and principal.organisation_id == body_id
        if not (own_admin or principal.can(Permission.registry_manage)):
            raise NotFound(NO_BODY)
        return body

    async def _conflicts_visible(self, body_id: uuid.UUID, principal: Principal) -> None:
        own = principal.role in BODY_ROLES and principal.organisation_id == body_id
        if not (own or principal.can(Permission.registry_manage)):
            raise NotFound(NO_BODY)


def may_edit_profile(principal: Principal, body_id: uuid.UUID) -> bool:
    if principal.can(Permission.registry_manage):
        return True
    return principal.role == Role.body_admin and principal.organisation_id == body_id
