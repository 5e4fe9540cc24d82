"""Defects found reviewing this round's changes: what the older release left behind, generated
records withdrawn from a case, a tier moved by a correction without a word, and page addresses
opened after a refused form."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from sqlalchemy import bindparam, text

from mediation.disputes.models import Dispute
from mediation.migrate import downgrade, upgrade
from tests.support import Api
from tests.test_misc_review import _withdraw

# ---- cases whose confirmation request was withdrawn under the older release -------------------------


async def _name_the_court_again(api: Api, dispute: dict[str, Any], court_id: str) -> None:
    """As the older release left a withdrawn request: the case still addressed to the court."""
    async with api.app.state.db.engine.begin() as conn:
        await conn.execute(
            text("UPDATE disputes SET handoff_target_id = :court WHERE id = :id").bindparams(
                bindparam("court", type_=Dispute.__table__.c.handoff_target_id.type),
                bindparam("id", type_=Dispute.__table__.c.id.type),
            ),
            {"court": uuid.UUID(court_id), "id": uuid.UUID(dispute["id"])},
        )


async def test_a_court_stops_reading_cases_withdrawn_before_this_release(api: Api, settings: Any) -> None:
    withdrawn = await api.drive("confirmation_pending")
    handoff = (await api.handoff(withdrawn))["handoff"]
    court = api.auth("court", uuid.UUID(handoff["target_id"]))
    await _withdraw(api, handoff, api.acting("body_mediator", withdrawn))
    await _name_the_court_again(api, withdrawn, handoff["target_id"])
    pending = await api.drive("confirmation_pending")  # still before the court: stays addressed to it
    assert (await api.client.get(f"/v1/disputes/{withdrawn['id']}", headers=court)).status_code == 200

    await api.app.state.db.engine.dispose()
    await asyncio.to_thread(downgrade, settings.database_url, "0033")
    await asyncio.to_thread(upgrade, settings.database_url)

    assert (await api.client.get(f"/v1/disputes/{withdrawn['id']}", headers=court)).status_code == 404
    assert (await api.get(withdrawn))["handoff_target_id"] is None
    assert (await api.client.get(f"/v1/disputes/{pending['id']}", headers=court)).status_code == 200
    assert (await api.get(pending))["handoff_target_id"] == handoff["target_id"]
