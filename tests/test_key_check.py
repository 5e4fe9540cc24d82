"""The personal-data keys are checked against every key id the stored values were encrypted under,
and the ID-number index like the phone index, before a command that works with personal data starts
and by `/readyz` (which also covers a database that did not answer when `serve` started).

After a rotation the values are under several keys: a party's phone corrected since is under the
new one, its ID number still under the old. Checking one phone number said the keys were right
while every case with an older ID number answered 500.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text, update

from mediation.app import create_app
from mediation.core.db import Base
from mediation.core.pii import PiiCipher, generate_key
from mediation.core.settings import Settings
from mediation.disputes.models import Party
from tests.conftest import TEST_SECRETS
from tests.support import Api, person
from tests.test_configuration import mediation

OLD = f"old:{generate_key()}"
NEW = f"new:{generate_key()}"
INDEX_KEY = TEST_SECRETS["pii_index_key"]

# The cases are taken in under the old key only.
pytestmark = pytest.mark.parametrize("overrides", [{"pii_encryption_keys": OLD}])


@pytest.fixture(autouse=True)
async def _emptied_after(settings: Settings) -> AsyncIterator[None]:
    """The PostgreSQL database is shared by the tests of a run: values under these keys, left
    behind, would stop a later test's service with the usual ones."""
    yield
    if settings.database_url.startswith("postgresql"):
        app = create_app(settings)
        tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
        async with app.state.db.engine.begin() as conn:
            await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        await app.state.db.dispose()


def _environment(settings: Settings, keys: str, index_key: str = INDEX_KEY) -> dict[str, str]:
    return {
        "MEDIATION_DATABASE_URL": settings.database_url,
        "MEDIATION_JWT_SECRET": str(settings.jwt_secret),
        "MEDIATION_PII_ENCRYPTION_KEYS": keys,
        "MEDIATION_PII_INDEX_KEY": index_key,
    }


async def _phones_corrected_after_the_rotation(api: Api) -> None:
    """Every party's phone written again under the new key (as a correction of it is, once the new
    key comes first); the ID numbers stay under the old one."""
    rotated = PiiCipher.from_secrets(f"{NEW},{OLD}", INDEX_KEY)
    db = api.app.state.db
    async with db.writer() as session, session.begin():
        for party_id, phone in (await session.execute(select(Party.id, Party.phone_masked))).all():
            await session.execute(
                update(Party)
                .where(Party.id == party_id)
                .values(
                    phone_enc=rotated.encrypt(
                        f"1390000{phone[-4:]}", table="parties", column="phone", row_id=str(party_id)
                    ),
                    phone_index=rotated.index(f"1390000{phone[-4:]}", kind="phone"),
                )
            )


async def test_a_key_still_used_by_stored_id_numbers_and_missing_from_the_configuration_is_refused(
    api: Api, settings: Settings, tmp_path: Path
) -> None:
    await api.intake()
    await _phones_corrected_after_the_rotation(api)

    code, out, err = await mediation(tmp_path, "clocks", **_environment(settings, NEW))
    assert code == 2, (out, err)
    assert "Traceback" not in err, err
    assert "lack the key id(s) old (parties.id_number)" in err, err
    assert "mediation pii status --verify" in err, err

    # The old key listed after the new one: both open what they wrote.
    code, out, err = await mediation(tmp_path, "clocks", **_environment(settings, f"{NEW},{OLD}"))
    assert code == 0, (out, err)


async def test_an_id_number_index_under_another_index_key_is_refused(
    api: Api, settings: Settings, tmp_path: Path
) -> None:
    # Parties whose phone was not given: their ID numbers' index is all there is to check.
    without_phones = [
        {**person(role, name, serial), "phone": None}
        for role, name, serial in (
            ("applicant", "张三", 1),
            ("respondent", "李四", 2),
        )
    ]
    await api.intake(parties=without_phones)
    async with api.app.state.db.reader() as session:
        assert await session.scalar(select(Party.id).where(Party.phone_enc.is_not(None))) is None

    code, out, err = await mediation(tmp_path, "clocks", **_environment(settings, OLD, generate_key()))
    assert code == 2, (out, err)
    assert "the index key configured" in err and "(parties.id_number)" in err, err

    code, out, err = await mediation(tmp_path, "clocks", **_environment(settings, OLD))
    assert code == 0, (out, err)


async def test_readyz_is_not_ready_until_the_keys_open_the_data(api: Api, settings: Settings) -> None:
    """A server started while its database did not answer checked no keys: `/readyz` checks them
    once the database answers, and stays not ready while they do not open the data."""
    await api.intake()
    await _phones_corrected_after_the_rotation(api)

    async def readiness(keys: str) -> httpx.Response:
        application: Any = create_app(settings.model_copy(update={"pii_encryption_keys": keys}))
        try:
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url="http://mediation.test") as client:
                first = await client.get("/readyz", headers={"Accept-Language": "en"})
                again = await client.get("/readyz", headers={"Accept-Language": "en"})
                assert (again.status_code, again.text) == (first.status_code, first.text)
                assert (await client.get("/healthz")).status_code == 200
                return first
        finally:
            await application.state.db.dispose()

    refused = await readiness(NEW)
    assert refused.status_code == 503, refused.text
    assert "personal-data keys" in refused.json()["detail"], refused.text
    assert (await readiness(f"{NEW},{OLD}")).json() == {"status": "ready"}
