"""What the documents' endpoints answer that other parts of the contract (a handoff's dossier) share."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, Field


class ManifestEntryOut(BaseModel):
    """One document of a frozen dossier, as it was when frozen (its hash is what was handed over)."""

    document_id: uuid.UUID
    sha256: str
    kind: str
    size: int
    media_type: str
    name: str | None = Field(
        default=None,
        description="The file's name (to a role without `pii:read` with ID and phone numbers masked, as "
        "`original_name` in the documents list).",
    )
    paper_of: Literal["this_handoff", "earlier_handoff"] | None = Field(
        default=None,
        description="On the papers the service prints for a handoff: `this_handoff` is the application "
        "or referral letter addressed to this court or commission; `earlier_handoff` one of an earlier "
        "handoff of the case (a confirmation applied for before, a referral refused), kept as its "
        "history. Absent on other documents, and on dossiers frozen before the mark existed.",
    )
    supplied_for: uuid.UUID | None = Field(
        default=None,
        description="On a document supplied at the court's request for more materials (民诉法解释 Art. 354, "
        "356): the request it answers (the handoff's `materials_requests[].id`), frozen into the dossier "
        "when supplied. Absent on the documents handed over with the case.",
    )
