"""Mass assignment: no write endpoint lets a client set an internal field.

Every write schema forbids unknown fields, so a body naming `status`, `version`, `body_id`, an
owner or a timestamp is refused with 422 naming the field, before any state, role or version
check, and nothing in the database changes. A control request without the field then succeeds,
so the refusal is the field's doing.
"""

from __future__ import annotations

import copy
from typing import Any, get_args

import pytest
from pydantic import BaseModel
from sqlalchemy import text

import mediation.models  # noqa: F401  (every mapped table registered on Base.metadata)
from mediation.core.db import Base
from mediation.disputes.lifecycle import Action, find_transition
from mediation.disputes.schemas import (
    ACTION_PAYLOADS,
    ConsentIn,
    DisputeCreate,
    PartyIn,
    PartySearchIn,
    StatusLookupIn,
)
from mediation.identity.router import ApiKeyIn, TokenRequest, UserIn
from tests.support import PATHS, intake_body

ATTACKER = "6f1e0c4e-0000-4000-8000-00000000beef"
# Internal fields and a plausible value for each (the value never matters: the name is refused).
INTERNAL: dict[str, Any] = {
    "status": "closed",
    "version": 99,
    "body_id": ATTACKER,
    "created_by": "attacker",
    "owner": "attacker",
    "created_at": "2020-01-01T00:00:00Z",
    "updated_at": "2020-01-01T00:00:00Z",
    "id": ATTACKER,
    "case_number": "330681-2026-999999",
    "query_code_hash": "0" * 64,
    "organisation_id": ATTACKER,
    "role": "admin",
    "is_group": True,
    "tier": "county",
    "closed_at": "2020-01-01T00:00:00Z",
}
# Columns of a party that only the service sets.
PARTY_INTERNAL: dict[str, Any] = {
    "consent": "given",
    "position": 7,
    "dispute_id": ATTACKER,
    "id_number_enc": "t1.AAAA",
    "id_number_masked": "330***********0016",
    "id_number_index": "0" * 64,
    "phone_enc": "t1.AAAA",
    "phone_index": "0" * 64,
    "masked": False,
}
USER_INTERNAL: dict[str, Any] = {
    "active": False,
    "password_hash": "$argon2id$v=19$m=1024,t=1,p=1$AAAA$AAAA",
    "last_login_at": "2020-01-01T00:00:00Z",
    "password_changed_at": "2020-01-01T00:00:00Z",
}
KEY_INTERNAL: dict[str, Any] = {
    "prefix": "mk_attack",
    "secret": "mk_attacker_chosen_secret",
    "secret_hash": "0" * 64,
    "revoked_at": "2020-01-01T00:00:00Z",
    "replaces_id": ATTACKER,
}
# The audit trail records every refused attempt by design, so it is the one thing allowed to grow.
AUDIT_TABLES = {"audit_records", "audit_chain_head"}


def _internal_fields(schema: type[BaseModel], *extra: dict[str, Any]) -> dict[str, Any]:
    """The internal fields that are not legitimate fields of `schema`."""
    fields: dict[str, Any] = {}
    for group in (INTERNAL, *extra):
        fields.update(group)
    return {name: value for name, value in fields.items() if name not in schema.model_fields}


async def _state(api) -> dict[str, list[tuple[str, ...]]]:
    """Every row of every table but the audit trail, as sorted text."""
    out: dict[str, list[tuple[str, ...]]] = {}
    async with api.app.state.db.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            if table.name in AUDIT_TABLES:
                continue
            rows = (await conn.execute(text(f'SELECT * FROM "{table.name}"'))).all()
            out[table.name] = sorted(tuple(str(v) for v in row) for row in rows)
    return out


async def _audited_refusals(api) -> int:
    """Refused writes are recorded in the audit trail (a probe for internal fields is worth knowing)."""
    async with api.app.state.db.engine.connect() as conn:
        query = text("SELECT count(*) FROM audit_records WHERE status_code = 422 AND outcome = 'rejected'")
        return int((await conn.execute(query)).scalar_one())


def _refused(response, field: str) -> None:
    assert response.status_code == 422, f"{field}: {response.status_code} {response.text}"
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["type"] == "/problems/validation-error" and problem["status"] == 422
    assert [(e["field"], e["location"], e["code"]) for e in problem["errors"]] == [
        (field, "body", "extra_forbidden")
    ], problem["errors"]
    assert field in problem["detail"]


async def _refuses_each(api, send, base: dict[str, Any], fields: dict[str, Any], nested: str = "") -> int:
    """Send `base` with one internal field added at a time, at the top level or inside the object
    at `nested` (a dotted path, list positions as numbers: "parties.1"). Returns the attempts."""
    assert fields
    parts = [int(p) if p.isdigit() else p for p in nested.split(".")] if nested else []
    prefix = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts).lstrip(".")
    for name, value in fields.items():
        body = copy.deepcopy(base)
        target = body
        for part in parts:
            target = target[part]
        target[name] = value
        _refused(await send(body), f"{prefix}.{name}" if prefix else name)
    return len(fields)


# ---- intake ---------------------------------------------------------------------------------------


async def test_intake(api):
    before, audited = await _state(api), await _audited_refusals(api)

    async def send(body):
        return await api.client.post("/v1/disputes", json=body)

    attempts = await _refuses_each(api, send, intake_body(), _internal_fields(DisputeCreate))
    # Inside a party too: consent, position and the encrypted columns belong to the service.
    party_fields = _internal_fields(PartyIn, PARTY_INTERNAL)
    assert "role" not in party_fields and "consent" in party_fields
    attempts += await _refuses_each(api, send, intake_body(), party_fields, nested="parties.1")
    assert await _state(api) == before
    assert await _audited_refusals(api) - audited == attempts

    control = await send(intake_body())
    assert control.status_code == 201, control.text
    assert control.json()["status"] == "registered" and control.json()["version"] == 1
    assert await _state(api) != before


# ---- lifecycle actions ----------------------------------------------------------------------------


# From `mediating`, arbitration needs a labour case 15 days old; after a failed mediation it does not.
# Before mediation, a case ends only on a recorded refusal: the plain `fail` is the mediating one's.
STATE_FOR = {Action.refer_arbitration: "mediation_failed", Action.fail: "mediating"}


def _state_for(action: Action) -> str:
    """The state with the shortest path from intake in which `action` is allowed."""
    if action in STATE_FOR:
        return STATE_FOR[action]
    candidates = [s for s in PATHS if find_transition(s, action) is not None]
    assert candidates, action
    return min(candidates, key=lambda s: len(PATHS[s]))


# Actions whose payload carries an object of its own: the follow-up visit.
NESTED = {"archive": 1}


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model an annotation names, itself or inside `X | None`."""
    for candidate in (annotation, *get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


@pytest.mark.parametrize("action", list(ACTION_PAYLOADS))
async def test_action(api, action: str):
    schema = ACTION_PAYLOADS[action]
    state = _state_for(Action(action))
    dispute = await api.drive(state)
    transition = find_transition(state, Action(action))
    assert transition is not None
    # What the action needs besides its payload, in place before the snapshot: the signed
    # agreement `agree` records, the court's or commission's acceptance before it decides.
    if action == "agree":
        await api.signed_agreement(dispute)
    if any(g.name == "accepted_by_target" for g in transition.guards):
        dispute = await api.target_accepts(dispute)
    role = api.role_for(transition.roles, dispute)
    base = api.payload(action, dispute) or {}
    before, audited = await _state(api), await _audited_refusals(api)

    async def send(body):
        return await api.act(dispute, action, body, role=role)

    attempts = await _refuses_each(api, send, base, _internal_fields(schema))
    # Nested objects (the follow-up visit) forbid them as well.
    nested = 0
    for name, field in schema.model_fields.items():
        inner = _model_in(field.annotation)
        if inner is not None and isinstance(base.get(name), dict):
            attempts += await _refuses_each(api, send, base, _internal_fields(inner), nested=name)
            nested += 1
    assert nested == NESTED.get(action, 0)
    assert await _state(api) == before
    assert await _audited_refusals(api) - audited == attempts
    current = await api.get(dispute)
    assert (current["status"], current["version"]) == (state, dispute["version"])
    assert await api.timeline_count(dispute["id"]) == dispute["version"]

    control = await api.act(dispute, action, role=role)
    assert control.status_code == 200, control.text
    assert control.json()["status"] == transition.target.value
    assert control.json()["version"] == dispute["version"] + 1


async def test_body_validation_comes_before_state_version_and_precondition_checks(api):
    """So one case in any state serves every action: the 422 never depends on the case."""
    dispute = await api.intake()
    before, audited = await _state(api), await _audited_refusals(api)
    for action in ACTION_PAYLOADS:
        base = api.payload(action, dispute) or {}
        # Stale If-Match, and an action the state may not allow: still the body is judged first.
        response = await api.act(dispute, action, {**base, "status": "closed"}, headers={"If-Match": '"9"'})
        _refused(response, "status")
        # No If-Match at all: 422, not 428.
        response = await api.client.post(
            f"/v1/disputes/{dispute['id']}/actions/{action}",
            json={**base, "version": 5},
            headers=api.headers("supervisor"),
        )
        _refused(response, "version")
        if find_transition("registered", Action(action)) is None:
            # Without the field the same request meets the state check.
            plain = await api.act(dispute, action, base or None, role="supervisor")
            assert plain.status_code == 409, f"{action}: {plain.text}"
            assert plain.json()["type"] == "/problems/invalid-transition"
    assert await _state(api) == before
    assert await _audited_refusals(api) - audited >= 2 * len(ACTION_PAYLOADS)


# ---- consent --------------------------------------------------------------------------------------


async def test_consent(api):
    dispute = await api.drive("mediating")
    party = dispute["parties"][0]
    url = f"/v1/disputes/{dispute['id']}/parties/{party['id']}/consent"
    headers = api.headers(**{"If-Match": f'"{dispute["version"]}"'})
    before, audited = await _state(api), await _audited_refusals(api)

    async def send(body):
        return await api.client.post(url, json=body, headers=headers)

    attempts = await _refuses_each(
        api, send, {"decision": "given"}, _internal_fields(ConsentIn, PARTY_INTERNAL)
    )
    assert await _state(api) == before
    assert await _audited_refusals(api) - audited == attempts
    assert (await api.get(dispute))["parties"][0]["consent"] == "unknown"

    control = await send({"decision": "given"})
    assert control.status_code == 200, control.text
    assert control.json()["parties"][0]["consent"] == "given"
    assert control.json()["version"] == dispute["version"] + 1


# ---- accounts, keys, sign-in ----------------------------------------------------------------------


async def test_create_user(api):
    base = {
        "username": "new.clerk",
        "display_name": "新窗口人员",
        "role": "clerk",
        "organisation_id": str(api.bodies["center"]),
        "password": "a long enough password",
    }
    fields = _internal_fields(UserIn, USER_INTERNAL)
    assert "role" not in fields and "organisation_id" not in fields and "active" in fields
    before, audited = await _state(api), await _audited_refusals(api)

    async def send(body):
        return await api.client.post("/v1/users", json=body, headers=api.headers("admin"))

    attempts = await _refuses_each(api, send, base, fields)
    assert await _state(api) == before
    assert await _audited_refusals(api) - audited == attempts

    control = await send(base)
    assert control.status_code == 201, control.text
    assert control.json()["active"] is True and control.json()["last_login_at"] is None
    after = await _state(api)
    assert len(after["users"]) == len(before["users"]) + 1


async def test_create_api_key(api):
    base = {"organisation_id": str(api.bodies["village"]), "role": "body_mediator", "name": "村调委系统"}
    fields = _internal_fields(ApiKeyIn, KEY_INTERNAL)
    assert "role" not in fields and "organisation_id" not in fields and "created_by" in fields
    before, audited = await _state(api), await _audited_refusals(api)

    async def send(body):
        return await api.client.post("/v1/api-keys", json=body, headers=api.headers("admin"))

    attempts = await _refuses_each(api, send, base, fields)
    assert await _state(api) == before
    assert await _audited_refusals(api) - audited == attempts

    control = await send(base)
    assert control.status_code == 201, control.text
    assert control.json()["created_by"] != "attacker" and control.json()["revoked_at"] is None
    after = await _state(api)
    assert len(after["api_keys"]) == len(before["api_keys"]) + 1


async def test_sign_in(api):
    base = {"username": "test-clerk-center", "password": "correct horse battery staple"}
    fields = _internal_fields(TokenRequest, USER_INTERNAL)
    assert {"role", "organisation_id"} <= set(fields)  # a token's claims are never the caller's to pick
    before, audited = await _state(api), await _audited_refusals(api)

    async def send(body):
        return await api.client.post("/v1/auth/token", json=body, headers={"Authorization": ""})

    attempts = await _refuses_each(api, send, base, fields)
    assert await _state(api) == before
    assert await _audited_refusals(api) - audited == attempts  # no sign-in happened: last_login_at untouched

    control = await send(base)
    assert control.status_code == 200, control.text
    assert control.json()["role"] == "clerk"
    assert await _state(api) != before


# ---- public status lookup and the party search ----------------------------------------------------


async def test_status_lookup(api):
    dispute = await api.intake()
    base = {"case_number": dispute["case_number"], "query_code": dispute["query_code"]}
    before, audited = await _state(api), await _audited_refusals(api)

    async def send(body):
        return await api.client.post("/v1/status-lookup", json=body, headers={"Authorization": ""})

    attempts = await _refuses_each(api, send, base, _internal_fields(StatusLookupIn))
    assert await _state(api) == before
    assert await _audited_refusals(api) - audited == attempts

    control = await send(base)
    assert control.status_code == 200, control.text
    assert control.json()["status"] == "registered"


async def test_search_by_party(api):
    dispute = await api.intake()
    base = {"id_number": dispute["parties"][0]["id_number"]}
    before, audited = await _state(api), await _audited_refusals(api)

    async def send(body):
        return await api.client.post("/v1/disputes/search-by-party", json=body)

    attempts = await _refuses_each(api, send, base, _internal_fields(PartySearchIn, PARTY_INTERNAL))
    assert await _state(api) == before
    assert await _audited_refusals(api) - audited == attempts

    control = await send(base)
    assert control.status_code == 200, control.text
    assert [d["id"] for d in control.json()["items"]] == [dispute["id"]]


def test_every_write_schema_forbids_unknown_fields():
    """The schemas this file sends to, and every action payload, are closed."""
    schemas = [
        DisputeCreate,
        PartyIn,
        ConsentIn,
        StatusLookupIn,
        PartySearchIn,
        UserIn,
        ApiKeyIn,
        TokenRequest,
    ]
    for schema in [*schemas, *ACTION_PAYLOADS.values()]:
        assert schema.model_config.get("extra") == "forbid", schema.__name__
    assert set(ACTION_PAYLOADS) == {a.value for a in Action}
