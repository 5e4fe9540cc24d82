"""Finishing a rotation of the personal-data keys: `mediation pii status` and `mediation pii rekey`.

A new key put first in MEDIATION_PII_ENCRYPTION_KEYS encrypts what is written from then on; what
was written before stays under the old key until `rekey` re-encrypts it. Only then can the old key
be dropped, and the data must still open without it: ID and phone numbers, webhook secrets and the
responses kept for idempotent retries.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest
from sqlalchemy import select, text, update

from mediation.core.pii import PiiCipher, generate_key, mask_phone
from mediation.core.principal import Principal, Role
from mediation.disputes.models import Party
from mediation.ops.pii_keys import SEALED_FIELDS, rekey, status
from mediation.ops.pii_phones import normalise_stored_phones
from tests.conftest import TEST_SECRETS
from tests.receiver import Receiver
from tests.support import Api, commit_elsewhere, intake_body, person
from tests.test_audit import records
from tests.test_webhooks import subscribe

OPERATOR = Principal(Role.system, "cli:test", kind="system")
NEW_KEY = generate_key()
OLD_KEYS = TEST_SECRETS["pii_encryption_keys"]  # "t1:..."


def cipher(keys: str) -> PiiCipher:
    return PiiCipher.from_secrets(keys, TEST_SECRETS["pii_index_key"])


async def _everything_sealed(api: Api, receiver: Receiver) -> dict[str, int]:
    """A case with numbers, a webhook subscription and an idempotent request: every kind of
    encrypted value; returns how many of each there are."""
    await api.intake()
    await subscribe(api, receiver.url, receiver=receiver)
    retried = await api.client.post(
        "/v1/disputes", json=intake_body(), headers={"Idempotency-Key": "window-0001"}
    )
    assert retried.status_code == 201, retried.text
    counts = {
        name: sum(r.by_key.values())
        for name, r in (await status(api.app.state.db, cipher(OLD_KEYS), verify=True)).items()
    }
    assert all(counts[f.name] > 0 for f in SEALED_FIELDS if f.aad_column != "previous_secret"), counts
    return counts


async def test_rekey_moves_every_value_to_the_new_key_and_the_old_one_can_go(
    api: Api, receiver: Receiver
) -> None:
    db = api.app.state.db
    counts = await _everything_sealed(api, receiver)
    phones = await _phones(api)
    rotated = cipher(f"t2:{NEW_KEY},{OLD_KEYS}")

    before = await status(db, rotated, verify=True)
    assert {name: dict(r.by_key) for name, r in before.items() if r.by_key} == {
        name: {"t1": n} for name, n in counts.items() if n
    }

    done = await rekey(db, rotated, OPERATOR, batch=2)  # several batches per field

    assert {name: r.rekeyed for name, r in done.items()} == counts
    after = await status(db, rotated, verify=True)
    assert {name: dict(r.by_key) for name, r in after.items() if r.by_key} == {
        name: {"t2": n} for name, n in counts.items() if n
    }
    # Without the old key every value still opens, and each is the value it was.
    new_only = await status(db, cipher(f"t2:{NEW_KEY}"), verify=True)
    assert all(not r.unreadable for r in new_only.values())
    async with db.reader() as session:
        party = (await session.scalars(select(Party).where(Party.phone_enc.is_not(None)).limit(1))).one()
    opened = cipher(f"t2:{NEW_KEY}").decrypt(
        party.phone_enc, table="parties", column="phone", row_id=str(party.id)
    )
    assert opened == phones[str(party.id)]
    # Recorded, by who ran it, with what it did.
    [record] = [r for r in await records(api.app) if r.action == "pii.rekey"]
    assert record.actor_id == "cli:test"
    assert record.details["active_key"] == "t2"
    assert record.details["fields"]["parties.phone"]["rekeyed"] == counts["parties.phone"]
    # A second run finds nothing left to do.
    again = await rekey(db, rotated, OPERATOR)
    assert sum(r.rekeyed for r in again.values()) == 0


async def _phones(api: Api) -> dict[str, str]:
    """Every party's phone number as the service shows it to the window clerk."""
    listed = await api.client.get("/v1/disputes", params={"limit": 100})
    return {p["id"]: p["phone"] for case in listed.json()["items"] for p in case["parties"] if p["phone"]}


async def test_a_value_that_does_not_open_is_left_and_listed(api: Api) -> None:
    db = api.app.state.db
    await api.intake()
    async with db.writer() as session, session.begin():
        damaged = (await session.scalars(select(Party).where(Party.phone_enc.is_not(None)).limit(1))).one()
        damaged_id = damaged.id
        # Another row's value: it decrypts for no row but its own (the associated data differs).
        other = (
            await session.scalars(
                select(Party).where(Party.phone_enc.is_not(None), Party.id != damaged_id).limit(1)
            )
        ).one()
        await session.execute(update(Party).where(Party.id == damaged_id).values(phone_enc=other.phone_enc))
        moved = other.phone_enc

    rotated = cipher(f"t2:{NEW_KEY},{OLD_KEYS}")
    checked = await status(db, rotated, verify=True)
    assert checked["parties.phone"].unreadable == [str(damaged_id)]
    done = await rekey(db, rotated, OPERATOR)
    assert done["parties.phone"].unreadable == [str(damaged_id)]
    async with db.reader() as session:
        assert await session.scalar(select(Party.phone_enc).where(Party.id == damaged_id)) == moved


@pytest.mark.postgres_only
async def test_a_value_changed_while_rekeying_is_not_overwritten(api: Api, monkeypatch) -> None:
    """The service changes a party's phone between the rekey's read and its write: the change
    stands, and the rekey counts it as changed meanwhile."""
    db = api.app.state.db
    await api.intake()
    rotated = cipher(f"t2:{NEW_KEY},{OLD_KEYS}")
    async with db.reader() as session:
        party_id = (
            await session.scalars(select(Party.id).where(Party.phone_enc.is_not(None)).limit(1))
        ).first()
    corrected = rotated.encrypt("13900000000", table="parties", column="phone", row_id=str(party_id))
    decrypt = PiiCipher.decrypt
    changed: list[bool] = []

    def decrypt_while_the_service_writes(self: PiiCipher, token: str, **where: str) -> str:
        if where.get("row_id") == str(party_id) and where.get("column") == "phone" and not changed:
            changed.append(True)
            # Another connection commits the correction now, after the rekey read the old value.
            commit_elsewhere(
                db, "UPDATE parties SET phone_enc = $1 WHERE id = $2::uuid", corrected, str(party_id)
            )
        return decrypt(self, token, **where)

    monkeypatch.setattr(PiiCipher, "decrypt", decrypt_while_the_service_writes)
    done = await rekey(db, rotated, OPERATOR)

    assert changed == [True]
    assert done["parties.phone"].changed_meanwhile == 1
    async with db.reader() as session:
        assert await session.scalar(select(Party.phone_enc).where(Party.id == party_id)) == corrected


async def test_the_commands_report_and_rekey(api: Api, settings, tmp_path) -> None:
    await api.intake()
    env = {
        **os.environ,
        "MEDIATION_DATABASE_URL": settings.database_url,
        "MEDIATION_JWT_SECRET": str(settings.jwt_secret),
        "MEDIATION_PII_INDEX_KEY": str(settings.pii_index_key),
        "MEDIATION_PII_ENCRYPTION_KEYS": f"t2:{NEW_KEY},{OLD_KEYS}",
    }

    def mediation(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "mediation", "pii", *args],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )

    before = mediation("status", "--verify")
    assert before.returncode == 0, before.stderr
    assert "values under other keys than t2: t1" in before.stdout
    moved = mediation("rekey", "--batch", "1")
    assert moved.returncode == 0, moved.stderr
    assert "re-encrypted" in moved.stdout
    env["MEDIATION_PII_ENCRYPTION_KEYS"] = f"t2:{NEW_KEY}"
    after = mediation("status", "--verify")
    assert after.returncode == 0, after.stderr
    assert "every value is under t2" in after.stdout
    async with api.app.state.db.reader() as session:
        assert await session.scalar(text("SELECT count(*) FROM parties WHERE phone_enc LIKE 't1.%'")) == 0
    phones = mediation("normalise-phones", "--batch", "1")
    assert phones.returncode == 0, phones.stderr
    assert "wrote 0 of 2 phone numbers in their one form" in phones.stdout


async def test_phones_stored_in_an_older_form_are_written_in_the_one_form_and_match_again(api: Api) -> None:
    """A landline stored with its hyphen before numbers had one form was indexed as written: a later
    intake of the same number without the hyphen did not find it. `mediation pii normalise-phones`
    writes it again as intake writes it now, with its mask and index."""
    db, keys = api.app.state.db, cipher(OLD_KEYS)
    applicant = person("applicant", "王五", 7)
    del applicant["id_type"], applicant["id_number"]
    applicant["phone"] = "057587654321"
    earlier = await api.intake(parties=[applicant, person("respondent", "李四", 2)])
    old_form = "0575-87654321"
    party_id = earlier["parties"][0]["id"]
    async with db.writer() as session, session.begin():
        await session.execute(
            update(Party)
            .where(Party.id == uuid.UUID(party_id))
            .values(
                phone_enc=keys.encrypt(old_form, table="parties", column="phone", row_id=party_id),
                phone_masked=mask_phone(old_form),
                phone_index=keys.index(old_form, kind="phone"),
            )
        )
    later = intake_body(parties=[applicant, person("respondent", "赵六", 3)])
    missed = await api.client.post("/v1/disputes", json=later, headers=api.headers())
    assert missed.json()["related_cases"] == []

    done = await normalise_stored_phones(db, keys, OPERATOR, batch=2)  # several batches

    assert (done.rewritten, done.unreadable, done.refused) == (1, [], [])
    found = await api.client.post("/v1/disputes", json=later, headers=api.headers())
    assert {r["id"] for r in found.json()["related_cases"]} == {earlier["id"], missed.json()["id"]}
    assert (await api.get(earlier))["parties"][0]["phone"] == "057587654321"
    [record] = [r for r in await records(api.app) if r.action == "pii.normalise_phones"]
    assert record.actor_id == "cli:test" and record.details["rewritten"] == 1
    # A second run finds nothing left to do.
    again = await normalise_stored_phones(db, keys, OPERATOR)
    assert again.rewritten == 0 and again.read == done.read + 2  # the later case's two parties
