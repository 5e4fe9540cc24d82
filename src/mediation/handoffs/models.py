from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, false, text
from sqlalchemy.orm import Mapped, mapped_column

from mediation.clocks.counted import PROVISIONAL, PROVISIONAL_SQLITE
from mediation.core.db import Base, JSONType, new_id

BIGINT = BigInteger().with_variant(Integer(), "sqlite")


class Handoff(Base):
    """A case handed to a court or commission: a judicial confirmation request (司法确认申请) or a
    referral to arbitration or litigation. The target pulls it, acknowledges receipt with its own
    case number, and posts the decision; each step has its legal deadline."""

    __tablename__ = "handoffs"
    __table_args__ = (
        # Steps counted in working days before their year's holidays were known (ledger.StepCount).
        Index(
            "ix_handoffs_provisional",
            "status",
            postgresql_where=text(PROVISIONAL),
            sqlite_where=text(PROVISIONAL_SQLITE),
        ),
        # A court's or commission's list, in the order the handoffs were made (and, by its first
        # column, every lookup by target: no index of target_id alone).
        Index("ix_handoffs_target_id_seq", "target_id", "seq"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    # The order handoffs were made in, which GET /v1/handoffs pages by: a number given just before
    # the making transaction commits, under the journal lock (ledger.number_handoffs), so numbers
    # become visible in the order they were given and a handoff committed after a page was read
    # comes after it. Neither the day requested (shared by a day's handoffs) nor the random id
    # could say which came later. Empty only inside the transaction that makes the handoff.
    seq: Mapped[int | None] = mapped_column(BIGINT, unique=True)
    dispute_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("disputes.id"), index=True)
    # judicial_confirmation | labour_arbitration | commercial_arbitration | rural_land_arbitration | litigation
    kind: Mapped[str] = mapped_column(String(30))
    target_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bodies.id"))
    # pending | accepted | not_accepted | confirmed | rejected | withdrawn | concluded | lapsed
    status: Mapped[str] = mapped_column(String(14), index=True)
    agreement_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("agreements.id"))
    basis: Mapped[str | None] = mapped_column(String(30))  # which rule makes the court competent
    applicant_party_ids: Mapped[list[str]] = mapped_column(JSONType)
    claims: Mapped[str | None] = mapped_column(Text)
    arbitration_agreement: Mapped[str | None] = mapped_column(Text)
    warnings: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    requested_on: Mapped[date]
    accept_due_on: Mapped[date]
    accepted_on: Mapped[date | None]
    target_case_number: Mapped[str | None] = mapped_column(String(100))
    decide_due_on: Mapped[date | None]
    extended_days: Mapped[int]
    extension_reason: Mapped[str | None] = mapped_column(Text)
    decided_on: Mapped[date | None]
    decision: Mapped[dict[str, Any] | None]
    enforcement_deadline: Mapped[date | None]
    # How the open step's last day (accept_due_on while pending, decide_due_on once accepted) was
    # counted when its rule counts working days (e.g. 农村土地承包经营纠纷调解仲裁法 Art. 23: 五个工作日),
    # as clocks.counted keeps a supervision order's: from which day, how many working days, and
    # whether it reached a year whose holiday schedule was not known (weekends and the statutory
    # holidays only), so that it is counted again once the schedule is loaded. Null
    # `counted_from`: a step counted in days.
    counted_from: Mapped[date | None]
    working_days: Mapped[int | None]
    provisional: Mapped[bool] = mapped_column(default=False, server_default=false())
    # The step whose deadline passed, once the clock flagged it (accept | decide): flagged once.
    overdue_flagged: Mapped[str | None] = mapped_column(String(10))
    # The court's requests for more materials, in the order made, each with its answer
    # (ledger.request_materials): before acceptance 限期补交 (民诉法解释 Art. 354), after it 限期补充
    # (Art. 356). At most one is open at a time.
    materials_requests: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONType, default=list, server_default=text("'[]'")
    )
    # The open request's last day (null when none is open), for the clock and the lists; and whether
    # the clock flagged it as passed, once.
    materials_due_on: Mapped[date | None]
    materials_overdue_flagged: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    version: Mapped[int] = mapped_column()

    __mapper_args__ = {"version_id_col": version, "version_id_generator": False}
