"""What a member of staff filed or wrote stays with the organisation they acted for when they moved
on (`PATCH /v1/users/{id}`, a new organisation): that organisation may still withdraw the
documents they handed in, a court is still shown its own filings, and a body still reads the
reason they gave for handing a case on; the organisation they moved to gains none of it. Each
document and timeline entry records the organisation at the time (migration 0038 gives existing
ones their author's organisation as it was then)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import create_async_engine

from mediation.core.db import UTCDateTime
from mediation.migrate import downgrade, upgrade
from tests.support import Api
from tests.test_documents import docs_url, pdf, problem, uploaded, withdraw
from tests.test_migrations import empty_database  # noqa: F401  (the fixture)

KIB = 1024
PASSWORD = "correct horse battery staple"
HANDED_ON = "被申请人系本村调委会主任的亲属, 转由镇调委会调解"


async def _move(api: Api, user_id: uuid.UUID, organisation: str) -> None:
    """The administrator moves the account to the organisation `organisation` (a body's key)."""
    read = await api.client.get(f"/v1/users/{user_id}", headers=api.auth("admin"))
    assert read.status_code == 200, read.text
    moved = await api.client.patch(
        f"/v1/users/{user_id}",
        json={"organisation_id": str(api.bodies[organisation])},
        headers={**api.auth("admin"), "If-Match": read.headers["etag"]},
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["organisation_id"] == str(api.bodies[organisation])


async def _signed_in_again(api: Api, username: str) -> dict[str, str]:
    response = await api.client.post("/v1/auth/token", json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def _timeline(api: Api, case: dict[str, Any], headers: dict[str, str]) -> list[dict[str, Any]]:
    response = await api.client.get(f"/v1/disputes/{case['id']}/timeline", headers=headers)
    assert response.status_code == 200, response.text
    entries: list[dict[str, Any]] = response.json()
    return entries


async def _village_mediator(api: Api) -> tuple[uuid.UUID, dict[str, str]]:
    """The village committee's mediator, signed in: (the account, its credentials)."""
    headers = await api.signed_in("body_mediator", "village")
    return api.users[("body_mediator", api.bodies["village"])], headers


async def _filed_and_handed_on_then_moved(api: Api, now_at: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A case in mediation at the village, in which the village's mediator hands in evidence and
    then transfers the case with a reason, before moving to the town's committee; the center then
    sends the case to `now_at`: (the case, the evidence)."""
    mover, mediator = await _village_mediator(api)
    case = await api.drive("mediating")
    evidence = await uploaded(api, case, pdf(KIB, "moved mediator's evidence"), headers=mediator)
    transferred = await api.client.post(
        f"/v1/disputes/{case['id']}/actions/transfer",
        json={"reason": HANDED_ON},
        headers={**mediator, **await api.if_match(case)},
    )
    assert transferred.status_code == 200, transferred.text
    await _move(api, mover, "town")
    case = await api.step(
        transferred.json(),
        "assign",
        {"body_id": str(api.bodies[now_at]), "override_reason": "测试: 指定调委会"},
    )
    return case, evidence


# ---- documents ---------------------------------------------------------------------------------------


async def test_the_body_a_mediator_filed_for_still_withdraws_after_they_moved(api: Api) -> None:
    mover, mediator = await _village_mediator(api)
    case = await api.drive("mediating")
    evidence = await uploaded(api, case, pdf(KIB, "evidence"), headers=mediator)
    await _move(api, mover, "town")

    taken_back = await withdraw(api, case, evidence, "重复提交", api.acting("body_admin", case))
    assert taken_back.status_code == 200, taken_back.text
    assert taken_back.json()["status"] == "withdrawn"


async def test_the_body_a_mediator_moved_to_does_not_withdraw_what_they_filed_elsewhere(api: Api) -> None:
    case, evidence = await _filed_and_handed_on_then_moved(api, "town")
    assert case["body_id"] == str(api.bodies["town"])
    moved_mediator = await _signed_in_again(api, "test-body_mediator-village")
    for headers in (api.acting("body_admin", case), moved_mediator):
        refused = await withdraw(api, case, evidence, "不是本单位提交的", headers)
        assert problem(refused, 403, "forbidden")["code"] == "not_submitter"
    # The town reads the case's file (it has the case), and the evidence is still in it.
    listed = (await api.client.get(docs_url(case), headers=api.acting("body_admin", case))).json()
    assert {d["id"]: d["status"] for d in listed}[evidence["id"]] == "active"


async def test_a_court_still_sees_and_withdraws_its_judges_filings_after_the_judge_moved(api: Api) -> None:
    """A court is shown what it handed in, withdrawn or not, and may withdraw it: so still when the
    judge who filed it has moved to another court."""
    case = await api.drive("confirmation_pending")
    judge = await api.signed_in("court", "court")
    judge_id = api.users[("court", api.bodies["court"])]
    court = api.acting("court", case)
    assert court == api.auth("court", "court")
    draft = await uploaded(api, case, pdf(KIB, "draft"), "裁定书草稿.pdf", kind="court_ruling", headers=judge)
    ruling = await uploaded(
        api, case, pdf(KIB, "ruling"), "民事裁定书.pdf", kind="court_ruling", headers=judge
    )
    assert (await withdraw(api, case, draft, "草稿误传", judge)).status_code == 200
    await _move(api, judge_id, "other_court")

    shown = {d["id"]: d["status"] for d in (await api.client.get(docs_url(case), headers=court)).json()}
    assert shown[draft["id"]] == "withdrawn"
    taken_back = await withdraw(api, case, ruling, "裁定书有误, 重新制作", court)
    assert taken_back.status_code == 200, taken_back.text
    # The withdrawal of the draft is on the court's timeline as written: its own document.
    (entry,) = [
        e
        for e in await _timeline(api, case, court)
        if e["action"] == "withdraw_document" and e["payload"]["document_id"] == draft["id"]
    ]
    assert (entry["reason"], entry["reason_withheld"]) == ("草稿误传", False)


# ---- the timeline -----------------------------------------------------------------------------------


async def test_a_body_reads_the_reason_its_mediator_gave_after_they_moved(api: Api) -> None:
    case, _ = await _filed_and_handed_on_then_moved(api, "village")
    (transferred,) = [
        e for e in await _timeline(api, case, api.acting("body_mediator", case)) if e["action"] == "transfer"
    ]
    assert (transferred["reason"], transferred["reason_withheld"]) == (HANDED_ON, False)


async def test_the_body_a_mediator_moved_to_does_not_read_the_reason_they_gave_elsewhere(api: Api) -> None:
    case, _ = await _filed_and_handed_on_then_moved(api, "town")
    (transferred,) = [
        e for e in await _timeline(api, case, api.acting("body_mediator", case)) if e["action"] == "transfer"
    ]
    assert (transferred["reason"], transferred["reason_withheld"]) == (None, True)


# ---- migration 0038 ---------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
def test_existing_documents_and_entries_get_their_authors_organisation_from_the_migration(
    empty_database: str,  # noqa: F811
) -> None:
    """Each document and timeline entry gets the organisation of the account or API key that made
    it, as it is when the migration runs; the service's own, and those of an account of no
    organisation, get none. Down to 0037 the columns go, and the timeline is append-only still."""
    upgrade(empty_database, "0037")
    sqlite = empty_database.startswith("sqlite")
    stored = (lambda u: u.hex) if sqlite else (lambda u: u)
    village, court = uuid.UUID(int=1), uuid.UUID(int=2)
    mediator, admin, key, case = uuid.UUID(int=11), uuid.UUID(int=12), uuid.UUID(int=13), uuid.UUID(int=21)
    at = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
    # Who made each document and entry (its `submitted_by` or `actor_id`), and the organisation due.
    authors: list[tuple[str, uuid.UUID | None]] = [
        (str(mediator), village),
        (str(key), court),
        (str(admin), None),
        ("system", None),
    ]

    async def run(*statements: tuple[str, dict[str, Any]]) -> list[tuple[Any, ...]]:
        engine = create_async_engine(empty_database)
        rows: list[tuple[Any, ...]] = []
        async with engine.begin() as conn:
            for sql, params in statements:
                stmt = text(sql).bindparams(
                    *(bindparam(name, type_=UTCDateTime()) for name in params if name.endswith("_at"))
                )
                result = await conn.execute(stmt, params)
                rows += [tuple(r) for r in result.all()] if result.returns_rows else []
        await engine.dispose()
        return rows

    seed: list[tuple[str, dict[str, Any]]] = [
        (
            "INSERT INTO bodies (id, name, kind, tier, region_code, active, created_at)"
            " VALUES (:id, :name, :kind, :tier, '330681105201', true, :created_at)",
            {"id": stored(id_), "name": name, "kind": kind, "tier": tier, "created_at": at},
        )
        for id_, name, kind, tier in (
            (village, "枫源村人民调解委员会", "people_mediation_committee", "village"),
            (court, "诸暨市人民法院", "court", "county"),
        )
    ]
    seed += [
        (
            "INSERT INTO users (id, username, display_name, role, organisation_id, password_hash, active,"
            " created_at, password_changed_at) VALUES (:id, :username, '测试', :role, :org, 'x', true,"
            " :created_at, :changed_at)",
            {
                "id": stored(id_),
                "username": role,
                "role": role,
                "org": stored(org) if org else None,
                "created_at": at,
                "changed_at": at,
            },
        )
        for id_, role, org in ((mediator, "body_mediator", village), (admin, "admin", None))
    ]
    seed.append(
        (
            "INSERT INTO api_keys (id, name, prefix, secret_hash, role, organisation_id, created_by, created_at)"
            " VALUES (:id, '法院系统', 'mk_test', 'x', 'court', :org, 'admin', :created_at)",
            {"id": stored(key), "org": stored(court), "created_at": at},
        )
    )
    seed += [
        (
            "INSERT INTO disputes (id, case_number, query_code_hash, category, subject_matters,"
            " description, channel, region_code, people_involved, severity, is_group, is_risk, tier,"
            " status, version, applied_on, created_by, created_at, updated_at)"
            " VALUES (:id, '330681-2026-000001', 'x', 'neighbour', '[]', '旧数据', 'window',"
            " '330681105201', 2, 'ordinary', false, false, 'village', 'mediating', 9, '2026-12-01',"
            " 'clerk', :created_at, :updated_at)",
            {"id": stored(case), "created_at": at, "updated_at": at},
        ),
        (
            "INSERT INTO document_blobs (sha256, size, media_type, created_at)"
            " VALUES (:sha, 1, 'application/pdf', :created_at)",
            {"sha": "0" * 64, "created_at": at},
        ),
    ]
    for n, (author, _) in enumerate(authors):
        seed += [
            (
                "INSERT INTO documents (id, dispute_id, kind, original_name, sha256, size, media_type,"
                " submitted_by_kind, submitted_by, submitted_role, stage, generated,"
                " contains_personal_data, late, status, created_at) VALUES (:id, :case, 'evidence',"
                " :name, :sha, 1, 'application/pdf', 'body', :by, 'body_mediator', 'mediating', false,"
                " false, false, 'active', :created_at)",
                {
                    "id": stored(uuid.UUID(int=100 + n)),
                    "case": stored(case),
                    "name": f"{n}.pdf",
                    "sha": "0" * 64,
                    "by": author,
                    "created_at": at,
                },
            ),
            (
                "INSERT INTO timeline_entries (id, dispute_id, seq, action, actor_role, actor_id, payload,"
                " occurred_at) VALUES (:id, :case, :seq, 'hold_session', 'body_mediator', :by, '{}',"
                " :occurred_at)",
                {
                    "id": stored(uuid.UUID(int=200 + n)),
                    "case": stored(case),
                    "seq": n + 1,
                    "by": author,
                    "occurred_at": at,
                },
            ),
        ]
    asyncio.run(run(*seed))

    upgrade(empty_database)

    def organisation(value: Any) -> uuid.UUID | None:
        return None if value is None else uuid.UUID(str(value))

    documents = asyncio.run(run(("SELECT submitted_by, submitted_by_organisation_id FROM documents", {})))
    entries = asyncio.run(run(("SELECT actor_id, actor_organisation_id FROM timeline_entries", {})))
    expected = sorted(authors, key=lambda a: a[0])
    assert sorted((by, organisation(org)) for by, org in documents) == expected
    assert sorted((by, organisation(org)) for by, org in entries) == expected
    # The timeline's guard is back after the backfill.
    with pytest.raises(Exception, match="append-only"):
        asyncio.run(run(("UPDATE timeline_entries SET reason = 'changed'", {})))

    downgrade(empty_database, "0037")
    with pytest.raises(Exception, match="append-only"):
        asyncio.run(run(("DELETE FROM timeline_entries", {})))
    assert len(asyncio.run(run(("SELECT submitted_by FROM documents", {})))) == len(authors)
    assert len(asyncio.run(run(("SELECT actor_id FROM timeline_entries", {})))) == len(authors)
    for gone in (
        "submitted_by_organisation_id FROM documents",
        "actor_organisation_id FROM timeline_entries",
    ):
        with pytest.raises(Exception, match="organisation_id"):
            asyncio.run(run((f"SELECT {gone}", {})))
