"""`mediation pii normalise-phones`: parties' phone numbers stored before they had one form.

Intake keeps a phone number in one form (disputes.identity.normalise_phone: digits only, no
country code), and finds the same line again by the keyed index of that form. Numbers stored
earlier kept a landline's hyphen ("0575-87654321", indexed as written), so a later intake of
"057587654321" did not find them among related cases, the party search or early warning. The
index is keyed and the number encrypted, so no migration can recompute them; this command does,
with the keys: it opens each stored number, and where its form is not the one intake writes now
it writes the number again in that form, with its mask and index, a batch at a time while the
service runs. A number the service changed meanwhile is left as it is now (compare and set); one
that the rules refuse now is left as it is and listed by row. Running it again changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update

from mediation.audit.chain import AuditEntry, append
from mediation.core.db import Database, utcnow
from mediation.core.pii import PiiCipher, PiiIntegrityError, mask_phone
from mediation.core.principal import Principal
from mediation.core.schemas import DomainValueError
from mediation.disputes.identity import normalise_phone
from mediation.disputes.models import Party

BATCH = 500


@dataclass(slots=True)
class PhoneReport:
    read: int = 0
    rewritten: int = 0
    changed_meanwhile: int = 0
    unreadable: list[str] = field(default_factory=list)  # row ids, never values
    refused: list[str] = field(default_factory=list)  # row ids whose number the rules refuse now

    def as_dict(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "rewritten": self.rewritten,
            "changed_meanwhile": self.changed_meanwhile,
            "unreadable": len(self.unreadable),
            "unreadable_rows": self.unreadable[:20],
            "refused": len(self.refused),
            "refused_rows": self.refused[:20],
        }


async def normalise_stored_phones(
    db: Database,
    cipher: PiiCipher,
    operator: Principal,
    *,
    batch: int = BATCH,
    progress: Callable[[PhoneReport], None] | None = None,
) -> PhoneReport:
    """Every party's phone number in the form intake writes now, with its mask and index; recorded
    in the audit trail."""
    report = PhoneReport()
    after: Any = None
    while True:
        query = (
            select(Party.id, Party.phone_enc, Party.phone_masked, Party.phone_index)
            .where(Party.phone_enc.is_not(None))
            .order_by(Party.id)
            .limit(batch)
        )
        if after is not None:
            query = query.where(Party.id > after)
        async with db.writer() as session, session.begin():
            rows = (await session.execute(query)).all()
            for row_id, token, masked, index in rows:
                report.read += 1
                row = str(row_id)
                assert token is not None  # selected so
                try:
                    plain = cipher.decrypt(token, table="parties", column="phone", row_id=row)
                except PiiIntegrityError:
                    report.unreadable.append(row)
                    continue
                try:
                    canonical = normalise_phone(plain)
                except DomainValueError:
                    report.refused.append(row)
                    continue
                fresh_index = cipher.index(canonical, kind="phone")
                if (canonical, mask_phone(canonical), fresh_index) == (plain, masked, index):
                    continue
                written = await session.execute(
                    update(Party)
                    .where(Party.id == row_id, Party.phone_enc == token)
                    .values(
                        phone_enc=cipher.encrypt(canonical, table="parties", column="phone", row_id=row),
                        phone_masked=mask_phone(canonical),
                        phone_index=fresh_index,
                    )
                    .execution_options(synchronize_session=False)
                )
                if written.rowcount == 1:  # type: ignore[attr-defined]
                    report.rewritten += 1
                else:
                    report.changed_meanwhile += 1
        if progress is not None:
            progress(report)
        if len(rows) < batch:
            break
        after = rows[-1][0]
    entry = AuditEntry.by(
        operator,
        "pii.normalise_phones",
        details={
            "read": report.read,
            "rewritten": report.rewritten,
            "unreadable": len(report.unreadable),
            "refused": len(report.refused),
        },
    )
    async with db.writer() as session, session.begin():
        await append(session, [entry], utcnow())
    return report
