"""Personal data at rest and on the wire.

ID and phone numbers are stored only as row-bound ciphertext, a masked copy and a keyed index:
no table, not even the idempotency store of replayable responses or the outbox, holds them in
the clear. A ciphertext moved to another row or column refuses to decrypt. Roles without
`pii:read` see masks everywhere a case shows, free text included.
"""

from __future__ import annotations

import re
import uuid
from datetime import date
from typing import Any

import pytest
from sqlalchemy import inspect, text

import mediation.models  # noqa: F401  (every mapped table registered on Base.metadata)
from mediation.core.db import Base
from mediation.core.pii import PiiIntegrityError, mask_id_number, mask_phone
from tests.support import intake_body, person, resident_id

UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# SQLite stores UUIDs as 32 hex digits without dashes, and SHA-256/HMAC digests (query code hash,
# lookup index, audit chain, key hashes, request fingerprints) are 64 hex digits: any such run
# may contain 11-18 decimal digits by chance, so it is blanked before the pattern checks.
HEX_RUN = re.compile(r"[0-9a-fA-F]{32,}")
ID18 = re.compile(r"\d{17}[\dXx]")
MOBILE = re.compile(r"1[3-9]\d{9}")


def _blank_identifiers(value: str) -> str:
    return HEX_RUN.sub("#", UUID.sub("#", value))


def _looks_like_pii(value: str) -> list[str]:
    blanked = _blank_identifiers(value)
    return ID18.findall(blanked) + MOBILE.findall(blanked)


def _party(role: str, name: str, serial: int, born: date = date(1993, 3, 9)) -> dict[str, Any]:
    """A person whose numbers appear nowhere else in the test data."""
    return {
        **person(role, name, serial),
        "id_number": resident_id(serial, born=born),
        "phone": f"1390000{serial:04d}",
    }


def _numbers(*parties: dict[str, Any]) -> set[str]:
    return {p[k] for p in parties for k in ("id_number", "phone") if p.get(k)}


async def _dump(app) -> list[tuple[str, str, str]]:
    """Every value of every row of every mapped table, as (table, column, text)."""
    out: list[tuple[str, str, str]] = []
    async with app.state.db.engine.connect() as conn:
        actual = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
        mapped = {t.name for t in Base.metadata.sorted_tables}
        # Nothing the database holds escapes the dump (alembic_version holds only the revision).
        assert actual - {"alembic_version"} <= mapped, actual - mapped
        for table in Base.metadata.sorted_tables:
            result = await conn.execute(text(f'SELECT * FROM "{table.name}"'))
            columns = list(result.keys())
            for row in result:
                for column, value in zip(columns, row, strict=True):
                    if value is not None:
                        out.append((table.name, column, str(value)))
    return out


def _leaks(dump: list[tuple[str, str, str]], plain: set[str]) -> list[str]:
    found = []
    lowered = {p.lower() for p in plain}
    for table, column, value in dump:
        if any(p in value.lower() for p in lowered):
            found.append(f"{table}.{column}: holds a plain number")
        for match in _looks_like_pii(value):
            found.append(f"{table}.{column}: {match!r} looks like an ID or phone number")
    return found


async def test_no_table_holds_a_plain_id_or_phone_number(api):
    applicants = [_party("applicant", f"申请人{i}", 40 + i) for i in range(3)]
    respondents = [_party("respondent", f"被申请人{i}", 50 + i) for i in range(3)]
    plain = _numbers(*applicants, *respondents)
    assert len(plain) == 12

    cases = []
    for applicant, respondent in zip(applicants, respondents, strict=True):
        cases.append(await api.intake(parties=[applicant, respondent]))
    # A repeat party: the first applicant again, in a fourth case.
    cases.append(await api.intake(parties=[applicants[0], _party("respondent", "王五", 60)]))
    plain |= _numbers(_party("respondent", "王五", 60))

    # Intake with an Idempotency-Key, retried: the stored response is the clerk's, unmasked.
    extra = [_party("applicant", "赵六", 61), _party("respondent", "钱七", 62)]
    plain |= _numbers(*extra)
    keyed = api.headers(**{"Idempotency-Key": "pii-intake-1"})
    first = await api.client.post("/v1/disputes", json=intake_body(parties=extra), headers=keyed)
    assert first.status_code == 201, first.text
    assert first.json()["parties"][0]["id_number"] == extra[0]["id_number"]  # the clerk sees it
    replay = await api.client.post("/v1/disputes", json=intake_body(parties=extra), headers=keyed)
    assert replay.status_code == 201 and replay.headers["idempotent-replayed"] == "true"
    assert replay.json() == first.json()

    # An action with a key, retried.
    accepted = await api.act(cases[0], "accept", headers={"Idempotency-Key": "pii-accept-1"})
    assert accepted.status_code == 200, accepted.text
    again = await api.act(cases[0], "accept", headers={"Idempotency-Key": "pii-accept-1"})
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"

    # Further along the lifecycle: consent, agreement, confirmation request.
    dispute = accepted.json()
    for action in ("assign", "sign_for"):
        dispute = await api.step(dispute, action)
    party = dispute["parties"][0]
    consent = await api.client.post(
        f"/v1/disputes/{dispute['id']}/parties/{party['id']}/consent",
        json={"decision": "given"},
        headers=api.headers(**{"If-Match": f'"{dispute["version"]}"'}),
    )
    assert consent.status_code == 200, consent.text
    dispute = consent.json()
    for action in ("agree", "request_confirmation"):
        dispute = await api.step(dispute, action)
    await api.drive("archived", parties=[_party("applicant", "孙八", 63), _party("respondent", "周九", 64)])
    plain |= _numbers(_party("applicant", "孙八", 63), _party("respondent", "周九", 64))

    # Reads and searches that disclose the numbers (audited), and the party's own lookup.
    assert (await api.client.get(f"/v1/disputes/{cases[1]['id']}")).status_code == 200
    found = await api.client.post(
        "/v1/disputes/search-by-party", json={"id_number": applicants[0]["id_number"]}
    )
    assert found.status_code == 200 and len(found.json()["items"]) == 2
    by_phone = await api.client.post("/v1/disputes/search-by-party", json={"phone": respondents[1]["phone"]})
    assert by_phone.status_code == 200 and len(by_phone.json()["items"]) == 1
    lookup = await api.client.post(
        "/v1/status-lookup",
        json={"case_number": first.json()["case_number"], "query_code": first.json()["query_code"]},
        headers={"Authorization": ""},
    )
    assert lookup.status_code == 200, lookup.text
    # A refused intake carrying valid numbers next to an invalid one (audited as refused).
    refused_party = _party("respondent", "吴十", 65)
    plain |= _numbers(refused_party)
    bad = {**refused_party, "phone": "12345"}
    refused = await api.client.post(
        "/v1/disputes", json=intake_body(parties=[_party("applicant", "郑一", 66), bad])
    )
    assert refused.status_code == 422
    plain |= _numbers(_party("applicant", "郑一", 66))

    dump = await _dump(api.app)
    tables = {table for table, _, _ in dump}
    # The dump is not vacuous: the places personal data could end up all have rows.
    assert {"parties", "disputes", "timeline_entries", "outbox_events", "idempotency_records"} <= tables
    assert {"audit_records", "users", "api_keys"} <= tables
    encrypted = [v for t, c, v in dump if (t, c) == ("parties", "id_number_enc")]
    assert len(encrypted) == 12  # six cases, two parties each
    stored_bodies = [v for t, c, v in dump if (t, c) == ("idempotency_records", "response_body")]
    assert len(stored_bodies) == 2, "both keyed requests keep a replayable response"
    masks = {v for t, c, v in dump if (t, c) == ("parties", "id_number_masked")}
    assert mask_id_number(applicants[0]["id_number"]) in masks

    leaks = _leaks(dump, plain)
    assert not leaks, "\n".join(sorted(set(leaks)))


# ---- ciphertexts are bound to their row and column ----------------------------------------------


async def _party_tokens(api) -> dict[str, tuple[Any, str | None, str | None]]:
    """party id (canonical text) -> (the id as the driver returns it, id_number_enc, phone_enc)."""
    async with api.app.state.db.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT id, id_number_enc, phone_enc FROM parties"))).all()
    return {str(uuid.UUID(str(raw))): (raw, id_enc, phone_enc) for raw, id_enc, phone_enc in rows}


async def _set_id_number_enc(api, raw_id: Any, token: str) -> None:
    async with api.app.state.db.engine.begin() as conn:
        result = await conn.execute(
            text("UPDATE parties SET id_number_enc = :token WHERE id = :id"), {"token": token, "id": raw_id}
        )
        assert result.rowcount == 1


def _integrity_problem(response, plain: set[str]) -> None:
    assert response.status_code == 500, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"] == "/problems/data-integrity"
    assert not any(p in response.text for p in plain)


async def test_ciphertexts_swapped_between_parties_do_not_decrypt(api):
    a_parties = [_party("applicant", "张三", 71), _party("respondent", "李四", 72)]
    b_parties = [_party("applicant", "王五", 73), _party("respondent", "赵六", 74)]
    plain = _numbers(*a_parties, *b_parties)
    a = await api.intake(parties=a_parties)
    b = await api.intake(parties=b_parties)
    pa, pb = a["parties"][0]["id"], b["parties"][0]["id"]
    tokens = await _party_tokens(api)
    raw_a, token_a, _ = tokens[pa]
    raw_b, token_b, _ = tokens[pb]
    assert token_a and token_b and token_a != token_b

    await _set_id_number_enc(api, raw_a, token_b)
    await _set_id_number_enc(api, raw_b, token_a)

    for dispute in (a, b):
        _integrity_problem(await api.client.get(f"/v1/disputes/{dispute['id']}"), plain)
    _integrity_problem(await api.client.get("/v1/disputes"), plain)
    # Masked readers never decrypt: the masked copy is still shown.
    masked = await api.client.get(f"/v1/disputes/{a['id']}", headers=api.headers("supervisor"))
    assert masked.status_code == 200
    assert masked.json()["parties"][0]["id_number"] == mask_id_number(a_parties[0]["id_number"])

    cipher = api.app.state.identity.cipher
    with pytest.raises(PiiIntegrityError):
        cipher.decrypt(token_b, table="parties", column="id_number", row_id=pa)
    with pytest.raises(PiiIntegrityError):
        cipher.decrypt(token_a, table="parties", column="id_number", row_id=pb)
    # The tokens themselves are intact: only the binding to the row fails.
    assert (
        cipher.decrypt(token_a, table="parties", column="id_number", row_id=pa) == a_parties[0]["id_number"]
    )
    assert (
        cipher.decrypt(token_b, table="parties", column="id_number", row_id=pb) == b_parties[0]["id_number"]
    )

    # Put them back: the case reads again.
    await _set_id_number_enc(api, raw_a, token_a)
    await _set_id_number_enc(api, raw_b, token_b)
    restored = await api.client.get(f"/v1/disputes/{a['id']}")
    assert restored.status_code == 200
    assert restored.json()["parties"][0]["id_number"] == a_parties[0]["id_number"]


async def test_a_phone_ciphertext_moved_into_the_id_number_column_does_not_decrypt(api):
    parties = [_party("applicant", "张三", 75), _party("respondent", "李四", 76)]
    dispute = await api.intake(parties=parties)
    pid = dispute["parties"][1]["id"]
    raw, _, phone_token = (await _party_tokens(api))[pid]
    assert phone_token

    await _set_id_number_enc(api, raw, phone_token)

    _integrity_problem(await api.client.get(f"/v1/disputes/{dispute['id']}"), _numbers(*parties))
    cipher = api.app.state.identity.cipher
    with pytest.raises(PiiIntegrityError):
        cipher.decrypt(phone_token, table="parties", column="id_number", row_id=pid)
    assert cipher.decrypt(phone_token, table="parties", column="phone", row_id=pid) == parties[1]["phone"]


# ---- the same person across cases ---------------------------------------------------------------


async def test_search_by_party_and_related_cases(api):
    shared = _party("applicant", "张三", 81)
    a = await api.intake(parties=[shared, _party("respondent", "李四", 82)])
    b = await api.intake(
        parties=[_party("applicant", "王五", 83), {**shared, "role": "respondent", "phone": "13900000899"}]
    )
    c = await api.intake(parties=[_party("applicant", "赵六", 84), _party("respondent", "钱七", 85)])

    found = await api.client.post("/v1/disputes/search-by-party", json={"id_number": shared["id_number"]})
    assert found.status_code == 200, found.text
    assert {d["id"] for d in found.json()["items"]} == {a["id"], b["id"]}
    assert all(not p["masked"] for d in found.json()["items"] for p in d["parties"])
    # The lookup normalises like intake: lower-case check digit, stray spaces.
    spaced = await api.client.post(
        "/v1/disputes/search-by-party", json={"id_number": f"  {shared['id_number'].lower()} "}
    )
    assert {d["id"] for d in spaced.json()["items"]} == {a["id"], b["id"]}
    # The phone differs between the two cases: only the first matches it.
    by_phone = await api.client.post("/v1/disputes/search-by-party", json={"phone": shared["phone"]})
    assert [d["id"] for d in by_phone.json()["items"]] == [a["id"]]
    nobody = await api.client.post(
        "/v1/disputes/search-by-party", json={"id_number": resident_id(99, born=date(1995, 1, 1))}
    )
    assert nobody.status_code == 200 and nobody.json()["items"] == []

    refused = await api.client.post(
        "/v1/disputes/search-by-party",
        json={"id_number": shared["id_number"]},
        headers=api.headers("supervisor"),
    )
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["type"] == "/problems/forbidden"
    assert shared["id_number"] not in refused.text

    related = await api.client.get(f"/v1/disputes/{a['id']}/related")
    assert related.status_code == 200
    assert [d["id"] for d in related.json()["items"]] == [b["id"]]
    back = await api.client.get(f"/v1/disputes/{b['id']}/related")
    assert [d["id"] for d in back.json()["items"]] == [a["id"]]
    alone = await api.client.get(f"/v1/disputes/{c['id']}/related")
    assert alone.status_code == 200 and alone.json()["items"] == []


# ---- masking for roles without pii:read ---------------------------------------------------------


def _assert_masked_body(response, masks: list[str]) -> None:
    assert response.status_code == 200, response.text
    body = response.text
    assert not _looks_like_pii(body), _looks_like_pii(body)
    for mask in masks:
        assert mask in body, f"{mask} missing from {body}"


async def test_roles_without_pii_read_see_masks_everywhere(api):
    applicant = {**person("applicant", "张三", 1), "address": "枫桥镇, 电话13800000001"}
    respondent = person("respondent", "李四", 2)
    described = f"申请人张三(电话13800000001, 身份证{applicant['id_number']})与邻居李四因院墙滴水发生争执。"
    dispute = await api.intake(parties=[applicant, respondent], description=described)
    # A second case with the same respondent, so /related has something to show.
    await api.intake(parties=[person("applicant", "王五", 3), respondent])

    id_mask = mask_id_number(applicant["id_number"])
    phone_mask = mask_phone(applicant["phone"])
    assert (id_mask, phone_mask) == ("330***********0016", "138****0001")
    masks = [id_mask, phone_mask, mask_id_number(respondent["id_number"]), mask_phone(respondent["phone"])]

    supervisor = api.headers("supervisor")
    one = await api.client.get(f"/v1/disputes/{dispute['id']}", headers=supervisor)
    _assert_masked_body(one, masks)
    shown = one.json()
    assert all(p["masked"] for p in shown["parties"])
    assert shown["parties"][0]["id_number"] == id_mask and shown["parties"][0]["phone"] == phone_mask
    assert "138****0001" in shown["description"] and "13800000001" not in shown["description"]
    assert id_mask in shown["description"]
    assert shown["parties"][0]["address"] == "枫桥镇, 电话138****0001"

    listed = await api.client.get("/v1/disputes", headers=supervisor)
    _assert_masked_body(listed, masks)
    assert len(listed.json()["items"]) == 2
    assert all(p["masked"] for d in listed.json()["items"] for p in d["parties"])

    related = await api.client.get(f"/v1/disputes/{dispute['id']}/related", headers=supervisor)
    _assert_masked_body(related, [mask_id_number(respondent["id_number"]), mask_phone(respondent["phone"])])
    assert len(related.json()["items"]) == 1 and '"masked":true' in related.text

    # The supervisor's own action, with a number typed into its note.
    acted = await api.client.post(
        f"/v1/disputes/{dispute['id']}/actions/accept",
        json={"note": "已电话联系申请人 138 0000 0001, 同意受理"},
        headers={**supervisor, "If-Match": f'"{dispute["version"]}"'},
    )
    _assert_masked_body(acted, masks)
    assert '"masked":true' in acted.text and acted.json()["status"] == "accepted"

    timeline = await api.client.get(f"/v1/disputes/{dispute['id']}/timeline", headers=supervisor)
    _assert_masked_body(timeline, [])
    accept_entry = timeline.json()[-1]
    assert accept_entry["action"] == "accept"
    assert "138****0001" in accept_entry["reason"] and "138****0001" in accept_entry["payload"]["note"]

    # The clerk (pii:read) sees the same case unmasked, free text included.
    clerk_view = await api.client.get(f"/v1/disputes/{dispute['id']}")
    assert clerk_view.status_code == 200
    seen = clerk_view.json()
    assert seen["description"] == described
    assert seen["parties"][0]["id_number"] == applicant["id_number"]
    assert seen["parties"][0]["phone"] == applicant["phone"]
    assert not any(p["masked"] for p in seen["parties"])
    clerk_timeline = await api.client.get(f"/v1/disputes/{dispute['id']}/timeline")
    assert "138 0000 0001" in clerk_timeline.json()[-1]["reason"]

    # Roles that cannot read cases at all are refused rather than shown anything.
    for role in ("admin", "auditor"):
        denied = await api.client.get(f"/v1/disputes/{dispute['id']}", headers=api.headers(role))
        assert denied.status_code == 403 and applicant["id_number"] not in denied.text

    # The outbox (what other systems receive) never carries the numbers.
    async with api.app.state.db.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT * FROM outbox_events"))).all()
    assert len(rows) == 3  # two registrations and one acceptance
    plain = _numbers(applicant, respondent, person("applicant", "王五", 3))
    for row in rows:
        for value in row:
            rendered = str(value)
            assert not any(p in rendered for p in plain), rendered
            assert not _looks_like_pii(rendered), rendered


async def test_numbers_written_into_minutes_agreements_and_the_dossier_are_masked_too(api):
    """个人信息保护法 Art. 51: a mediator writes a party's numbers into the minutes or the agreement;
    a supervisor (no pii:read) reads them masked there as in the case's description, while the
    body, the clerk and the court read them as written."""
    dispute = await api.drive("mediating")
    applicant = next(p for p in dispute["parties"] if p["role"] == "applicant")
    clerk_case = await api.get(dispute)
    raw_id = next(p for p in clerk_case["parties"] if p["id"] == applicant["id"])["id_number"]
    noted = f"申请人电话13912345678, 身份证{raw_id}"
    masks = ["139****5678", mask_id_number(raw_id)]
    body = api.acting("body_mediator", dispute)

    scheduled = await api.client.post(
        f"/v1/disputes/{dispute['id']}/sessions",
        json={"scheduled_at": "2026-06-01T09:00:00+08:00", "place": "枫源村调委会调解室"},
        headers=body,
    )
    assert scheduled.status_code == 201, scheduled.text
    recorded = await api.client.post(
        f"/v1/disputes/{dispute['id']}/sessions/{scheduled.json()['id']}/record",
        json={
            "held_at": "2026-06-01T09:30:00+08:00",
            "attendees": [{"party_id": applicant["id"], "name": applicant["name"], "capacity": "当事人"}],
            "minutes": f"调解员释明法律规定。{noted}",
            "outcome": "continued",
        },
        headers={**body, "If-Match": f'"{scheduled.json()["version"]}"'},
    )
    assert recorded.status_code == 200, recorded.text
    content = api.agreement_content(dispute)
    obligation = {**content["obligations"][0], "description": f"赔偿损失, 汇入{noted}"}
    agreement = await api.signed_agreement(
        dispute, facts=f"双方因院墙滴水发生争执。{noted}", terms=[noted], obligations=[obligation]
    )
    dispute = await api.step(await api.step(await api.get(dispute), "agree"), "request_confirmation")
    handoff_id = dispute["handoff"]["id"]

    supervisor = api.headers("supervisor")
    reads = {
        "sessions": f"/v1/disputes/{dispute['id']}/sessions",
        "agreements": f"/v1/disputes/{dispute['id']}/agreements",
        "agreement": f"/v1/disputes/{dispute['id']}/agreements/{agreement['id']}",
        "document": f"/v1/disputes/{dispute['id']}/agreements/{agreement['id']}/document",
        "dossier": f"/v1/handoffs/{handoff_id}",
        "handoffs": f"/v1/disputes/{dispute['id']}/handoffs",
    }
    for name, path in reads.items():
        response = await api.client.get(path, headers=supervisor)
        assert raw_id not in response.text and "13912345678" not in response.text, name
        if name != "handoffs":
            _assert_masked_body(response, masks)
    # The front-end's case page and printable agreement, as the supervisor opens them.
    cookie = {"Cookie": f"mediation_session={api.tokens[('supervisor', api.bodies['center'])]}"}
    for page in (f"/cases/{dispute['id']}", f"/cases/{dispute['id']}/agreements/{agreement['id']}/print"):
        shown = await api.client.get(page, headers={**cookie, "Accept": "text/html"})
        assert shown.status_code == 200, page
        assert raw_id not in shown.text and "13912345678" not in shown.text, page
        assert "139****5678" in shown.text, page
    dossier = (await api.client.get(reads["dossier"], headers=supervisor)).json()
    assert dossier["agreement"]["content_hash"] == agreement["content_hash"]
    assert dossier["agreement"]["terms"] == [f"申请人电话139****5678, 身份证{mask_id_number(raw_id)}"]

    # Those who hold pii:read read what was written.
    court = api.auth("court", uuid.UUID(str(dispute["handoff_target_id"])))
    for path, headers in (
        (reads["sessions"], body),
        (reads["agreement"], api.headers()),
        (reads["dossier"], court),
    ):
        response = await api.client.get(path, headers=headers)
        assert response.status_code == 200 and "13912345678" in response.text and raw_id in response.text


async def test_a_search_never_tells_a_masked_number_a_digit_at_a_time(api):
    """The supervisor sees 138****0001 in the description; searching the description for digits
    would confirm the hidden ones one by one. Without pii:read, text holding a digit searches case
    numbers and names only; the clerk's search still finds the case by its number in the text."""
    described = "申请人张三(电话13800000001)与邻居李四因院墙滴水发生争执。"
    dispute = await api.intake(description=described)
    supervisor = api.headers("supervisor")

    async def found(text: str, headers: dict[str, str] | None = None) -> list[str]:
        response = await api.client.get("/v1/disputes", params={"q": text}, headers=headers or {})
        assert response.status_code == 200, response.text
        return [d["id"] for d in response.json()["items"]]

    for probe in ("1380", "13800", "１３８００", "电话13800000001"):
        assert await found(probe, supervisor) == [], probe
    assert await found("院墙滴水", supervisor) == [dispute["id"]]
    assert await found(dispute["case_number"], supervisor) == [dispute["id"]]
    assert await found("13800000001") == [dispute["id"]]  # the clerk holds pii:read
