"""Conditional reads (RFC 9110 §13.1.2): the case and a handoff's dossier, which courts' and
commissions' systems poll, answer 304 without a body while the representation the poller holds is
current, and in full once anything it shows has changed; a 304 shows nothing and records no
disclosure. The dossier's ETag names its case's version too, and is still the If-Match of the
handoff's steps, by the handoff's part."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from mediation.audit.models import AuditRecord
from tests.support import Api
from tests.test_documents import audit_rows
from tests.test_http_semantics import exchange


def _case_path(dispute: dict[str, Any]) -> str:
    return f"/v1/disputes/{dispute['id']}"


async def _read(api: Api, path: str, if_none_match: str | None = None, **headers: str) -> httpx.Response:
    sent = {**headers, **({"If-None-Match": if_none_match} if if_none_match is not None else {})}
    return await api.client.get(path, headers=sent)


def _unmodified(response: httpx.Response, etag: str) -> None:
    assert response.status_code == 304, response.text
    assert response.content == b""
    assert response.headers["etag"] == etag
    # The headers the 200 carries that describe it (RFC 9110 §15.4.5).
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["vary"] == "Authorization, X-API-Key, Accept-Language"
    assert "content-type" not in response.headers


async def _pii_reads(api: Api, dispute: dict[str, Any]) -> int:
    return len(
        await audit_rows(api, AuditRecord.action == "pii.read", AuditRecord.object_id == dispute["id"])
    )


# ---- the case ----------------------------------------------------------------------------------


async def test_a_case_read_again_unchanged_is_304_without_a_body_or_a_disclosure_record(api: Api) -> None:
    dispute = await api.intake()
    path = _case_path(dispute)
    first = await _read(api, path)
    assert first.status_code == 200
    etag = first.headers["etag"]
    assert etag == f'"{dispute["version"]}"'
    assert first.headers["vary"] == "Authorization, X-API-Key, Accept-Language"
    # The clerk holds pii:read: the 200 showed the numbers and was recorded; a 304 shows nothing.
    recorded = await _pii_reads(api, dispute)
    assert recorded >= 1

    for sent in (etag, f"W/{etag}", f'"999", {etag}', f'W/"998",{etag} , "997"', "*"):
        _unmodified(await _read(api, path, sent), etag)
    assert await _pii_reads(api, dispute) == recorded


async def test_a_case_changed_since_is_answered_in_full_with_its_new_etag(api: Api) -> None:
    dispute = await api.intake()
    path = _case_path(dispute)
    etag = (await _read(api, path)).headers["etag"]

    corrected = await api.client.post(
        f"{path}/corrections",
        json={
            "reason": "当事人补充说明了事实",
            "description": "邻里之间因排水沟堵塞引发纠纷, 已持续两个月。",
        },
        headers={"If-Match": etag},
    )
    assert corrected.status_code == 200, corrected.text

    again = await _read(api, path, etag)
    assert again.status_code == 200
    assert again.json()["description"] == "邻里之间因排水沟堵塞引发纠纷, 已持续两个月。"
    assert again.headers["etag"] == corrected.headers["etag"] == f'"{dispute["version"] + 1}"'
    # Naming an older ETag beside the current one is still a match.
    _unmodified(await _read(api, path, f"{etag}, {again.headers['etag']}"), again.headers["etag"])


async def test_a_malformed_if_none_match_is_ignored_and_the_case_answered_in_full(api: Api) -> None:
    dispute = await api.intake()
    path = _case_path(dispute)
    version = dispute["version"]
    for malformed in (str(version), f'"{version}"x', f'*, "{version}"', f'"{version}', "W/1"):
        response = await _read(api, path, malformed)
        assert response.status_code == 200, malformed
        assert response.json()["id"] == dispute["id"], malformed


async def test_head_of_a_current_case_is_304_and_of_a_stale_one_its_gets_headers(api: Api) -> None:
    dispute = await api.intake()
    path = _case_path(dispute)
    etag = f'"{dispute["version"]}"'

    status, head, body = await exchange(api, "HEAD", path, {**api.auth(), "if-none-match": etag})
    assert (status, head["etag"], b"".join(body)) == (304, etag, b"")
    status, head, body = await exchange(api, "HEAD", path, {**api.auth(), "if-none-match": '"0"'})
    assert (status, head["etag"], b"".join(body)) == (200, etag, b"")
    assert head["content-type"] == "application/json"


# ---- the dossier -------------------------------------------------------------------------------


async def _pending(api: Api) -> tuple[dict[str, Any], str, dict[str, str]]:
    """A case before its court for judicial confirmation: the case, its handoff's path and the
    court's credentials."""
    dispute = await api.drive("confirmation_pending")
    court = api.auth("court", uuid.UUID(dispute["handoff_target_id"]))
    return dispute, f"/v1/handoffs/{dispute['handoff']['id']}", court


async def _owner_set(api: Api, dispute: dict[str, Any]) -> dict[str, Any]:
    """A change on the case's timeline that touches nothing of the handoff: a supervisor names
    the official who owns the case (包案)."""
    response = await api.client.put(
        f"/v1/disputes/{dispute['id']}/owner",
        json={"name": "李明", "title": "镇党委副书记", "reason": "群体性纠纷, 由镇领导包案"},
        headers={**api.auth("supervisor"), **(await api.case_if_match(dispute["id"]))},
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_the_dossier_read_again_unchanged_is_304_and_after_a_change_to_its_case_in_full(
    api: Api,
) -> None:
    dispute, path, court = await _pending(api)
    first = await _read(api, path, **court)
    assert first.status_code == 200
    dossier = first.json()
    etag = first.headers["etag"]
    handoff_version, case_version = dossier["handoff"]["version"], dossier["case"]["version"]
    assert etag.startswith(f'"h{handoff_version}-c{case_version}-')
    recorded = await _pii_reads(api, dispute)

    for sent in (etag, f"W/{etag}", f'"{handoff_version}", {etag}', "*"):
        _unmodified(await _read(api, path, sent, **court), etag)
    # The court holds pii:read: its 200 recorded the read, its 304s nothing.
    assert await _pii_reads(api, dispute) == recorded

    # The handoff's own ETag is no validator of the dossier: it does not name the case's version.
    assert (await _read(api, path, f'"{handoff_version}"', **court)).status_code == 200

    await _owner_set(api, dispute)
    changed = await _read(api, path, etag, **court)
    assert changed.status_code == 200
    now = changed.json()
    assert now["handoff"]["version"] == handoff_version  # the handoff itself did not change
    assert now["case"]["owner"]["name"] == "李明"
    assert (
        now["timeline"][-1]["action"] == "owner_set" and len(now["timeline"]) == len(dossier["timeline"]) + 1
    )
    assert changed.headers["etag"].startswith(f'"h{handoff_version}-c{case_version + 1}-')
    _unmodified(await _read(api, path, changed.headers["etag"], **court), changed.headers["etag"])


async def test_readers_shown_other_things_of_the_dossier_get_other_etags(api: Api) -> None:
    """The court reads the parties' numbers in full, a supervisor masked: one's copy never
    validates the other's, nor one language's the other's."""
    _, path, court = await _pending(api)
    by_court = await _read(api, path, **court)
    by_supervisor = await _read(api, path, **api.auth("supervisor"))
    assert by_court.status_code == by_supervisor.status_code == 200
    shown = [p["masked"] for p in by_court.json()["case"]["parties"]]
    masked = [p["masked"] for p in by_supervisor.json()["case"]["parties"]]
    assert (set(shown), set(masked)) == ({False}, {True})
    assert by_court.headers["etag"] != by_supervisor.headers["etag"]

    crossed = await _read(api, path, by_court.headers["etag"], **api.auth("supervisor"))
    assert crossed.status_code == 200 and crossed.headers["etag"] == by_supervisor.headers["etag"]
    assert {p["masked"] for p in crossed.json()["case"]["parties"]} == {True}

    english = await _read(api, path, by_court.headers["etag"], **court, **{"Accept-Language": "en"})
    assert english.status_code == 200 and english.headers["etag"] != by_court.headers["etag"]


async def test_head_of_a_current_dossier_is_304_without_a_body(api: Api) -> None:
    _, path, court = await _pending(api)
    etag = (await _read(api, path, **court)).headers["etag"]
    status, head, body = await exchange(api, "HEAD", path, {**court, "if-none-match": etag})
    assert (status, head["etag"], b"".join(body)) == (304, etag, b"")


# ---- If-Match on the handoff's steps, with the dossier's ETag ------------------------------------


async def _accept(api: Api, path: str, court: dict[str, str], if_match: str) -> httpx.Response:
    return await api.client.post(
        f"{path}/acceptance",
        json={"decision": "accepted", "case_number": "(2026)浙0681民特7号"},
        headers={**court, "If-Match": if_match},
    )


async def test_a_step_takes_the_dossiers_etag_by_its_handoff_part_even_after_the_case_moved(
    api: Api,
) -> None:
    dispute, path, court = await _pending(api)
    read = await _read(api, path, **court)
    etag, version = read.headers["etag"], read.json()["handoff"]["version"]
    # The case moves on (its timeline), the handoff does not: the court's answer is not stale.
    await _owner_set(api, dispute)
    assert (await _read(api, path, etag, **court)).status_code == 200

    accepted = await _accept(api, path, court, etag)
    assert accepted.status_code == 200, accepted.text
    # The step's answer carries the handoff's own ETag, as it always did.
    assert accepted.headers["etag"] == f'"{version + 1}"'
    assert accepted.json()["status"] == "accepted"


async def test_a_step_with_a_stale_or_weak_dossier_etag_is_refused_as_before(api: Api) -> None:
    _, path, court = await _pending(api)
    read = await _read(api, path, **court)
    etag, version = read.headers["etag"], read.json()["handoff"]["version"]
    stale = (
        etag.replace(f'"h{version}-', f'"h{version - 1}-', 1)
        if version > 1
        else etag.replace(f'"h{version}-', f'"h{version + 5}-', 1)
    )

    refused = await _accept(api, path, court, stale)
    assert refused.status_code == 412, refused.text
    assert refused.json()["type"] == "/problems/stale-version"
    assert refused.json()["current_etag"] == f'"{version}"'

    weak = await _accept(api, path, court, f"W/{etag}")
    assert (weak.status_code, weak.json()["code"]) == (412, "weak_etag")

    # Nothing was answered: the dossier is unchanged, and a 304 says so.
    _unmodified(await _read(api, path, etag, **court), etag)
    assert (await _accept(api, path, court, etag)).status_code == 200
