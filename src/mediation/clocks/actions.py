"""Pausing, resuming and extending a case's clock: the clock change and its timeline entry in one
transaction, under the case's version check."""

from __future__ import annotations

import uuid

from mediation.clocks.models import CaseClock
from mediation.clocks.rules import CLOCK_KEEPERS, CLOCK_LABELS, ClockName, ExtensionConsent
from mediation.clocks.schemas import ClockExtensionIn, PauseIn, ResumeIn
from mediation.core.errors import Forbidden, GuardFailed
from mediation.core.http import check_if_match
from mediation.core.i18n import Text
from mediation.core.principal import BODY_ROLES, ROLE_NAMES, Principal
from mediation.core.refusal import Refusal, summary
from mediation.disputes.enums import PartyRole
from mediation.disputes.models import Dispute
from mediation.disputes.service import DisputeService


def keeps(dispute: Dispute, name: ClockName, principal: Principal) -> bool:
    """Whether `principal` may pause, resume or extend the case's clock `name`: the center's staff
    the center's clocks, the body that has the case now its own (it sees no other case)."""
    own = principal.role not in BODY_ROLES or principal.organisation_id == dispute.body_id
    return principal.role in CLOCK_KEEPERS.get(name, frozenset()) and own


class ClockActions:
    def __init__(self, disputes: DisputeService) -> None:
        self.disputes = disputes
        self.clocks = disputes.clocks

    async def _case(
        self, dispute_id: uuid.UUID, name: ClockName, principal: Principal, if_match: str | None
    ) -> Dispute:
        dispute = await self.disputes.get(dispute_id, principal, for_update=True)
        check_if_match(if_match, dispute.version)
        keepers = CLOCK_KEEPERS.get(name, frozenset())
        if not keeps(dispute, name, principal):
            raise Forbidden(
                Text("「{rn}」不能变更{label}", "Role {r} may not change the {name} clock").format(
                    rn=ROLE_NAMES[principal.role].zh,
                    r=principal.role.value,
                    label=CLOCK_LABELS.get(name, name),
                    name=name.value,
                ),
                allowed_roles=sorted(r.value for r in keepers),
            )
        return dispute

    async def pause(
        self,
        dispute_id: uuid.UUID,
        name: ClockName,
        data: PauseIn,
        principal: Principal,
        if_match: str | None,
    ) -> tuple[Dispute, CaseClock]:
        dispute = await self._case(dispute_id, name, principal, if_match)
        clock = await self.clocks.pause(dispute, name, data.reason.value, self.disputes.clock.now())
        await self.disputes.record_work(
            dispute,
            "clock_paused",
            principal,
            data.note,
            {"clock": name.value, "reason": data.reason.value},
            "clock_paused",
        )
        return dispute, clock

    async def resume(
        self,
        dispute_id: uuid.UUID,
        name: ClockName,
        data: ResumeIn,
        principal: Principal,
        if_match: str | None,
    ) -> tuple[Dispute, CaseClock]:
        dispute = await self._case(dispute_id, name, principal, if_match)
        before = (await self.clocks.running_named(dispute, name)).due_on
        clock, skipped = await self.clocks.resume(dispute, name, self.disputes.clock.now())
        await self.disputes.follow_clock_end(dispute, clock, before)
        await self.disputes.record_work(
            dispute,
            "clock_resumed",
            principal,
            data.note,
            {"clock": name.value, "skipped": skipped, "due_on": clock.due_on.isoformat()},
            "clock_resumed",
        )
        return dispute, clock

    async def extend(
        self,
        dispute_id: uuid.UUID,
        name: ClockName,
        data: ClockExtensionIn,
        principal: Principal,
        if_match: str | None,
    ) -> tuple[Dispute, CaseClock]:
        dispute = await self._case(dispute_id, name, principal, if_match)
        rule = await self.clocks.rule_of(dispute, name)
        if (
            rule is not None
            and rule.extension is not None
            and rule.extension.consent == ExtensionConsent.all_parties
        ):
            needed = {p.id for p in dispute.parties if p.role in (PartyRole.applicant, PartyRole.respondent)}
            missing = needed - set(data.consenting_party_ids)
            if missing:
                refusal = Refusal(
                    "consent_of_all_parties",
                    Text("延长须经各方当事人同意", "An extension needs every party's consent"),
                    rule.source,
                )
                raise GuardFailed(
                    summary([refusal]),
                    reasons=[refusal.as_dict()],
                    missing_party_ids=sorted(map(str, missing)),
                )
        before = (await self.clocks.running_named(dispute, name)).due_on
        clock = await self.clocks.extend(dispute, name, data.units, data.reason, self.disputes.clock.now())
        await self.disputes.follow_clock_end(dispute, clock, before)
        await self.disputes.record_work(
            dispute,
            "clock_extended",
            principal,
            data.reason,
            {
                "clock": name.value,
                "units": data.units,
                "unit": clock.unit,
                "due_on": clock.due_on.isoformat(),
                "consenting_party_ids": [str(i) for i in data.consenting_party_ids],
            },
            "clock_extended",
        )
        return dispute, clock
