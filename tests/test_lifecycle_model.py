"""Model-based test: Hypothesis drives the API through random sequences of lifecycle actions by
random roles, and after every step checks what must always hold:

- a case's status only moves along the transition table (`lifecycle.TRANSITIONS`);
- every action that succeeds adds exactly one timeline entry and one event, and the version by one;
- versions only grow;
- an action that is refused (wrong role, wrong state, stale guard) changes nothing, and is refused
  with problem+json, never a 5xx.

Work on a case that moves no state is drawn the same way, in any state and by any role: documents
handed in and withdrawn, sittings scheduled, called off, moved and recorded, the agreement drafted,
revised and signed. Each success is one timeline entry, one event and one step of the case's version
(`DisputeService.record_work`); a sitting or an agreement version it changes moves its own version
as the answer's ETag says. A refusal leaves the case as it was, its documents, sittings and
agreement versions included.

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
from datetime import timedelta
from typing import Any, NamedTuple

import httpx
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import func, select, text

from mediation.agreements.models import Agreement, MediationSession, Signature
from mediation.app import create_app
from mediation.core.clock import FrozenClock
from mediation.core.db import Base
from mediation.core.settings import Settings
from mediation.disputes.lifecycle import Action, find_transition, transitions_from
from mediation.disputes.models import Dispute, Party
from mediation.disputes.schemas import ACTION_PAYLOADS
from mediation.documents.models import Document
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


# Work on a case that moves no state, and who does it. Mostly a role that may (the center's staff or
# the body for documents; the body for sittings and the agreement), else any role, or one of another
# organisation: those must be refused. Sittings and agreement versions are named by what the case
# holds, or by an id no case has.
DOCUMENT_ROLES = ("clerk", "supervisor", "body_mediator", "body_admin")
BODY_ROLES = ("body_mediator", "body_admin")
STRANGERS = (("clerk", "other_center"), ("body_mediator", "town"), ("body_admin", "other_village"))
NO_SUCH = "00000000-0000-4000-8000-000000000000"
# Few times and places, so a move to where the sitting already stands (session_unchanged) is drawn too.
SLOTS = ("2026-06-03T09:00:00+08:00", "2026-06-03T14:00:00+08:00", "2026-06-05T09:00:00+08:00")
PLACES = ("枫源村调委会调解室", "枫桥镇调解室")
# Few texts of the agreement, so a revision that changes nothing (agreement_unchanged) is drawn too.
TERMS = ("双方今后互相谅解, 不再就此事发生争执。", "被申请人修缮院墙排水。", "申请人撤回其余请求。")
OUTCOMES = (
    "continued",
    "adjourned",
    "agreement_reached",
    "party_absent",
    "party_refused",
    "termination_demanded",
    "no_agreement",
)
# The share of the work in a sequence: in how many sequences of ten a case starts in mediation
# besides the registered one (its intake and three actions cost as much as a few steps), and at most
# how many of a sequence's steps are work, the rest left to the lifecycle.
MEDIATING_FROM_THE_START = 5
WORK_STEPS = 6
ENDING = frozenset({"party_refused", "termination_demanded", "no_agreement"})  # then `fail`


class Sitting(NamedTuple):
    """One sitting of the case."""

    id: str
    status: str
    version: int
    scheduled_at: Any
    place: str | None
    online: bool


class Version(NamedTuple):
    """One version of the case's agreement."""

    id: str
    number: int
    status: str
    version: int
    content_hash: str
    signatures: int


@dataclass(frozen=True)
class Seen:
    status: str
    version: int
    timeline: int
    events: int
    # What work on the case leaves behind, as the database holds it (read for work only): each
    # document (id, status, whether the service generated it), sitting and agreement version, by id.
    documents: tuple[tuple[str, str, bool], ...] = ()
    sittings: tuple[Sitting, ...] = ()
    agreements: tuple[Version, ...] = ()


class Harness:
    """The app on its own event loop, so Hypothesis (which is synchronous) can drive it."""

    def __init__(self, options: Settings) -> None:
        self.loop = asyncio.new_event_loop()
        self.app = create_app(options, FrozenClock(DEFAULT_NOW))
        self.lifespan = self.app.router.lifespan_context(self.app)
        self.run(self._start())
        self.serials = itertools.cycle(range(200, 9998, 2))
        self.reached: Counter[str] = Counter()  # statuses entered by a successful action
        self.worked: Counter[tuple[str, int]] = Counter()  # (work, status code) answered

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

    async def seen(self, case_id: str, work: bool = False) -> tuple[dict[str, Any], Seen]:
        """The case as the database holds it (read directly: a read through the API would add audit
        records of its own), in the shape the helper's payloads need; every version has its
        timeline entry and its event. With `work`, its documents, sittings and agreement versions."""
        key = uuid.UUID(case_id)
        async with self.app.state.db.reader() as session:
            dispute = await session.get(Dispute, key)
            assert dispute is not None
            parties = (
                await session.execute(select(Party.id, Party.role).where(Party.dispute_id == key))
            ).all()
            shape = {
                "id": case_id,
                "status": dispute.status,
                "version": dispute.version,
                "body_id": str(dispute.body_id) if dispute.body_id else None,
                "handoff_target_id": str(dispute.handoff_target_id) if dispute.handoff_target_id else None,
                "parties": [{"id": str(p), "role": role} for p, role in parties],
            }
            held: dict[str, Any] = {}
            if work:
                documents = await session.execute(
                    select(Document.id, Document.status, Document.generated)
                    .where(Document.dispute_id == key)
                    .order_by(Document.id)
                )
                sittings = await session.execute(
                    select(
                        MediationSession.id,
                        MediationSession.status,
                        MediationSession.version,
                        MediationSession.scheduled_at,
                        MediationSession.place,
                        MediationSession.online,
                    )
                    .where(MediationSession.dispute_id == key)
                    .order_by(MediationSession.id)
                )
                signatures = (
                    select(func.count())
                    .select_from(Signature)
                    .where(Signature.agreement_id == Agreement.id)
                    .scalar_subquery()
                )
                agreements = await session.execute(
                    select(
                        Agreement.id,
                        Agreement.number,
                        Agreement.status,
                        Agreement.version,
                        Agreement.content_hash,
                        signatures,
                    )
                    .where(Agreement.dispute_id == key)
                    .order_by(Agreement.number)
                )
                held = {
                    "documents": tuple(
                        (str(i), status, generated) for i, status, generated in documents.all()
                    ),
                    "sittings": tuple(Sitting(str(row[0]), *row[1:]) for row in sittings.all()),
                    "agreements": tuple(Version(str(row[0]), *row[1:]) for row in agreements.all()),
                }
        seen = Seen(
            dispute.status,
            dispute.version,
            await self.api.timeline_count(case_id),
            await self.api.outbox_count(case_id),
            **held,
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
            self.work_steps = 0

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

        def _before(self, case: str, work: bool = False) -> tuple[dict[str, Any], Seen]:
            dispute, seen = harness.run(harness.seen(case, work))
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
                posted = ACTION_PAYLOADS[action].model_validate(payload or {})
                transition = find_transition(before.status, Action(action), posted)
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

        @initialize(target=cases, data=st.data())
        def a_case_in_mediation(self, data: st.DataObject) -> Any:
            """In most sequences, a case the body has signed for, where sittings are held and the
            agreement drafted and signed: the lifecycle alone brings few sequences there."""
            if data.draw(st.integers(0, 9), label="a_case_in_mediation") >= MEDIATING_FROM_THE_START:
                return multiple()
            serial = next(harness.serials)
            parties = [person("applicant", "丙", serial), person("respondent", "丁", serial + 1)]
            dispute = harness.run(
                api.drive("mediating", parties=parties, description=f"邻里纠纷 {uuid.uuid4().hex[:6]}")
            )
            _, self.known[dispute["id"]] = harness.run(harness.seen(dispute["id"]))
            return str(dispute["id"])

        # ---- work on the case that moves no state --------------------------------------------------

        def _case_for_work(self, case: str, data: st.DataObject) -> str:
            """The case drawn, in whatever state it is; more often one in mediation, where sittings
            are held and the agreement drafted and signed."""
            mediating = [c for c, seen in self.known.items() if seen.status == "mediating"]
            if case not in mediating and mediating and data.draw(st.integers(0, 9), label="to_mediation") < 8:
                return str(data.draw(st.sampled_from(mediating), label="in_mediation"))
            return case

        @staticmethod
        def _first(data: st.DataObject, open_ones: list[Any]) -> bool:
            """Whether to make one first (a sitting, a draft) before working on it: when none is
            open, four times in five; the fifth works on one closed (409) or one the case does not
            have (404)."""
            return not open_ones and data.draw(st.integers(0, 4), label="make_one_first") != 0

        @staticmethod
        def _one_of(data: st.DataObject, open_ones: list[str], held: list[str], label: str) -> str:
            """Mostly one still open; else any the case holds, or an id no case has (404)."""
            pick = data.draw(st.integers(0, 9), label=f"{label}_pick")
            if open_ones and pick < 7:
                return str(data.draw(st.sampled_from(open_ones), label=label))
            if held and pick < 9:
                return str(data.draw(st.sampled_from(held), label=label))
            return NO_SUCH

        def _who(
            self, data: st.DataObject, dispute: dict[str, Any], likely: tuple[str, ...]
        ) -> tuple[str, Any]:
            """Who does the work, and their credentials: mostly a role that may, acting for the
            organisation that holds the case; else any role, or another organisation's."""
            pick = data.draw(st.integers(0, 9), label="who")
            if pick < 7:
                role = data.draw(st.sampled_from(likely), label="role")
            elif pick < 9:
                role = data.draw(st.sampled_from(ROLES), label="role")
            else:
                role, org = data.draw(st.sampled_from(STRANGERS), label="stranger")
                return f"{role} of {org}", api.auth(role, org)
            return role, api.acting(role, dispute)

        @staticmethod
        def _if_match(data: st.DataObject, version: int) -> dict[str, str]:
            """The sitting's or agreement version's ETag as last read; else an older one (412) or none (428)."""
            pick = data.draw(st.integers(0, 9), label="if_match")
            if pick < 8:
                return {"If-Match": f'"{version}"'}
            if pick < 9:
                return {"If-Match": f'"{version - 1 if version > 1 else version + 1}"'}
            return {}

        def _worked(
            self,
            work: str,
            who: str,
            case: str,
            before: Seen,
            response: httpx.Response,
            success: int,
            steps: int = 1,
        ) -> Seen | None:
            """After work on the case: done (`success`), it is `steps` timeline entries, events and
            versions of the case on, its status where it was (or where the work's own ending of
            mediation took it); refused, the case is as it was, its documents, sittings and agreement
            versions included. The case as it now is, or None when refused."""
            _, after = harness.run(harness.seen(case, work=True))
            self.known[case] = after
            harness.worked[(work, response.status_code)] += 1
            context = (work, who, response.status_code, response.text, before, after)
            assert response.status_code < 500, context
            if response.status_code != success:
                assert 400 <= response.status_code < 500, context
                assert response.headers["content-type"].startswith("application/problem+json"), context
                assert after == before, context
                return None
            assert after.version == before.version + steps, context
            assert after.timeline == before.timeline + steps, context
            assert after.events == before.events + steps, context
            if steps == 1:
                assert after.status == before.status, context
            else:
                transition = find_transition(before.status, Action.fail)
                assert transition is not None and after.status == transition.target.value, context
            return after

        @staticmethod
        def _others_unchanged(before: tuple[Any, ...], after: tuple[Any, ...], *ids: str) -> None:
            assert [r for r in before if r[0] not in ids] == [r for r in after if r[0] not in ids], (
                before,
                after,
            )

        @precondition(lambda self: self.work_steps < WORK_STEPS)
        @rule(case=cases, data=st.data())
        def work(self, case: str, data: st.DataObject) -> None:
            """Work on the case that moves no state: on its documents, its sittings or its agreement.
            One rule for the three, so that they take one share of a sequence's steps and leave the
            lifecycle the rest."""
            self.work_steps += 1
            case = self._case_for_work(case, data)
            on = data.draw(st.sampled_from(("documents", "sittings", "agreement")), label="work_on")
            {"documents": self._documents, "sittings": self._sittings, "agreement": self._agreement}[on](
                case, data
            )

        def _upload(
            self,
            case: str,
            data: st.DataObject,
            dispute: dict[str, Any],
            before: Seen,
            who: str,
            headers: Any,
        ) -> Seen | None:
            """A document handed in: the case as it then is, or None when refused."""
            parties = [p["id"] for p in dispute["parties"]]
            party = data.draw(st.sampled_from([None, *parties, NO_SUCH]), label="party")
            fields = {
                "kind": data.draw(st.sampled_from(("evidence", "power_of_attorney", "other")), label="kind"),
                **({"party_id": party} if party else {}),
            }
            response = harness.run(
                api.client.post(
                    f"/v1/disputes/{case}/documents",
                    files={"file": ("借条.txt", f"借条 {uuid.uuid4().hex}".encode(), "text/plain")},
                    data=fields,
                    headers=headers,
                )
            )
            after = self._worked("upload_document", who, case, before, response, 201)
            if after is None:
                return None
            added = (response.json()["id"], "active", False)
            assert sorted([*before.documents, added]) == list(after.documents), (before, after)
            # A document has no version of its own: the answer carries the case's.
            assert response.headers["ETag"] == f'"{after.version}"'
            return after

        def _documents(self, case: str, data: st.DataObject) -> None:
            """A document handed in, or one of the case's withdrawn: with none that may be, mostly
            one handed in first (by the same caller), so that there is one to withdraw."""
            dispute, before = self._before(case, work=True)
            who, headers = self._who(data, dispute, DOCUMENT_ROLES)
            upload = data.draw(st.booleans(), label="upload")
            # The service's own records (the receipt) are not withdrawn: 409 generated_document.
            handed_in = [
                i for i, status, generated in before.documents if status == "active" and not generated
            ]
            if upload or self._first(data, handed_in):
                after = self._upload(case, data, dispute, before, who, headers)
                if upload or after is None:
                    return
                before = after
                handed_in = [
                    i for i, status, generated in before.documents if status == "active" and not generated
                ]
            document = self._one_of(data, handed_in, [i for i, _, _ in before.documents], "document")
            response = harness.run(
                api.client.post(
                    f"/v1/disputes/{case}/documents/{document}/withdraw",
                    json={"reason": "提交有误, 撤回"},
                    # A change to the case: its ETag as last read, else an older one (412) or none (428).
                    headers={**headers, **self._if_match(data, before.version)},
                )
            )
            after = self._worked("withdraw_document", who, case, before, response, 200)
            if after is None:
                return
            assert (document, "active", False) in before.documents, (document, before)
            assert (document, "withdrawn", False) in after.documents, (document, after)
            self._others_unchanged(before.documents, after.documents, document)
            assert response.headers["ETag"] == f'"{after.version}"'

        def _schedule(
            self, case: str, data: st.DataObject, before: Seen, who: str, headers: dict[str, str]
        ) -> Seen | None:
            """A sitting scheduled: the case as it then is, or None when refused."""
            online = data.draw(st.booleans(), label="online")
            place = data.draw(st.sampled_from((None, *PLACES)), label="place")  # in person with none: 422
            body: dict[str, Any] = {
                "scheduled_at": data.draw(st.sampled_from(SLOTS), label="at"),
                "online": online,
            }
            if place:
                body["place"] = place
            response = harness.run(
                api.client.post(f"/v1/disputes/{case}/sessions", json=body, headers=headers)
            )
            after = self._worked("schedule_session", who, case, before, response, 201)
            if after is None:
                return None
            [new] = [s for s in after.sittings if s.id not in {s.id for s in before.sittings}]
            assert (new.id, new.status, new.version) == (response.json()["id"], "scheduled", 1), new
            self._others_unchanged(before.sittings, after.sittings, new.id)
            assert response.headers["ETag"] == '"1"'
            return after

        def _sittings(self, case: str, data: st.DataObject) -> None:
            """A sitting scheduled, or one of the case's called off, moved or recorded: with none to
            come, mostly one scheduled first (by the same caller), so that there is one to work on."""
            dispute, before = self._before(case, work=True)
            who, headers = self._who(data, dispute, BODY_ROLES)
            work = data.draw(st.sampled_from(("schedule", "cancel", "reschedule", "record")), label="sitting")
            if work == "schedule" or self._first(
                data, [s for s in before.sittings if s.status == "scheduled"]
            ):
                after = self._schedule(case, data, before, who, headers)
                if work == "schedule" or after is None:
                    return
                before = after
            sittings = {s.id: s for s in before.sittings}
            path = f"/v1/disputes/{case}/sessions"
            to_come = [s.id for s in before.sittings if s.status == "scheduled"]
            sitting = self._one_of(data, to_come, list(sittings), "sitting_id")
            headers = {
                **headers,
                **self._if_match(data, sittings[sitting].version if sitting in sittings else 1),
            }
            steps = 1
            if work == "cancel":
                body = {"reason": "当事人请假, 另行安排"}
            elif work == "reschedule":
                body = {
                    "scheduled_at": data.draw(st.sampled_from(SLOTS), label="at"),
                    "reason": "被申请人生病",
                }
                where = data.draw(st.sampled_from(("as it is", "online", "in person")), label="where")
                if where == "online":
                    body.update(online=True, place=None)
                elif where == "in person":
                    body.update(online=False, place=data.draw(st.sampled_from(PLACES), label="place"))
            else:
                outcome = data.draw(st.sampled_from(OUTCOMES), label="outcome")
                applicant = next(p["id"] for p in dispute["parties"] if p["role"] == "applicant")
                held = DEFAULT_NOW + timedelta(days=data.draw(st.sampled_from((0, 0, 0, 1)), label="days"))
                body = {
                    "held_at": held.isoformat(),  # a day ahead: 422 in_future
                    "attendees": [{"party_id": applicant, "name": "甲", "capacity": "当事人"}],
                    "minutes": "双方陈述了各自的意见。",
                    "outcome": outcome,
                    **(
                        {"party_id": applicant}
                        if outcome in ("party_refused", "termination_demanded")
                        else {}
                    ),
                }
                steps = 2 if outcome in ENDING else 1  # the sitting's entry, then `fail`'s
            response = harness.run(api.client.post(f"{path}/{sitting}/{work}", json=body, headers=headers))
            after = self._worked(f"{work}_session", who, case, before, response, 200, steps)
            if after is None:
                return
            [moved] = [s for s in after.sittings if s.id == sitting]
            expected = {"cancel": "cancelled", "reschedule": "scheduled", "record": "held"}[work]
            assert (moved.status, moved.version) == (expected, sittings[sitting].version + 1), (work, moved)
            assert (
                response.headers["ETag"] == f'"{moved.version}"'
                and response.json()["version"] == moved.version
            )
            if steps == 1:  # ending mediation calls off the sittings still to come
                self._others_unchanged(before.sittings, after.sittings, sitting)

        def _draft(
            self,
            case: str,
            data: st.DataObject,
            dispute: dict[str, Any],
            before: Seen,
            who: str,
            headers: dict[str, str],
        ) -> Seen | None:
            """A version of the agreement drafted: the case as it then is, or None when refused."""
            versions = {a.id: a for a in before.agreements}
            content = api.agreement_content(dispute, terms=[data.draw(st.sampled_from(TERMS), label="terms")])
            path = f"/v1/disputes/{case}/agreements"
            newest = max((a.number for a in before.agreements), default=0)
            # The newest version the client saw: mostly the newest there is; else an older one (412).
            saw = data.draw(st.sampled_from((None, newest, newest, newest - 1 if newest else 1)), label="saw")
            response = harness.run(
                api.client.post(
                    path,
                    json={**content, **({} if saw is None else {"supersedes": saw})},
                    headers=headers,
                )
            )
            after = self._worked("draft_agreement", who, case, before, response, 201)
            if after is None:
                return None
            [new] = [a for a in after.agreements if a.id not in versions]
            assert (new.id, new.number, new.status, new.version) == (
                response.json()["id"],
                newest + 1,
                "draft",
                1,
            ), new
            assert response.headers["ETag"] == '"1"'
            # The draft before it, if it was one, is set aside; nothing else changes.
            previous = next(
                (a for a in before.agreements if a.number == newest and a.status == "draft"), None
            )
            if previous is not None:
                [set_aside] = [a for a in after.agreements if a.id == previous.id]
                assert (set_aside.status, set_aside.version) == ("superseded", previous.version + 1)
            self._others_unchanged(
                before.agreements, after.agreements, new.id, *([previous.id] if previous else [])
            )
            return after

        def _agreement(self, case: str, data: st.DataObject) -> None:
            """A version of the agreement drafted, or one of the case's revised or signed: with no
            draft, mostly one drafted first (by the same caller), so that there is one to work on."""
            dispute, before = self._before(case, work=True)
            who, headers = self._who(data, dispute, BODY_ROLES)
            versions = {a.id: a for a in before.agreements}
            drafts = [a.id for a in before.agreements if a.status == "draft"]
            work = data.draw(st.sampled_from(("draft", "revise", "sign")), label="agreement")
            if work == "draft" or self._first(data, drafts):
                after = self._draft(case, data, dispute, before, who, headers)
                if work == "draft" or after is None:
                    return
                before = after
                versions = {a.id: a for a in before.agreements}
                drafts = [a.id for a in before.agreements if a.status == "draft"]
            path = f"/v1/disputes/{case}/agreements"
            content = api.agreement_content(dispute, terms=[data.draw(st.sampled_from(TERMS), label="terms")])
            agreement = self._one_of(data, drafts, list(versions), "agreement_id")
            headers = {
                **headers,
                **self._if_match(data, versions[agreement].version if agreement in versions else 1),
            }
            if work == "revise":
                response = harness.run(api.client.put(f"{path}/{agreement}", json=content, headers=headers))
            else:
                signers: list[dict[str, Any]] = [
                    *(
                        {"signer": "party", "party_id": p["id"], "method": "in_person"}
                        for p in dispute["parties"]
                    ),
                    {"signer": "mediator", "method": "in_person"},
                    {"signer": "mediator", "method": "recorded"},  # a written agreement's: 422
                    {"signer": "body_seal", "method": "seal"},
                ]
                signature = data.draw(st.sampled_from(signers), label="signature")
                response = harness.run(
                    api.client.post(f"{path}/{agreement}/signatures", json=signature, headers=headers)
                )
            after = self._worked(f"{work}_agreement", who, case, before, response, 200)
            if after is None:
                return
            [changed] = [a for a in after.agreements if a.id == agreement]
            was = versions[agreement]
            assert changed.version == was.version + 1, (was, changed)
            assert (
                response.headers["ETag"] == f'"{changed.version}"'
                and response.json()["version"] == changed.version
            )
            if work == "revise":
                assert changed.content_hash != was.content_hash and changed.signatures == 0, (was, changed)
            else:
                assert changed.signatures == was.signatures + 1, (was, changed)
                if changed.status == "effective":
                    api.agreements[case] = agreement  # what `agree` records
            self._others_unchanged(before.agreements, after.agreements, agreement)

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
        # And work on the cases was done as well as refused (the figures: `harness.worked`).
        assert {status < 300 for (_, status) in harness.worked} == {True, False}, harness.worked
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
