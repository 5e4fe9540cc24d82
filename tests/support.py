"""A small client for the tests: intake, actions with If-Match, driving a case to any state."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import func, select, text
from stdnum.cn import ric, uscc

from mediation.alerts.service import AlertService
from mediation.bodies.models import MEDIATING_KINDS, Body, BodyJurisdiction, Mediator
from mediation.disputes.identity import region_prefix
from mediation.disputes.models import Dispute, TimelineEntry
from mediation.events.models import OutboxEvent
from mediation.identity.credentials import new_api_key
from mediation.identity.models import ApiKey, User

# Staff sign in (JWT); bodies, courts and commissions call with API keys.
STAFF_HOME = {"clerk": "center", "supervisor": "center", "admin": None, "auditor": None}
STAFF_ELSEWHERE = [("clerk", "other_center"), ("supervisor", "other_center")]
MACHINE_HOMES = {
    "body_mediator": ("village", "town", "labour_mediation", "suspended", "other_village"),
    "body_admin": ("village", "town", "labour_mediation", "suspended", "other_village"),
    "court": ("court", "other_court"),
    "arbitration": ("labour_commission", "commercial_commission"),
}
DEFAULT_HOME = {
    "body_mediator": "village",
    "body_admin": "village",
    "court": "court",
    "arbitration": "commercial_commission",
}

# The CSRF token the tests' browsers carry, as the cookie and as the forms' field.
CSRF = "c" * 43

# How a new case reaches each state.
PATHS: dict[str, list[str]] = {
    "registered": [],
    "declined": ["decline"],
    "accepted": ["accept"],
    "assigned": ["accept", "assign"],
    "mediating": ["accept", "assign", "sign_for"],
    "agreement_signed": ["accept", "assign", "sign_for", "agree"],
    "performed": ["accept", "assign", "sign_for", "agree", "record_performance"],
    "confirmation_pending": ["accept", "assign", "sign_for", "agree", "request_confirmation"],
    "confirmed": ["accept", "assign", "sign_for", "agree", "request_confirmation", "court_accept", "confirm"],
    "confirmation_rejected": [
        "accept",
        "assign",
        "sign_for",
        "agree",
        "request_confirmation",
        "court_accept",
        "reject",
    ],
    "mediation_failed": ["accept", "assign", "sign_for", "fail"],
    "withdrawn": ["accept", "assign", "sign_for", "withdraw"],
    "referred_arbitration": ["accept", "assign", "sign_for", "fail", "refer_arbitration"],
    "referred_litigation": ["accept", "assign", "sign_for", "fail", "refer_litigation"],
    "closed": ["accept", "assign", "sign_for", "agree", "record_performance", "close"],
    "archived": ["accept", "assign", "sign_for", "agree", "record_performance", "close", "archive"],
}

# A role that may take each action (the first one the table names is as good as any).
ROLE = {
    "accept": "clerk",
    "decline": "clerk",
    "assign": "clerk",
    "sign_for": "body_mediator",
    "return": "body_mediator",
    "transfer": "body_admin",
    "escalate": "supervisor",
    "withdraw": "clerk",
    "agree": "body_mediator",
    "fail": "body_mediator",
    "request_confirmation": "body_mediator",
    "withdraw_confirmation": "body_mediator",
    "record_performance": "body_mediator",
    "confirm": "court",
    "reject": "court",
    "not_accept": "court",
    "remediate": "body_mediator",
    "refer_arbitration": "body_admin",
    "refer_litigation": "body_admin",
    "record_outcome": "court",
    "close": "clerk",
    "archive": "clerk",
}


def resident_id(serial: int, born: date = date(1990, 5, 17), region: str = "330681") -> str:
    first17 = f"{region}{born:%Y%m%d}{serial % 1000:03d}"
    return first17 + ric.calc_check_digit(first17 + "0")


def person(role: str, name: str, serial: int = 1) -> dict[str, Any]:
    return {
        "role": role,
        "kind": "person",
        "name": name,
        "id_type": "resident_id",
        "id_number": resident_id(serial),
        "phone": f"1380000{serial:04d}",
        "address": "浙江省诸暨市枫桥镇",
    }


def organisation(role: str, name: str, serial: int = 1, **more: Any) -> dict[str, Any]:
    """A company identified by a valid USCC (GB 32100), `serial` telling companies apart."""
    first17 = f"91330681MA2C{serial:05d}"
    return {
        "role": role,
        "kind": "organisation",
        "name": name,
        "id_type": "uscc",
        "id_number": first17 + uscc.calc_check_digit(first17),
        **more,
    }


def intake_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "category": "neighbour",
        "description": "相邻双方因院墙滴水发生争执, 申请调解。",
        "channel": "window",
        "region_code": "330681105201",
        "amount_in_dispute": "1200.00",
        "parties": [person("applicant", "张三", 1), person("respondent", "李四", 2)],
    }
    body.update(overrides)
    return body


def staff_user(
    username: str, display_name: str, role: str, org_id: uuid.UUID | None, password_hash: str, now: datetime
) -> User:
    """An active staff account, its password set by itself (not temporary)."""
    return User(
        id=uuid.uuid4(),
        username=username,
        display_name=display_name,
        role=role,
        organisation_id=org_id,
        password_hash=password_hash,
        active=True,
        created_at=now,
        password_changed_at=now,
    )


class Api:
    def __init__(self, client: httpx.AsyncClient, app: Any) -> None:
        self.client = client
        self.app = app
        self.bodies: dict[str, uuid.UUID] = {}
        self.keys: dict[tuple[str, uuid.UUID], str] = {}
        self.tokens: dict[tuple[str, uuid.UUID | None], str] = {}
        self.users: dict[tuple[str, uuid.UUID | None], uuid.UUID] = {}
        self.mediators: dict[uuid.UUID, uuid.UUID] = {}  # body id -> its first mediator
        self.agreements: dict[str, str] = {}  # case id -> the signed agreement `agree` records

    @property
    def today(self) -> date:
        return self.app.state.clock.today()

    async def create_bodies(self) -> None:
        specs = {
            "center": ("诸暨市矛盾纠纷调处化解中心", "mediation_center", "county", "330681000000", True),
            "other_center": (
                "上虞区矛盾纠纷调处化解中心",
                "mediation_center",
                "county",
                "330604000000",
                True,
            ),
            "other_village": (
                "上虞区某村人民调解委员会",
                "people_mediation_committee",
                "village",
                "330604100201",
                True,
            ),
            "village": (
                "枫源村人民调解委员会",
                "people_mediation_committee",
                "village",
                "330681105201",
                True,
            ),
            "town": ("枫桥镇人民调解委员会", "people_mediation_committee", "town", "330681105000", True),
            "labour_mediation": (
                "市劳动争议人民调解委员会",
                "industry_mediation",
                "county",
                "330681000000",
                True,
            ),
            "suspended": (
                "暂停工作的调解委员会",
                "people_mediation_committee",
                "town",
                "330681105000",
                False,
            ),
            "court": ("诸暨市人民法院", "court", "county", "330681000000", True),
            "other_court": ("上虞区人民法院", "court", "county", "330604000000", True),
            "labour_commission": (
                "劳动人事争议仲裁委员会",
                "labour_arbitration_commission",
                "county",
                "330681000000",
                True,
            ),
            "commercial_commission": (
                "绍兴仲裁委员会",
                "commercial_arbitration_commission",
                "city",
                "330600000000",
                True,
            ),
        }
        categories = {"labour_mediation": ["labour"]}
        async with self.app.state.db.writer() as session, session.begin():
            for key, (name, kind, tier, region, active) in specs.items():
                body = Body(
                    id=uuid.uuid4(),
                    name=name,
                    kind=kind,
                    tier=tier,
                    region_code=region,
                    active=active,
                    categories=categories.get(key, []),
                    created_at=datetime.now(UTC),
                )
                session.add(body)
                await session.flush()
                session.add(BodyJurisdiction(body_id=body.id, region_prefix=region_prefix(region)))
                if kind in MEDIATING_KINDS:
                    mediator = Mediator(
                        id=uuid.uuid4(),
                        body_id=body.id,
                        name=f"{name[:4]}调解员",
                        created_at=datetime.now(UTC),
                    )
                    session.add(mediator)
                    self.mediators[body.id] = mediator.id
                self.bodies[key] = body.id

    async def create_principals(self) -> None:
        """One signed-in user per staff role, one API key per machine role and organisation."""
        identity = self.app.state.identity
        password_hash = identity.passwords.hash("correct horse battery staple")
        now = datetime.now(UTC)
        async with self.app.state.db.writer() as session, session.begin():
            for role, home in [*STAFF_HOME.items(), *STAFF_ELSEWHERE]:
                org_id = self.bodies[home] if home else None
                user = staff_user(
                    f"test-{role}-{home or 'none'}", f"测试{role}", role, org_id, password_hash, now
                )
                session.add(user)
                self.users[(role, org_id)] = user.id
                self.tokens[(role, org_id)] = identity.tokens.issue(user.id, role, org_id).token
            for role, homes in MACHINE_HOMES.items():
                for home in homes:
                    self._add_api_key(session, f"test {role} {home}", role, self.bodies[home], now)

    def _add_api_key(self, session: Any, name: str, role: str, org_id: uuid.UUID, now: datetime) -> None:
        """An API key for `role` at the organisation, its secret kept for `auth`."""
        issued = new_api_key()
        key_id = uuid.uuid4()
        session.add(
            ApiKey(
                id=key_id,
                lineage_id=key_id,
                name=name,
                prefix=issued.prefix,
                secret_hash=issued.secret_hash,
                role=role,
                organisation_id=org_id,
                created_by="test",
                created_at=now,
            )
        )
        self.keys[(role, org_id)] = issued.secret

    async def signed_in(self, role: str, org: str) -> dict[str, str]:
        """A staff token for `role` at the body `org`, its account made at first use: for a role the
        fixture gives an API key (`auth`), acting as a person signed in, e.g. a body's administrator
        managing its keys."""
        org_id = self.bodies[org]
        if (role, org_id) not in self.tokens:
            identity = self.app.state.identity
            now = datetime.now(UTC)
            password_hash = identity.passwords.hash("correct horse battery staple")
            user = staff_user(f"test-{role}-{org}", f"测试{role}", role, org_id, password_hash, now)
            async with self.app.state.db.writer() as session, session.begin():
                session.add(user)
            self.users[(role, org_id)] = user.id
            self.tokens[(role, org_id)] = identity.tokens.issue(user.id, role, org_id).token
        return {"Authorization": f"Bearer {self.tokens[(role, org_id)]}"}

    async def expiring_key(self, org: str = "village", hours: int = 1) -> dict[str, Any]:
        """An API key of the body `org`'s administrator that expires in `hours`, as created (its
        `id` and `secret`): what a subscription made with it lapses with."""
        created = await self.client.post(
            "/v1/api-keys",
            json={
                "organisation_id": str(self.bodies[org]),
                "role": "body_admin",
                "name": "临时密钥",
                "expires_at": (datetime.now(UTC) + timedelta(hours=hours)).isoformat(),
            },
            headers=await self.signed_in("body_admin", org),
        )
        assert created.status_code == 201, created.text
        return dict(created.json())

    async def add_rural_land_commission(self) -> uuid.UUID:
        """The county's rural land contract arbitration commission, which answers its handoffs as
        `arbitration` with an API key of its own."""
        now = datetime.now(UTC)
        async with self.app.state.db.writer() as session, session.begin():
            body = Body(
                id=uuid.uuid4(),
                name="诸暨市农村土地承包仲裁委员会",
                kind="rural_land_arbitration_commission",
                tier="county",
                region_code="330681000000",
                active=True,
                categories=[],
                created_at=now,
            )
            session.add(body)
            await session.flush()
            session.add(BodyJurisdiction(body_id=body.id, region_prefix=region_prefix(body.region_code)))
            self._add_api_key(session, "rural land commission", "arbitration", body.id, now)
        return body.id

    def auth(self, role: str = "clerk", org: str | uuid.UUID | None = None) -> dict[str, str]:
        """Credentials for `role`; machine roles belong to `org` (a body key or id), else a default."""
        if org is None:
            org = STAFF_HOME[role] if role in STAFF_HOME else DEFAULT_HOME[role]
        org_id = self.bodies[org] if isinstance(org, str) else org
        if role in STAFF_HOME:
            return {"Authorization": f"Bearer {self.tokens[(role, org_id)]}"}
        return {"X-API-Key": self.keys[(role, org_id)]}

    def role_for(self, roles: Any, dispute: dict[str, Any]) -> str:
        """Of the roles a transition allows, one whose organisation can see the case now."""
        names = sorted(str(getattr(r, "value", r)) for r in roles)
        if dispute.get("handoff_target_id"):
            preferred = ["court", "arbitration", "body_admin", "body_mediator", "clerk", "supervisor"]
        elif dispute.get("body_id"):
            preferred = ["body_mediator", "body_admin", "clerk", "supervisor"]
        else:
            preferred = ["clerk", "supervisor"]
        return next((r for r in preferred if r in names), names[0])

    def headers(
        self, role: str = "clerk", org: str | uuid.UUID | None = None, **extra: str
    ) -> dict[str, str]:
        return {**self.auth(role, org), **extra}

    def acting(self, role: str, dispute: dict[str, Any]) -> dict[str, str]:
        """Credentials of the organisation that holds the case in `role`'s part of the process."""
        org: Any = None
        if role in ("body_mediator", "body_admin") and dispute.get("body_id"):
            org = uuid.UUID(str(dispute["body_id"]))
        elif role in ("court", "arbitration") and dispute.get("handoff_target_id"):
            org = uuid.UUID(str(dispute["handoff_target_id"]))
            if (role, org) not in self.keys:
                # Handed to the other kind (a court's role for a case at an arbitration
                # commission): the role acts from its usual home, which must be refused cleanly.
                org = None
        return self.auth(role, org)

    async def intake(self, as_: str = "center", **overrides: Any) -> dict[str, Any]:
        response = await self.client.post(
            "/v1/disputes", json=intake_body(**overrides), headers=self.headers("clerk", as_)
        )
        assert response.status_code == 201, response.text
        return response.json()

    async def get(self, dispute: dict[str, Any]) -> dict[str, Any]:
        response = await self.client.get(f"/v1/disputes/{dispute['id']}", headers=self.auth())
        assert response.status_code == 200, response.text
        return response.json()

    async def case_if_match(self, dispute_id: str | uuid.UUID) -> dict[str, str]:
        """`If-Match` with the case's ETag as it is now, for a change made through one of its parts
        (a follow-up task, an obligation) by a caller who holds the part rather than the case."""
        return {"If-Match": f'"{(await self.get({"id": str(dispute_id)}))["version"]}"'}

    def payload(self, action: str, dispute: dict[str, Any]) -> dict[str, Any] | None:
        party_ids = [p["id"] for p in dispute["parties"]]
        today = self.today.isoformat()
        payloads: dict[str, dict[str, Any] | None] = {
            "accept": None,
            "decline": {"reason": "属于治安案件, 应由公安机关处理", "advice": "police"},
            # The village committee, whatever triage recommends: a reason keeps the helper usable
            # for every category and region (tests of triage itself pass their own payloads).
            "assign": {"body_id": str(self.bodies["village"]), "override_reason": "测试: 指派村调委会"},
            "sign_for": (
                {"mediator_id": str(self.mediators[uuid.UUID(str(dispute["body_id"]))])}
                if dispute.get("body_id")
                else {}
            ),
            "return": {"reason": "不属于本委员会管辖"},
            "transfer": {"reason": "需由专业调解组织调解"},
            "escalate": {"reason": "案情复杂, 报请上级调解"},
            "withdraw": {"reason": "申请人撤回申请"},
            # The signed agreement prepared for this case (see `act`), else one that does not exist.
            "agree": {"agreement_id": self.agreements.get(dispute["id"], str(uuid.uuid4()))},
            "fail": {"reason_code": "positions_too_far_apart"},
            "request_confirmation": {
                "court_id": str(self.bodies["court"]),
                "basis": "body_location",
                "applicant_party_ids": party_ids,
            },
            "withdraw_confirmation": {"reason": "双方当事人撤回司法确认申请"},
            "record_performance": {"performed_on": today},
            "confirm": {"ruling_number": "(2026)浙0681民特1号", "ruled_on": today},
            "reject": {
                "ground": "unclear_content",
                "ruling_number": "(2026)浙0681民特2号",
                "ruled_on": today,
            },
            "not_accept": {"reason_code": "outside_court_scope"},
            "remediate": {"reason": "当事人同意重新调解"},
            "refer_arbitration": {
                "commission_id": str(self.bodies["commercial_commission"]),
                "arbitration_agreement": "合同第十二条仲裁条款",
            },
            "refer_litigation": {
                "court_id": str(self.bodies["court"]),
                "claims": "请求判令被申请人赔偿损失。",
            },
            # A commission awards, a court gives judgment (handoffs.answers.DECIDERS).
            "record_outcome": (
                {"outcome": "award", "reference_number": "绍仲裁字(2026)第9号", "decided_on": today}
                if dispute["status"] == "referred_arbitration"
                else {"outcome": "judgment", "reference_number": "(2026)浙0681民初9号", "decided_on": today}
            ),
            "close": None,
            "archive": {
                "follow_up": {"contact_method": "phone", "satisfaction": 5, "agreement_performed": True}
            },
        }
        return payloads[action]

    async def act(
        self,
        dispute: dict[str, Any],
        action: str,
        payload: dict[str, Any] | None = None,
        *,
        role: str | None = None,
        use_default: bool = True,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        if (
            action == "agree"
            and payload is None
            and use_default
            and dispute["status"] == "mediating"
            and dispute["id"] not in self.agreements
        ):
            await self.signed_agreement(dispute)
        body = payload if payload is not None or not use_default else self.payload(action, dispute)
        if action == "remediate":
            # Re-mediation sets the rejected agreement aside; the next `agree` needs a new version.
            self.agreements.pop(dispute["id"], None)
        return await self.client.post(
            f"/v1/disputes/{dispute['id']}/actions/{action}",
            json=body,
            headers={
                **self.acting(role or ROLE[action], dispute),
                "If-Match": f'"{dispute["version"]}"',
                **(headers or {}),
            },
        )

    async def step(
        self, dispute: dict[str, Any], action: str, payload: dict[str, Any] | None = None, **kw: Any
    ) -> dict[str, Any]:
        response = await self.act(dispute, action, payload, **kw)
        assert response.status_code == 200, f"{action}: {response.text}"
        return response.json()

    async def drive(self, state: str, **intake_overrides: Any) -> dict[str, Any]:
        dispute = await self.intake(**intake_overrides)
        for action in PATHS[state]:
            if action == "court_accept":
                dispute = await self.target_accepts(dispute)
                continue
            dispute = await self.step(dispute, action)
        assert dispute["status"] == state
        return dispute

    # ---- agreements and handoffs -----------------------------------------------------------------

    def agreement_content(self, dispute: dict[str, Any], **overrides: Any) -> dict[str, Any]:
        applicant = next(p["id"] for p in dispute["parties"] if p["role"] == "applicant")
        respondent = next(p["id"] for p in dispute["parties"] if p["role"] == "respondent")
        content: dict[str, Any] = {
            "facts": "双方因院墙滴水发生争执。",
            "disputed_matters": "屋檐滴水造成的损失及修缮责任。",
            "responsibility": "被申请人负主要责任。",
            "terms": ["双方今后互相谅解, 不再就此事发生争执。"],
            "obligations": [
                {
                    "obligor_party_id": respondent,
                    "obligee_party_id": applicant,
                    "kind": "payment",
                    "amount": "1200.00",
                    "description": "赔偿损失",
                    "place": "枫源村调委会",
                    "manner": "现金当面支付",
                    "due_on": (self.today + timedelta(days=15)).isoformat(),
                }
            ],
        }
        content.update(overrides)
        return content

    async def draft_agreement(self, dispute: dict[str, Any], **overrides: Any) -> dict[str, Any]:
        response = await self.client.post(
            f"/v1/disputes/{dispute['id']}/agreements",
            json=self.agreement_content(dispute, **overrides),
            headers=self.acting("body_mediator", dispute),
        )
        assert response.status_code == 201, response.text
        await self.keep_current(dispute)
        return response.json()

    async def keep_current(self, dispute: dict[str, Any]) -> None:
        """Drafting and signing the agreement land on the case's timeline and move the case's
        version (its ETag) on: the caller's copy of the case takes the new one, as a client reads
        the case again before acting on it. Read from the database: a read through the API would
        add audit records of its own."""
        async with self.app.state.db.reader() as session:
            version = await session.scalar(
                select(Dispute.version).where(Dispute.id == uuid.UUID(str(dispute["id"])))
            )
        dispute["version"] = version

    async def if_match(self, dispute: dict[str, Any]) -> dict[str, str]:
        """The case's current ETag as an If-Match header, as a client that read the case just
        before acting sends it (read from the database, for the reason `keep_current` gives)."""
        current = {"id": dispute["id"]}
        await self.keep_current(current)
        return {"If-Match": f'"{current["version"]}"'}

    async def sign(
        self, dispute: dict[str, Any], agreement: dict[str, Any], **signature: Any
    ) -> httpx.Response:
        """Record a signature on `agreement` as the caller last read it (its version in If-Match);
        the caller's copy of the case follows it (`keep_current`)."""
        response = await self.client.post(
            f"/v1/disputes/{dispute['id']}/agreements/{agreement['id']}/signatures",
            json=signature,
            headers={**self.acting("body_mediator", dispute), "If-Match": f'"{agreement["version"]}"'},
        )
        await self.keep_current(dispute)
        return response

    async def sign_all(self, dispute: dict[str, Any], agreement: dict[str, Any]) -> dict[str, Any]:
        for waiting in agreement["awaiting_signatures"]:
            if waiting["signer"] == "party":
                signature = {"signer": "party", "party_id": waiting["party_id"], "method": "in_person"}
            elif waiting["signer"] == "mediator":
                method = "recorded" if agreement["form"] == "oral" else "in_person"
                signature = {"signer": "mediator", "method": method}
            else:
                signature = {"signer": "body_seal", "method": "seal"}
            response = await self.sign(dispute, agreement, **signature)
            assert response.status_code == 200, response.text
            agreement = response.json()
        assert agreement["status"] == "effective", agreement
        return agreement

    async def signed_agreement(self, dispute: dict[str, Any], **overrides: Any) -> dict[str, Any]:
        """Draft the agreement and have everyone sign it; `agree` then records it on the case."""
        agreement = await self.sign_all(dispute, await self.draft_agreement(dispute, **overrides))
        self.agreements[dispute["id"]] = agreement["id"]
        return agreement

    async def handoff(self, dispute: dict[str, Any], role: str | None = None) -> dict[str, Any]:
        handoff_id = dispute["handoff"]["id"]
        if dispute["handoff_target_id"] is None:
            # A request withdrawn: the court no longer reads the case; the center does.
            response = await self.client.get(f"/v1/handoffs/{handoff_id}", headers=self.auth(role or "clerk"))
            assert response.status_code == 200, response.text
            return dict(response.json())
        target = uuid.UUID(str(dispute["handoff_target_id"]))
        who = role or (
            "court"
            if dispute["handoff"]["kind"] in ("judicial_confirmation", "litigation")
            else "arbitration"
        )
        response = await self.client.get(f"/v1/handoffs/{handoff_id}", headers=self.auth(who, target))
        assert response.status_code == 200, response.text
        return response.json()

    async def target_accepts(
        self, dispute: dict[str, Any], case_number: str = "(2026)浙0681民特1号"
    ) -> dict[str, Any]:
        """The court or commission acknowledges acceptance with its own case number."""
        dossier = await self.handoff(dispute)
        who = (
            "court"
            if dossier["handoff"]["kind"] in ("judicial_confirmation", "litigation")
            else "arbitration"
        )
        response = await self.client.post(
            f"/v1/handoffs/{dossier['handoff']['id']}/acceptance",
            json={"decision": "accepted", "case_number": case_number},
            headers={
                **self.auth(who, uuid.UUID(dossier["handoff"]["target_id"])),
                "If-Match": f'"{dossier["handoff"]["version"]}"',
            },
        )
        assert response.status_code == 200, response.text
        return await self.get(dispute)

    async def timeline(self, dispute: dict[str, Any]) -> list[dict[str, Any]]:
        response = await self.client.get(f"/v1/disputes/{dispute['id']}/timeline", headers=self.auth())
        assert response.status_code == 200
        return response.json()

    async def _count(self, model: Any, dispute_id: str) -> int:
        async with self.app.state.db.reader() as session:
            query = select(func.count()).select_from(model).where(model.dispute_id == uuid.UUID(dispute_id))
            return int(await session.scalar(query) or 0)

    async def outbox_count(self, dispute_id: str) -> int:
        return await self._count(OutboxEvent, dispute_id)

    async def timeline_count(self, dispute_id: str) -> int:
        return await self._count(TimelineEntry, dispute_id)


BEIJING = ZoneInfo("Asia/Shanghai")


def at_beijing(api: Api, day: date, hour: int = 10, minute: int = 0) -> None:
    """Sets the app's clock to `day`, `hour`:`minute` in Beijing time."""
    api.app.state.clock.at = datetime.combine(day, time(hour, minute), BEIJING).astimezone(UTC)


def pause_after(
    monkeypatch: pytest.MonkeyPatch, owner: type, method: str, when: Callable[..., object] | None = None
) -> tuple[asyncio.Event, asyncio.Event]:
    """The next call of `owner.method` whose result `when` accepts (called with the result and the
    call's arguments; any result without it) stops once the method has returned: it sets the first
    event, and goes on once the second is set."""
    reached, go_on = asyncio.Event(), asyncio.Event()
    original = getattr(owner, method)

    async def call_then_wait(*args: Any, **kwargs: Any) -> Any:
        result = await original(*args, **kwargs)
        if not reached.is_set() and (when is None or when(result, *args, **kwargs)):
            reached.set()
            await go_on.wait()
        return result

    monkeypatch.setattr(owner, method, call_then_wait)
    return reached, go_on


def first_intake_waits_after_looking(monkeypatch: pytest.MonkeyPatch) -> tuple[asyncio.Event, asyncio.Event]:
    """The next intake stops between looking for its waves and taking the county's counter: it sets
    the first event once it has looked, and goes on once the second is set. Other intakes run
    meanwhile (PostgreSQL only: on SQLite an intake holds the database's one writer's lock from its
    first write to its commit, so no intake runs while another waits between the two)."""
    return pause_after(monkeypatch, AlertService, "detect")


async def waits_on_a_lock(api: Api, task: asyncio.Task[Any]) -> bool:
    """Whether `task` comes to wait on a row another transaction holds (False: it ended first, or
    waited on none within ten seconds). PostgreSQL only.

    Each look is a transaction of its own: PostgreSQL lists a transaction's `pg_stat_activity`
    sessions once, at its first look, so a request that opened a new connection after that look
    would never be seen waiting (the wait of a session already listed is read live, which hid
    this whenever the request found an idle connection in the pool)."""
    async with api.app.state.db.engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        for _ in range(200):
            if task.done():
                return False
            waiting = await conn.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            )
            if waiting:
                return True
            await asyncio.sleep(0.05)
    return False


def commit_elsewhere(db: Any, statement: str, *args: object) -> None:
    """Runs `statement` (asyncpg's $1, $2 ... for `args`, all passed as text) on a connection of
    another process, and returns once it has committed: another client's change landing between
    two statements of the code under test, from a hook that runs synchronously inside it (the
    test's own event loop is busy there, so the change cannot come from it). PostgreSQL only."""
    url = db.engine.url.render_as_string(hide_password=False).replace("+asyncpg", "")
    script = (
        "import asyncio, asyncpg, sys\n"
        "async def main():\n"
        "    c = await asyncpg.connect(sys.argv[1])\n"
        "    await c.execute(sys.argv[2], *sys.argv[3:])\n"
        "    await c.close()\n"
        "asyncio.run(main())"
    )
    subprocess.run(
        [sys.executable, "-c", script, url, statement, *(str(a) for a in args)], check=True, timeout=30
    )
