"""Every endpoint x every role, aimed at another organisation's and another region's objects.

"Theirs" is a case of the 上虞 center (region 330604), assigned to a 上虞 village committee and
sent to the 上虞 court, plus that committee's API key and that center's clerk account. Each of our
principals (诸暨 center staff, our village committee, our court, a commission, admin, auditor, and
nobody at all) calls every operation of the contract with those objects. The call must be refused,
or answer without a single byte of their data; and nothing of theirs may change.
"""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from mediation.agreements.models import Agreement, FollowUp, MediationSession, Obligation
from mediation.alerts.models import Alert, AlertCase
from mediation.bodies.models import Body, Mediator, MediatorConflict
from mediation.core.db import utcnow
from mediation.disputes.models import Dispute
from mediation.documents.models import Document
from mediation.events.models import WebhookDelivery, WebhookSubscription
from mediation.events.sequencer import sequence_pending
from mediation.handoffs.models import Handoff
from mediation.identity.models import ApiKey
from mediation.supervision.models import SupervisionOrder
from mediation.triage.rules import default_rules
from tests.support import intake_body, person

THEIR_NAMES = ("欧阳娜娜", "司马青衫")
THEIR_TEXT = "上虞某小区业主与物业因停车位收费发生纠纷"
THEIR_MINUTES = "上虞调解笔录: 双方就停车位收费标准各自陈述意见"
THEIR_FACTS = "上虞某小区物业自二〇二六年起按月加收停车管理费"
THEIR_FOLLOW_UP = "上虞回访: 物业未按期退还多收的停车费"
THEIR_ALERT = "上虞预警: 业主扬言聚集堵门"
THEIR_ORDER = "上虞督办: 三日内答复停车费争议处理进展"

# Operations any signed-in (or anonymous) caller may use: reference data and one's own identity.
PUBLIC = {
    ("get", "/v1/bodies"),
    ("get", "/v1/bodies/{body_id}"),
    ("get", "/v1/lifecycle"),
    ("get", "/v1/me"),
    ("post", "/v1/me/password"),
    ("post", "/v1/auth/token"),
    ("post", "/v1/auth/logout"),
    ("get", "/v1/events/catalogue"),
    ("get", "/v1/clock-rules"),
    ("get", "/v1/calendar/deadline"),
    ("get", "/v1/calendar/years/{year}"),
}
# Operations that create something of the caller's own (never of theirs): allowed with 201.
OWN_CREATIONS = {("post", "/v1/webhooks")}
# Roles whose job is global: admins manage every organisation's accounts and keys, auditors read
# the whole trail. For them these operations may succeed; for everyone else they are refused.
GLOBAL = {
    "admin": re.compile(r"^/v1/(users|api-keys|bodies|triage/rules|calendar)"),
    "auditor": re.compile(r"^/v1/audit-records"),
}
ROLES = [
    "clerk",
    "supervisor",
    "body_mediator",
    "body_admin",
    "court",
    "arbitration",
    "admin",
    "auditor",
    None,
]
DENIED = {401, 403, 404}


async def _their_subscription(api: Any) -> str:
    response = await api.client.post(
        "/v1/webhooks",
        json={"url": "http://127.0.0.1:9/their-hooks", "description": "上虞调委会对接"},
        headers=api.auth("body_admin", "other_village"),
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def _theirs(api: Any) -> dict[str, Any]:
    """Their case, pending confirmation at their court, with a recorded session, a signed
    agreement and the confirmation request; `api.agreements` holds the agreement's id."""
    parties = [
        {**person("applicant", THEIR_NAMES[0], 71), "address": "绍兴市上虞区"},
        {**person("respondent", THEIR_NAMES[1], 72), "address": "绍兴市上虞区"},
    ]
    dispute = await api.intake(
        "other_center", region_code="330604001000", description=THEIR_TEXT, parties=parties
    )
    other_clerk = api.headers("clerk", "other_center")
    dispute = await api.step(dispute, "accept", headers=other_clerk)
    dispute = await api.step(
        dispute,
        "assign",
        {"body_id": str(api.bodies["other_village"]), "override_reason": "村调委会熟悉双方情况"},
        headers=other_clerk,
    )
    dispute = await api.step(dispute, "sign_for")
    their_body = api.acting("body_mediator", dispute)
    scheduled = await api.client.post(
        f"/v1/disputes/{dispute['id']}/sessions",
        json={"scheduled_at": api.app.state.clock.now().isoformat(), "place": "上虞某村村委会"},
        headers=their_body,
    )
    assert scheduled.status_code == 201, scheduled.text
    session = scheduled.json()
    recorded = await api.client.post(
        f"/v1/disputes/{dispute['id']}/sessions/{session['id']}/record",
        json={
            "held_at": api.app.state.clock.now().isoformat(),
            "attendees": [
                {"party_id": p["id"], "name": p["name"], "capacity": "当事人"} for p in dispute["parties"]
            ],
            "minutes": THEIR_MINUTES,
            "outcome": "agreement_reached",
        },
        headers={**their_body, "If-Match": f'"{session["version"]}"'},
    )
    assert recorded.status_code == 200, recorded.text
    # Our clerk cannot read their case (`api.get`): their clerk fetches it after the session.
    current = await api.client.get(f"/v1/disputes/{dispute['id']}", headers=other_clerk)
    assert current.status_code == 200, current.text
    dispute = current.json()
    await api.signed_agreement(dispute, facts=THEIR_FACTS)
    dispute = await api.step(dispute, "agree")
    payload = api.payload("request_confirmation", dispute)
    payload["court_id"] = str(api.bodies["other_court"])
    dispute = await api.step(dispute, "request_confirmation", payload)
    assert dispute["status"] == "confirmation_pending"
    return dispute


def _operations(api: Any) -> list[tuple[str, str]]:
    paths = api.app.openapi()["paths"]
    return sorted(
        (method, path)
        for path, ops in paths.items()
        if path.startswith("/v1/")
        for method in ops
        if (method, path) not in PUBLIC
    )


def _body(api: Any, method: str, path: str, theirs: dict[str, Any], ids: dict[str, str]) -> Any:
    if path == "/v1/users/{user_id}/password":
        return {"password": "an intruder's long password"}
    if method == "patch" and path == "/v1/bodies/{body_id}":
        return {"description": "intruder profile", "capacity": 1}
    if method == "patch" and path.endswith("/mediators/{mediator_id}"):
        return {"title": "intruder", "active": False}
    if method == "put" and path == "/v1/triage/rules":
        return {"rules": default_rules().model_dump(mode="json"), "note": "intruder"}
    if method == "put" and path.endswith("/mediator"):
        return {"mediator_id": ids["mediator_id"]}
    if method == "put" and path.endswith("/owner"):
        return {"name": "冒名领导", "title": "intruder", "reason": "intruder"}
    today = api.today.isoformat()
    if path.endswith("/agreements") or path.endswith("/agreements/{agreement_id}"):
        return api.agreement_content(theirs, facts="intruder facts") if method != "get" else None
    if method != "post":
        return None
    if path == "/v1/bodies":
        return {
            "name": "冒名调解委员会",
            "kind": "people_mediation_committee",
            "tier": "village",
            "region_code": "330604100202",
        }
    if path.endswith("/mediators"):
        return {"name": "冒名调解员"}
    if path.endswith("/conflicts"):
        return {"relation": "intruder", "dispute_id": theirs["id"]}
    if path.endswith("/links"):
        return {"dispute_id": theirs["id"]}
    if path.endswith("/links/{other_id}/removal"):
        return {"reason": "intruder unlink"}
    if path == "/v1/disputes":
        return intake_body(region_code="330604001000", description=THEIR_TEXT)
    if path == "/v1/disputes/search-by-party":
        return {"id_number": person("applicant", THEIR_NAMES[0], 71)["id_number"]}
    if path.endswith("/consent"):
        return {"decision": "given"}
    if path.endswith("/query-code"):
        return {"cause": "lost"}
    if path.endswith("/risk-flags"):
        return {"danger": "violence", "observation": "intruder"}
    if path.endswith("/corrections"):
        applicant = theirs["parties"][0]["id"]
        return {
            "reason": "intruder",
            "parties": [{"party_id": applicant, "name": "冒名", "phone": "13912345678"}],
        }
    if "/actions/" in path:
        return api.payload(path.rsplit("/", 1)[1], theirs)
    if path == "/v1/status-lookup":
        return {"case_number": theirs["case_number"], "query_code": "WRONG234"}
    if path == "/v1/users":
        return {
            "username": f"intruder-{uuid.uuid4().hex[:6]}",
            "display_name": "x",
            "role": "clerk",
            "organisation_id": ids["their_center"],
            "password": "a long enough password",
        }
    if path == "/v1/api-keys":
        return {"organisation_id": ids["their_body"], "role": "body_mediator", "name": "intruder"}
    if path == "/v1/webhooks":
        return {"url": "http://127.0.0.1:9/our-hooks"}
    if path.endswith("/documents"):
        return None  # sent as multipart by the caller
    if path.endswith("/documents/{document_id}/withdraw"):
        return {"reason": "intruder withdrawal"}
    if path.endswith("/sessions"):
        return {"scheduled_at": api.app.state.clock.now().isoformat(), "online": True}
    if path.endswith("/sessions/{session_id}/cancel"):
        return {"reason": "intruder cancellation"}
    if path.endswith("/sessions/{session_id}/reschedule"):
        return {"scheduled_at": api.app.state.clock.now().isoformat(), "reason": "intruder move"}
    if path.endswith("/sessions/{session_id}/record"):
        return {
            "held_at": api.app.state.clock.now().isoformat(),
            "attendees": [{"name": "intruder", "capacity": "见证人"}],
            "minutes": "intruder minutes",
            "outcome": "no_agreement",
        }
    if path.endswith("/signatures"):
        return {"signer": "mediator", "method": "in_person"}
    if path.endswith("/obligations/{obligation_id}/performance"):
        return {"performed_on": today}
    if path == "/v1/follow-ups/{follow_up_id}/result":
        return {"contacted_on": today, "method": "phone", "outcome": "performed"}
    if path.endswith("/acceptance"):
        return {"decision": "accepted", "case_number": "(2026)intruder"}
    if path.endswith("/clocks/{name}/extension"):
        return {"units": 1, "reason": "intruder extension"}
    if path.endswith("/clocks/{name}/pause"):
        return {"reason": "other"}
    if path.endswith("/clocks/{name}/resume"):
        return {}
    if path.endswith("/supervision-orders"):
        return {"instruction": "intruder order"}
    if path.endswith("/response"):
        return {"response": "intruder response"}
    if path.endswith("/acknowledgement"):
        return {"note": "intruder"}
    if path.endswith("/resolution"):
        return {"resolution": "intruder resolution"}
    if path.endswith("/visit"):
        return {"visited_on": today, "contact_method": "phone", "reached": True, "satisfaction": 1}
    if path.endswith("/impossible"):
        return {"reason": "intruder"}
    if path.endswith("/extension"):
        return {"days": 10, "reason": "intruder extension"}
    if path.endswith("/decision"):
        return {"decision": "confirmed", "ruling_number": "(2026)intruder", "ruled_on": today}
    if path.endswith("/outcome"):
        return {"outcome": "judgment", "reference_number": "(2026)intruder", "decided_on": today}
    if path.endswith("/withdrawal"):
        return {"reason": "intruder withdrawal"}
    if path.endswith("/materials-request"):
        return {"items": ["intruder items"], "due_on": (api.today + timedelta(days=7)).isoformat()}
    if path.endswith("/materials-supplied"):
        return {"document_ids": [str(uuid.uuid4())]}
    if path.endswith(
        (
            "/revoke",
            "/rotate",
            "/deactivate",
            "/activate",
            "/rotate-secret",
            "/disable",
            "/enable",
            "/redeliver",
        )
    ):
        return None
    raise AssertionError(f"no request body known for {method.upper()} {path}: add one to this test")


def _leaks(text: str, secrets: list[str]) -> list[str]:
    return [s for s in secrets if s and s in text]


@pytest.mark.parametrize("role", ROLES, ids=lambda r: r or "anonymous")
async def test_no_role_reaches_another_organisations_data(api, role: str | None):
    their_subscription = await _their_subscription(api)
    theirs = await _theirs(api)
    upload = await api.client.post(
        f"/v1/disputes/{theirs['id']}/documents",
        files={"file": ("上虞借条.pdf", b"%PDF-1.4 their evidence", "application/pdf")},
        headers=api.auth("clerk", "other_center"),
    )
    assert upload.status_code == 201, upload.text
    their_document = upload.json()
    # The upload is work on their case: it moved the case's version on by one.
    theirs = {**theirs, "version": theirs["version"] + 1}
    await sequence_pending(api.app.state.db, utcnow())
    their_agreement = uuid.UUID(api.agreements[theirs["id"]])
    their_follow_up = uuid.uuid4()
    async with api.app.state.db.writer() as session, session.begin():
        their_key = await session.scalar(
            select(ApiKey).where(ApiKey.organisation_id == api.bodies["other_village"]).limit(1)
        )
        their_delivery = await session.scalar(
            select(WebhookDelivery.id)
            .where(WebhookDelivery.subscription_id == uuid.UUID(their_subscription))
            .limit(1)
        )
        their_session = await session.scalar(
            select(MediationSession.id).where(MediationSession.dispute_id == uuid.UUID(theirs["id"]))
        )
        their_obligation = await session.scalar(
            select(Obligation.id).where(Obligation.agreement_id == their_agreement)
        )
        # A follow-up in their body's inbox, as the clock raises one for an overdue obligation.
        session.add(
            FollowUp(
                id=their_follow_up,
                dispute_id=uuid.UUID(theirs["id"]),
                body_id=api.bodies["other_village"],
                kind="performance",
                obligation_id=their_obligation,
                reason=THEIR_FOLLOW_UP,
                due_on=api.today,
                status="open",
                raised_at=utcnow(),
            )
        )
        # An alert and a supervision order on their case.
        their_alert, their_order = uuid.uuid4(), uuid.uuid4()
        now = utcnow()
        session.add(
            Alert(
                id=their_alert,
                kind="risk",
                key=f"risk:{theirs['id']}",
                open_key=f"risk:{theirs['id']}",
                level="immediate",
                region_code="330604001000",
                title=THEIR_ALERT,
                details={"words": ["聚集"]},
                status="open",
                case_count=1,
                raised_at=now,
                last_seen_at=now,
                version=1,
            )
        )
        await session.flush()
        session.add(
            AlertCase(alert_id=their_alert, dispute_id=uuid.UUID(theirs["id"]), matched={}, added_at=now)
        )
        session.add(
            SupervisionOrder(
                id=their_order,
                dispute_id=uuid.UUID(theirs["id"]),
                body_id=api.bodies["other_village"],
                instruction=THEIR_ORDER,
                due_on=api.today,
                status="issued",
                issued_by="their-supervisor",
                issued_at=now,
                version=1,
            )
        )
    assert their_delivery is not None, "their subscription should have deliveries to probe"
    assert their_session is not None and their_obligation is not None
    ids = {
        "dispute_id": theirs["id"],
        # The case linked to theirs, in a removal: theirs again, which no caller of ours sees.
        "other_id": theirs["id"],
        "party_id": theirs["parties"][0]["id"],
        "key_id": str(their_key.id),
        "user_id": str(api.users[("clerk", api.bodies["other_center"])]),
        "body_id": str(api.bodies["other_village"]),
        "their_center": str(api.bodies["other_center"]),
        "their_body": str(api.bodies["other_village"]),
        "subscription_id": their_subscription,
        "delivery_id": str(their_delivery),
        "document_id": their_document["id"],
        "mediator_id": str(api.mediators[api.bodies["other_village"]]),
        "session_id": str(their_session),
        "agreement_id": str(their_agreement),
        "obligation_id": str(their_obligation),
        "handoff_id": theirs["handoff"]["id"],
        "follow_up_id": str(their_follow_up),
        "alert_id": str(their_alert),
        "order_id": str(their_order),
        "name": "confirmation_window",
        "year": "2027",
    }
    secrets = [
        theirs["id"],
        theirs["case_number"],
        THEIR_TEXT,
        *THEIR_NAMES,
        their_key.prefix,
        "their-hooks",
        str(their_delivery),
        their_document["id"],
        their_document["sha256"],
        "their evidence",
        "上虞区某调解员",  # their mediator's name
        THEIR_MINUTES,
        THEIR_FACTS,
        THEIR_FOLLOW_UP,
        THEIR_ALERT,
        THEIR_ORDER,
        ids["alert_id"],
        ids["order_id"],
        ids["session_id"],
        ids["agreement_id"],
        ids["obligation_id"],
        ids["handoff_id"],
        ids["follow_up_id"],
    ]
    headers: dict[str, str] = {"Authorization": ""} if role is None else dict(api.auth(role))
    headers["If-Match"] = f'"{theirs["version"]}"'
    operations = _operations(api)
    assert len(operations) >= 30, "the contract lost its operations?"

    checked = 0
    for method, template in operations:
        path = template
        for name, value in ids.items():
            path = path.replace("{" + name + "}", value)
        assert "{" not in path, f"unknown path parameter in {template}"
        body = _body(api, method, template, theirs, ids)
        if template == "/v1/disputes/{dispute_id}/documents" and method == "post":
            files = {"file": ("intruder.pdf", b"%PDF-1.4 intruder", "application/pdf")}
            response = await api.client.post(path, files=files, headers=headers)
        else:
            response = await api.client.request(method.upper(), path, json=body, headers=headers)
        where = f"{role or 'anonymous'}: {method.upper()} {template} -> {response.status_code}"
        global_role = role in GLOBAL and GLOBAL[role].match(template)
        if global_role:
            assert response.status_code < 500, where
            checked += 1
            continue
        if response.status_code in DENIED or (template == "/v1/disputes" and response.status_code == 422):
            assert response.headers["content-type"].startswith("application/problem+json"), where
        elif (method, template) in OWN_CREATIONS:
            assert response.status_code == 201, where
            assert response.json()["organisation_id"] != ids["their_body"], where
        else:
            # Allowed only where it is a list or search of one's own: nothing of theirs in it.
            assert method == "get" or template == "/v1/disputes/search-by-party", where
            assert response.status_code == 200, where
        # The problem's `instance` echoes the caller's own URL; anything else of theirs is a leak.
        text = response.text.replace(path, "")
        assert not _leaks(text, secrets), f"{where} leaked {_leaks(text, secrets)}"
        checked += 1
    assert checked == len(operations)

    # Nothing of theirs changed: the case (and so its timeline, which moves with its version), their key.
    async with api.app.state.db.reader() as session:
        case = await session.get(Dispute, uuid.UUID(theirs["id"]))
        assert case is not None
        assert (case.version, case.status) == (theirs["version"], "confirmation_pending")
        key = await session.get(ApiKey, their_key.id)
        successor = await session.scalar(select(ApiKey).where(ApiKey.replaces_id == their_key.id))
        subscription = await session.get(WebhookSubscription, uuid.UUID(their_subscription))
        document = await session.get(Document, uuid.UUID(their_document["id"]))
        their_body = await session.get(Body, api.bodies["other_village"])
        their_mediator = await session.get(Mediator, uuid.UUID(ids["mediator_id"]))
        conflicts = await session.scalar(select(func.count()).select_from(MediatorConflict))
        sessions = (
            await session.scalars(
                select(MediationSession).where(MediationSession.dispute_id == uuid.UUID(theirs["id"]))
            )
        ).all()
        agreements = (
            await session.scalars(select(Agreement).where(Agreement.dispute_id == uuid.UUID(theirs["id"])))
        ).all()
        obligation = await session.get(Obligation, their_obligation)
        follow_up = await session.get(FollowUp, their_follow_up)
        handoffs = (
            await session.scalars(select(Handoff).where(Handoff.dispute_id == uuid.UUID(theirs["id"])))
        ).all()
        alert = await session.get(Alert, their_alert)
        order = await session.get(SupervisionOrder, their_order)
    assert alert is not None and (alert.status, alert.version) == ("open", 1)
    assert order is not None and (order.status, order.version) == ("issued", 1)
    assert conflicts == 0
    assert [(s.id, s.version) for s in sessions] == [(their_session, 2)]
    assert [(a.id, a.status, a.version) for a in agreements] == [(their_agreement, "effective", 5)]
    assert obligation is not None and obligation.status == "pending"
    assert follow_up is not None and (follow_up.status, follow_up.result) == ("open", None)
    assert [(str(h.id), h.status, h.version) for h in handoffs] == [(ids["handoff_id"], "pending", 1)]
    if role != "admin":  # the admin manages every organisation's keys and the registry by design
        assert key is not None and key.revoked_at is None
        assert successor is None
        assert their_body is not None and their_body.version == 1
        assert their_mediator is not None and their_mediator.version == 1
    assert subscription is not None and subscription.active
    assert document is not None and document.status == "active"


async def test_lists_show_each_organisation_only_its_own(api):
    ours = await api.drive("confirmation_pending")
    theirs = await _theirs(api)

    async def listed(headers: dict[str, str]) -> set[str]:
        response = await api.client.get("/v1/disputes", headers=headers)
        assert response.status_code == 200, response.text
        return {d["id"] for d in response.json()["items"]}

    assert await listed(api.auth("clerk")) == {ours["id"]}
    assert await listed(api.auth("supervisor")) == {ours["id"]}
    assert await listed(api.auth("body_mediator", "village")) == {ours["id"]}
    assert await listed(api.auth("court", "court")) == {ours["id"]}
    assert await listed(api.auth("clerk", "other_center")) == {theirs["id"]}
    assert await listed(api.auth("body_admin", "other_village")) == {theirs["id"]}
    assert await listed(api.auth("court", "other_court")) == {theirs["id"]}
    assert await listed(api.auth("body_mediator", "town")) == set()
    assert await listed(api.auth("arbitration", "commercial_commission")) == set()
    for role in ("admin", "auditor"):
        response = await api.client.get("/v1/disputes", headers=api.auth(role))
        assert response.status_code == 403


async def test_a_body_loses_sight_of_a_case_it_returned(api):
    dispute = await api.drive("assigned")
    body = api.auth("body_mediator", "village")
    assert (await api.client.get(f"/v1/disputes/{dispute['id']}", headers=body)).status_code == 200
    returned = await api.step(dispute, "return")
    assert returned["body_id"] is None
    assert (await api.client.get(f"/v1/disputes/{dispute['id']}", headers=body)).status_code == 404


async def test_a_body_inbox_holds_its_own_cases_only(api):
    assigned = await api.drive("assigned")
    mediating = await api.drive("mediating")
    await api.drive("accepted")
    village = api.bodies["village"]
    own = await api.client.get(f"/v1/bodies/{village}/cases", headers=api.auth("body_mediator", "village"))
    assert own.status_code == 200
    assert {d["id"] for d in own.json()["items"]} == {assigned["id"], mediating["id"]}
    waiting = await api.client.get(
        f"/v1/bodies/{village}/cases",
        params={"status": "assigned"},
        headers=api.auth("body_admin", "village"),
    )
    assert [d["id"] for d in waiting.json()["items"]] == [assigned["id"]]
    other = await api.client.get(f"/v1/bodies/{village}/cases", headers=api.auth("body_mediator", "town"))
    assert other.status_code == 404
    center = await api.client.get(f"/v1/bodies/{village}/cases", headers=api.auth("clerk"))
    assert {d["id"] for d in center.json()["items"]} == {assigned["id"], mediating["id"]}
    elsewhere = await api.client.get(f"/v1/bodies/{village}/cases", headers=api.auth("clerk", "other_center"))
    assert elsewhere.json()["items"] == []


async def test_statistics_count_each_organisations_own_cases_only(api):
    ours = await api.drive("mediating")
    theirs = await _theirs(api)
    our_body, their_body = str(api.bodies["village"]), str(api.bodies["other_village"])

    async def overview(headers: dict[str, str], foreign: str, **params: str) -> dict[str, Any]:
        response = await api.client.get("/v1/stats/overview", params=params, headers=headers)
        assert response.status_code == 200, response.text
        assert foreign not in response.text
        return response.json()

    for headers in (api.auth("clerk"), api.auth("supervisor"), api.auth("body_admin", "village")):
        mine = await overview(headers, their_body)
        assert mine["totals"]["cases"] == 1
        assert [r["key"] for r in mine["by_region"]] == [ours["region_code"]]
        assert [b["key"] for b in mine["by_body"]] == [our_body]
    for headers in (api.auth("clerk", "other_center"), api.auth("body_admin", "other_village")):
        other = await overview(headers, our_body)
        assert other["totals"]["cases"] == 1
        assert [r["key"] for r in other["by_region"]] == [theirs["region_code"]]
    # A region outside the caller's own is refused, not answered empty.
    response = await api.client.get(
        "/v1/stats/overview", params={"region": "330604"}, headers=api.auth("clerk")
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["code"] == "outside_region"
    # A body's figures never include another body's cases, whatever region it names.
    elsewhere = await overview(api.auth("body_admin", "village"), their_body, region="330604")
    assert elsewhere["totals"]["cases"] == 0
