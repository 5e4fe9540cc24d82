"""A request body's checks across its fields name the field they ask to fill in or leave out.

Each of these is a model's own check (an in-person sitting needs a place, a rejection a ground).
Without a field named, the problem said `body`, and no client, nor the service's own pages, could
show the refusal beside the field it is about."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from pydantic import ValidationError

from mediation.agreements.schemas import SessionIn
from mediation.web.forms import errors_of
from tests.support import Api, intake_body, person

SOMEONE = str(uuid.uuid4())
FOLLOW_UP = {"contact_method": "phone", "satisfaction": 5, "agreement_performed": True}

CASES: list[tuple[str, str, str, str, dict[str, Any], str, str]] = [
    # method, path, role, what is sent, field, code
    (
        "intake: an organisation identified by a resident ID",
        "POST",
        "/v1/disputes",
        "clerk",
        intake_body(
            parties=[
                person("applicant", "张三", 1),
                {**person("respondent", "某建筑劳务有限公司", 2), "kind": "organisation"},
            ]
        ),
        "parties[1].id_type",
        "invalid_id_type",
    ),
    (
        "intake: no respondent",
        "POST",
        "/v1/disputes",
        "clerk",
        intake_body(parties=[person("applicant", "张三", 1), person("applicant", "李四", 2)]),
        "parties",
        "parties_incomplete",
    ),
    (
        "an in-person sitting with no place",
        "POST",
        f"/v1/disputes/{SOMEONE}/sessions",
        "body_mediator",
        {"scheduled_at": "2026-06-01T09:00:00+08:00"},
        "place",
        "place_missing",
    ),
    (
        "a refusal recorded without the party who refused",
        "POST",
        f"/v1/disputes/{SOMEONE}/sessions/{SOMEONE}/record",
        "body_mediator",
        {
            "held_at": "2026-06-01T09:00:00+08:00",
            "attendees": [{"name": "张三", "capacity": "当事人"}],
            "minutes": "申请人表示不再调解。",
            "outcome": "party_refused",
        },
        "party_id",
        "party_missing",
    ),
    (
        "a seal signed in person",
        "POST",
        f"/v1/disputes/{SOMEONE}/agreements/{SOMEONE}/signatures",
        "body_mediator",
        {"signer": "body_seal", "method": "in_person"},
        "method",
        "method_not_allowed",
    ),
    (
        "a party's signature naming no party",
        "POST",
        f"/v1/disputes/{SOMEONE}/agreements/{SOMEONE}/signatures",
        "body_mediator",
        {"signer": "party", "method": "in_person"},
        "party_id",
        "party_id",
    ),
    (
        "an electronic signature without the hash of what was signed",
        "POST",
        f"/v1/disputes/{SOMEONE}/agreements/{SOMEONE}/signatures",
        "body_mediator",
        {"signer": "party", "party_id": SOMEONE, "method": "electronic"},
        "document_hash",
        "document_hash",
    ),
    (
        "a visit that reached the parties, with no rating",
        "POST",
        f"/v1/follow-ups/{SOMEONE}/visit",
        "body_mediator",
        {"visited_on": "2026-06-01", "contact_method": "phone", "reached": True},
        "satisfaction",
        "satisfaction_required",
    ),
    (
        "archiving with a visit's result and a reason no visit was possible",
        "POST",
        f"/v1/disputes/{SOMEONE}/actions/archive",
        "clerk",
        {"follow_up": FOLLOW_UP, "visit_impossible_reason": "当事人已搬离, 无法联系"},
        "visit_impossible_reason",
        "follow_up_conflict",
    ),
    (
        "a court accepting without its case number",
        "POST",
        f"/v1/handoffs/{SOMEONE}/acceptance",
        "court",
        {"decision": "accepted"},
        "case_number",
        "case_number_missing",
    ),
    (
        "a court not accepting without a reason",
        "POST",
        f"/v1/handoffs/{SOMEONE}/acceptance",
        "court",
        {"decision": "not_accepted"},
        "reason_code",
        "reason_code_missing",
    ),
    (
        "a rejection without its ground",
        "POST",
        f"/v1/handoffs/{SOMEONE}/decision",
        "court",
        {"decision": "rejected", "ruling_number": "(2026)浙0681民特1号之一", "ruled_on": "2026-06-01"},
        "ground",
        "ground",
    ),
    (
        "a body suspended without a reason",
        "PATCH",
        f"/v1/bodies/{SOMEONE}",
        "admin",
        {"active": False},
        "suspended_reason",
        "suspended_reason_required",
    ),
]


@pytest.mark.parametrize(
    ("method", "path", "role", "sent", "field", "code"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
async def test_a_check_across_fields_names_its_field(
    api: Api, method: str, path: str, role: str, sent: dict[str, Any], field: str, code: str
) -> None:
    response = await api.client.request(
        method, path, json=sent, headers={**api.auth(role), "If-Match": '"1"', "Accept-Language": "en"}
    )
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["type"] == "/problems/validation-error"
    [error] = problem["errors"]
    assert (error["field"], error["location"], error["code"]) == (field, "body", code)
    assert error["message"] and error["message"].isascii(), error


def test_a_page_shows_the_sittings_place_missing_beside_the_place() -> None:
    """The page needs no list of its own of which field each check is about."""
    with pytest.raises(ValidationError) as refused:
        SessionIn.model_validate({"scheduled_at": "2026-06-01T09:00:00+08:00"})
    assert set(errors_of(refused.value)) == {"place"}
