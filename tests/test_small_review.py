"""A webhook whose key has lapsed is not redelivered to; a file that starts as text is text only
if it is text throughout."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from mediation.documents.storage import HEAD_BYTES
from mediation.identity.models import ApiKey
from tests.receiver import Receiver
from tests.support import Api
from tests.test_documents import problem, staging_leftovers, stored_files, upload, uploaded

# ---- redelivering to a subscription whose key has lapsed ------------------------------------------


async def _statuses(api: Api, sub_id: str, headers: dict[str, str]) -> list[str]:
    response = await api.client.get(f"/v1/webhooks/{sub_id}/deliveries", headers=headers)
    assert response.status_code == 200, response.text
    return sorted(d["status"] for d in response.json())


async def test_a_subscription_whose_key_has_expired_is_not_redelivered_to_until_taken_on(
    api: Api, receiver: Receiver
) -> None:
    admin = await api.signed_in("body_admin", "village")
    lapsing_key = await api.expiring_key()
    key = {"X-API-Key": lapsing_key["secret"]}
    made = await api.client.post("/v1/webhooks", json={"url": receiver.url}, headers=key)
    assert made.status_code == 201, made.text
    sub_id = made.json()["id"]
    # A case event queued for it, cancelled when the integrator disabled it, which it enabled again.
    dispute = await api.step(await api.intake(), "accept")
    await api.step(dispute, "assign", {"body_id": str(api.bodies["village"])})
    assert (await api.client.post(f"/v1/webhooks/{sub_id}/disable", headers=key)).status_code == 200
    enabled = await api.client.post(f"/v1/webhooks/{sub_id}/enable", headers=key)
    assert enabled.status_code == 200, enabled.text
    assert enabled.json()["active"] is True
    (cancelled,) = (await api.client.get(f"/v1/webhooks/{sub_id}/deliveries", headers=admin)).json()
    assert cancelled["status"] == "cancelled"

    # The hour passes: the key expires, and the relay has not stopped the subscription yet.
    async with api.app.state.db.writer() as session, session.begin():
        await session.execute(
            update(ApiKey)
            .where(ApiKey.id == uuid.UUID(lapsing_key["id"]))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    assert (await api.client.get(f"/v1/webhooks/{sub_id}", headers=admin)).json()["active"] is False

    # Redelivering would queue what the relay then cancels: refused as for a disabled one, saying why.
    for language, says in (("en", "expired"), ("zh", "已过期")):
        refused = await api.client.post(
            f"/v1/webhooks/{sub_id}/redeliver", headers={**admin, "Accept-Language": language}
        )
        body = problem(refused, 409, "conflict")
        assert body["code"] == "subscriber_key_lapsed"
        assert says in body["detail"], body
    one = await api.client.post(
        f"/v1/webhook-deliveries/{cancelled['id']}/redeliver", headers={**admin, "Accept-Language": "en"}
    )
    assert problem(one, 409, "conflict")["code"] == "subscriber_key_lapsed"
    assert await _statuses(api, sub_id, admin) == ["cancelled"]

    # Nor does another key enable it: it could not know who chose the URL.
    other = await api.client.post(
        "/v1/api-keys",
        json={"organisation_id": str(api.bodies["village"]), "role": "body_admin", "name": "新密钥"},
        headers=admin,
    )
    assert other.status_code == 201, other.text
    not_enabled = await api.client.post(
        f"/v1/webhooks/{sub_id}/enable",
        headers={"X-API-Key": other.json()["secret"], "Accept-Language": "en"},
    )
    body = problem(not_enabled, 403, "forbidden")
    assert body["code"] == "subscriber_key_lapsed"
    assert "revoked or expired" in body["detail"]
    still = (await api.client.get(f"/v1/webhooks/{sub_id}", headers=admin)).json()
    assert (still["active"], still["created_by"]) == (False, lapsing_key["id"])
    assert await _statuses(api, sub_id, admin) == ["cancelled"]

    # Taken on by the signed-in administrator, its backlog is sent again.
    taken = await api.client.post(f"/v1/webhooks/{sub_id}/enable", headers=admin)
    assert taken.status_code == 200, taken.text
    assert (taken.json()["active"], taken.json()["disabled_reason"]) == (True, None)
    again = await api.client.post(f"/v1/webhooks/{sub_id}/redeliver", headers=admin)
    assert again.status_code == 200, again.text
    assert again.json() == {"redelivered": 1, "more": False}
    assert await _statuses(api, sub_id, admin) == ["pending"]


# ---- text throughout ------------------------------------------------------------------------------

# A log or a CSV export: a header of ASCII longer than the first 8 KiB, which detection reads.
HEADER = "".join(f"line {n:05d}, case 330681-2026-{n:06d}, status ok\r\n" for n in range(300))
MINUTES = "调解笔录\r\n申请人: 双方同意分期还款, 每月 3000 元。\r\n"
# What follows the text in a file that is not text: a program's code, an image's pixels.
BINARY = bytes(range(256)) * 64


@pytest.mark.parametrize(
    "content",
    [
        HEADER.encode() + BINARY,
        (MINUTES * 200).encode("gbk") + BINARY,
        (MINUTES * 200).encode("utf-8") + b"\x7fELF\x02\x01\x01" + b"\x00" * 4096,
        (MINUTES * 200).encode("utf-16") + b"\x01\x00\x02\x00\x03\x00" * 1000,
        # Far into the file, past the chunks it is read in.
        (HEADER * 80).encode() + b"\x00",
    ],
    ids=["ascii", "gbk", "utf-8", "utf-16", "late"],
)
async def test_a_file_that_starts_as_text_and_turns_binary_is_refused(api: Api, content: bytes) -> None:
    assert len(content) > HEAD_BYTES
    dispute = await api.intake()
    before = stored_files(api)
    refused = await upload(api, dispute, content, "日志.txt", content_type="text/plain")
    body = problem(refused, 415, "unsupported-media-type")
    assert body["detected_media_type"] == "application/octet-stream"
    assert "text/plain" in body["allowed_media_types"]
    assert stored_files(api) == before and staging_leftovers(api) == []
    listed = await api.client.get(f"/v1/disputes/{dispute['id']}/documents", headers=api.headers())
    assert listed.status_code == 200, listed.text
    assert "日志.txt" not in [d["original_name"] for d in listed.json()]


@pytest.mark.parametrize(
    ("encoded", "charset"),
    [
        ((MINUTES * 30000).encode("gbk"), "gb18030"),
        ((HEADER + MINUTES * 30000).encode("gbk"), "gb18030"),
        ((MINUTES * 30000 + "𠮷").encode("gb18030"), "gb18030"),
        ((MINUTES * 30000).encode("utf-16"), "utf-16"),
        (b"\xfe\xff" + (MINUTES * 30000).encode("utf-16-be"), "utf-16"),
        ((MINUTES * 30000).encode("utf-8"), "utf-8"),
        ("\ufeff".encode() + (HEADER + MINUTES * 30000).encode("utf-8"), "utf-8"),
    ],
    ids=["gbk", "gbk-after-ascii", "gb18030", "utf-16le-bom", "utf-16be-bom", "utf-8", "utf-8-bom"],
)
async def test_a_long_text_file_is_still_accepted_in_each_character_set(
    api: Api, encoded: bytes, charset: str
) -> None:
    # More than a mebibyte: read in several chunks, characters split across them.
    assert len(encoded) > 1024 * 1024
    dispute = await api.intake()
    document = await uploaded(api, dispute, encoded, "笔录.txt", content_type="text/plain")
    assert document["media_type"] == "text/plain"
    download = await api.client.get(document["href"])
    assert download.status_code == 200 and download.content == encoded
    assert download.headers["content-type"] == f"text/plain; charset={charset}"


async def test_a_pdf_is_still_accepted_whatever_follows_its_first_bytes(api: Api) -> None:
    content = b"%PDF-1.7\n" + HEADER.encode() + BINARY
    dispute = await api.intake()
    document = await uploaded(api, dispute, content, "扫描件.pdf")
    assert document["media_type"] == "application/pdf"
