"""Model-based test: Hypothesis drives the API through random sequences of lifecycle actions by
random roles, and after every step checks what must always hold:

- a case's status only moves along the transition table (`lifecycle.TRANSITIONS`);
- every action that succeeds adds exactly one timeline entry and one event, and the version by one;
- versions only grow;
- an action that is refused (wrong role, wrong state, stale guard) changes nothing, and is refused
  with problem+json, never a 5xx.

Each sequence registers its own cases in one database; Hypothesis shrinks a failing sequence to the
shortest one that breaks an invariant.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

import httpx
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import select, text

from mediation.app import create_app
from mediation.core.clock import FrozenClock
from mediation.core.db import Base
from mediation.core.settings import Settings
from mediation.disputes.lifecycle import Action, find_transition, transitions_from
from mediation.disputes.models import Dispute, Party
from tests.conftest import DEFAULT_NOW
from tests.support import Api, person

ROLES = ("clerk", "supervisor", "body_mediator", "body_admin", "court", "arbitration", "auditor", "admin")
ACTIONS = tuple(a.value for a in Action)
# At least 200 sequences in every run of the suite; `make fuzz` asks for more (MODEL_SEQUENCES).
SEQUENCES = {"sqlite": 150, "postgresql": 50}
SCALE = float(os.environ.get("MODEL_SEQUENCES_SCALE", "1"))
STEPS = 20
# The actions that move a case on towards its end, drawn most often so sequences go deep.
FORWARD = frozenset(
    {
        "accept",
        "assign",
        "sign_for",
        "agree",
        "request_confirmation",
        "confirm",
        "record_performance",
        "close",
        "archive",
    }
)


@dataclass(frozen=True)
class Seen:
    status: str
    version: int
    timeline: int
    events: int


class Harness:
    """The app on its own event loop, so Hypothesis (which is synchronous) can drive it."""

    def __init__(self, options: Settings) -> None:
        self.loop = asyncio.new_event_loop()
        self.app = create_app(options, FrozenClock(DEFAULT_NOW))
        self.lifespan = self.app.router.lifespan_context(self.app)
        self.run(self._start())
        self.serials = itertools.cycle(range(200, 9998, 2))
        self.reached: Counter[str] = Counter()  # statuses entered by a successful action

    async def _start(self) -> None:
        db = self.app.state.db
        if not db.is_sqlite:
            tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
            async with db.engine.begin() as conn:
                await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        await self.lifespan.__aenter__()
        transport = httpx.ASGITransport(app=self.app)
        self.client = httpx.AsyncClient(transport=transport, base_url="http://mediation.test")
        self.api = Api(self.client, self.app)
        await self.api.create_bodies()
        await self.api.create_principals()

    def run(self, work: Any) -> Any:
        return self.loop.run_until_complete(work)

    def close(self) -> None:
        async def stop() -> None:
            await self.client.aclose()
            await self.lifespan.__aexit__(None, None, None)

        self.run(stop())
        self.loop.close()

    async def seen(self, case_id: str) -> tuple[dict[str, Any], Seen]:
        """The case as the database holds it (read directly: a read through the API would add audit
        records of its own), in the shape the helper's payloads need; every version has its
        timeline entry and its event."""
        key = uuid.UUID(case_id)
        async with self.app.state.db.reader() as session:
            dispute = await session.get(Dispute, key)
            assert dispute is not None
            parties = (await session.scalars(select(Party.id).where(Party.dispute_id == key))).all()
            shape = {
                "id": case_id,
                "status": dispute.status,
                "version": dispute.version,
                "body_id": str(dispute.body_id) if dispute.body_id else None,
                "handoff_target_id": str(dispute.handoff_target_id) if dispute.handoff_target_id else None,
                "parties": [{"id": str(p)} for p in parties],
            }
        seen = Seen(
            dispute.status,
            dispute.version,
            await self.api.timeline_count(case_id),
            await self.api.outbox_count(case_id),
        )
        assert seen.timeline == seen.version and seen.events == seen.version, seen
        return shape, seen


def machine(harness: Harness) -> type[RuleBasedStateMachine]:
    api = harness.api

    class Lifecycle(RuleBasedStateMachine):
        cases = Bundle("cases")

        def __init__(self) -> None:
            super().__init__()
            self.known: dict[str, Seen] = {}

        def _register(self) -> str:
            serial = next(harness.serials)
            parties = [person("applicant", "甲", serial), person("respondent", "乙", serial + 1)]
            dispute = harness.run(api.intake(parties=parties, description=f"邻里纠纷 {uuid.uuid4().hex[:6]}"))
            _, seen = harness.run(harness.seen(dispute["id"]))
            self.known[dispute["id"]] = seen
            return str(dispute["id"])

        @initialize(target=cases)
        def first_case(self) -> str:
            return self._register()

        @precondition(lambda self: len(self.known) < 3)
        @rule(target=cases)
        def another_case(self) -> str:
            return self._register()

        def _before(self, case: str) -> tuple[dict[str, Any], Seen]:
            dispute, seen = harness.run(harness.seen(case))
            assert seen.version >= self.known[case].version  # versions only grow
            return dispute, seen

        @rule(case=cases, data=st.data())
        def act(self, case: str, data: st.DataObject) -> None:
            dispute, before = self._before(case)
            # Mostly an action the table offers in this state by a role it names, so sequences get
            # deep into the lifecycle; otherwise anything by anyone, which must be refused cleanly.
            offered = transitions_from(before.status)
            forward = [t for t in offered if t.action.value in FORWARD]
            pick = data.draw(st.integers(0, 9), label="pick")
            if offered and pick < 8:
                transition = data.draw(
                    st.sampled_from(forward if forward and pick < 6 else offered), label="transition"
                )
                action = transition.action.value
                callers = sorted(r.value for r in transition.roles if r.value in ROLES)  # not "system"
                role = data.draw(st.sampled_from(callers or list(ROLES)), label="role")
            else:
                action = data.draw(st.sampled_from(ACTIONS), label="action")
                role = data.draw(st.sampled_from(ROLES), label="role")
            payload = api.payload(action, dispute)
            response = harness.run(
                api.client.post(
                    f"/v1/disputes/{case}/actions/{action}",
                    json=payload,
                    headers={**api.acting(role, dispute), "If-Match": f'"{dispute["version"]}"'},
                )
            )
            _, after = harness.run(harness.seen(case))
            assert response.status_code < 500, response.text
            if response.status_code == 200:
                transition = find_transition(before.status, Action(action))
                assert transition is not None, (before.status, action)
                assert after.status == transition.target.value, (before.status, action, after.status)
                assert after.version == before.version + 1, (action, before, after)
                assert after.timeline == before.timeline + 1, (action, before, after)
                assert after.events == before.events + 1, (action, before, after)
                assert response.json()["version"] == after.version
                harness.reached[after.status] += 1
            else:
                assert response.headers["content-type"].startswith("application/problem+json")
                assert after == before, (action, role, response.status_code, before, after)
            self.known[case] = after

        @rule(case=cases)
        def sign_an_agreement(self, case: str) -> None:
            """Mediation work that is not a transition: draft and sign, so `agree` can succeed."""
            dispute, before = self._before(case)
            if dispute["status"] != "mediating" or case in api.agreements:
                return
            harness.run(api.signed_agreement(harness.run(api.get(dispute))))
            _, after = harness.run(harness.seen(case))
            assert after.status == before.status and after.version >= before.version
            self.known[case] = after

        @rule(case=cases)
        def target_accepts(self, case: str) -> None:
            """The court or commission acknowledges a handoff (a precondition of its decisions)."""
            dispute, before = self._before(case)
            if not dispute["handoff_target_id"]:
                return
            full = harness.run(api.get(dispute))
            if not (full.get("handoff") or {}).get("id"):
                return
            dossier = harness.run(api.handoff(full))
            if dossier["handoff"]["status"] != "pending":
                return
            harness.run(api.target_accepts(full))
            _, after = harness.run(harness.seen(case))
            assert after.status == before.status and after.version > before.version
            self.known[case] = after

    return Lifecycle


def test_random_action_sequences_keep_the_lifecycle_invariants(database_url: str, settings: Settings) -> None:
    harness = Harness(settings)
    try:
        kind = "sqlite" if database_url.startswith("sqlite") else "postgresql"
        run_state_machine_as_test(
            machine(harness),
            settings=settings_for(max(1, int(SEQUENCES[kind] * SCALE))),
        )
        print("statuses reached:", dict(harness.reached))
        if SEQUENCES[kind] * SCALE < 50:
            return
        # The sequences got past the window: a model that only ever saw refusals would prove little.
        assert {"accepted", "assigned", "mediating"} <= harness.reached.keys(), harness.reached
    finally:
        harness.close()


def settings_for(sequences: int) -> Any:
    return hypothesis_settings(
        max_examples=sequences,
        stateful_step_count=STEPS,
        deadline=None,
        derandomize=False,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        database=None,
    )
