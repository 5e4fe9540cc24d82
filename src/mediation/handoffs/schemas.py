from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mediation.agreements.schemas import AgreementOut, SessionOut
from mediation.core.i18n import Text
from mediation.core.schemas import WriteModel
from mediation.disputes.enums import (
    NotAcceptedReason,
    PartyRole,
    ReferralNotAcceptedReason,
    ReferralOutcome,
    RejectionGround,
)
from mediation.disputes.identity import at_field
from mediation.disputes.schemas import (
    NON_BLANK_TEXT,
    NOT_ACCEPTED_REASONS_DESCRIPTION,
    OUTCOMES_DESCRIPTION,
    Day,
    DisputeOut,
    Note,
    NoticeNumber,
    Reason,
    ShortText,
    TimelineEntryOut,
    given,
    omitted,
    when,
)
from mediation.documents.schemas import ManifestEntryOut

HandoffKind = Literal[
    "judicial_confirmation",
    "labour_arbitration",
    "commercial_arbitration",
    "rural_land_arbitration",
    "litigation",
]
HandoffStatus = Literal[
    "pending", "accepted", "not_accepted", "confirmed", "rejected", "withdrawn", "concluded", "lapsed"
]


class HandoffWarning(BaseModel):
    code: str = Field(
        description="`withdrawal_requested`: after the target accepted, the parties asked, through the "
        "mediation body or center, to withdraw the application or the referral (`requested_on`, "
        "`party_id`); only the court or commission closes it, by its ruling or decision (a confirmation: "
        "`/decision` `withdrawn`, 民诉法解释 Art. 357; a referral: `/outcome` `withdrawal`), and the "
        "request is kept on the handoff until then. "
        "`labour_limitation_near`: the one-year labour arbitration limitation runs out within "
        "30 days; `labour_limitation_expired`: it had run out (劳动争议调解仲裁法 Art. 27). "
        "`land_limitation_near` and `land_limitation_expired`: the same for the two-year limitation of "
        "rural land-contract arbitration (农村土地承包经营纠纷调解仲裁法 Art. 18). "
        "`confirmation_window_uncertain`: a confirmation applied for after `runs_until`, the last day "
        "of the 30 days counted on weekends and the statutory holidays only, in a year whose public holidays were not published "
        "yet; a holiday may carry the period past the request (民事诉讼法 Art. 85, 205): the court judges."
    )
    message: str = Field(description="In the request's language.")
    article: str | None = Field(default=None, description="The legal article the warning rests on.")
    runs_until: date | None = Field(default=None, description="The last day of the period warned of.")
    requested_on: date | None = Field(default=None, description="`withdrawal_requested`: when it was asked.")
    party_id: uuid.UUID | None = Field(
        default=None, description="`withdrawal_requested`: the party who withdraws, if one was named."
    )


# The items of a judicial confirmation's checklist a court's request may name (materials.checklist,
# 民诉法解释 Art. 354, 356).
MaterialCode = Literal[
    "agreement", "identity", "contact_address", "mediation_proof", "property_proof", "power_of_attorney"
]


class MaterialsRequestOut(BaseModel):
    """A court's request for more materials and its answer."""

    id: uuid.UUID
    number: int = Field(description="1 for the handoff's first request, and so on.")
    article: str = Field(
        description="民诉法解释 Art. 354 (before acceptance, 限期补交) or Art. 356 (after it, 限期补充)."
    )
    items: list[str] = Field(description="What the court asks for, in its words.")
    codes: list[MaterialCode] = Field(description="The checklist items the request names, if any.")
    due_on: date = Field(description="The last day the court set.")
    note: str | None
    requested_on: date
    status: Literal["open", "supplied", "closed"] = Field(
        description="`open`: waiting for the materials; `supplied`: answered (`supplied_on`, "
        "`document_ids`); `closed`: the handoff was settled while it was open."
    )
    overdue: bool = Field(
        description="Open and past `due_on`: the materials are still taken, and the court judges whether "
        "the delay had good reason (民诉法解释 Art. 357)."
    )
    supplied_on: date | None
    supplied_late: bool | None = Field(description="Supplied after `due_on`.")
    document_ids: list[uuid.UUID] = Field(description="The documents supplied, frozen into the dossier.")
    supplied_note: str | None


class HandoffOut(BaseModel):
    id: uuid.UUID
    dispute_id: uuid.UUID
    case_number: str
    kind: HandoffKind
    kind_label: str
    target_id: uuid.UUID
    target_name: str
    status: HandoffStatus
    basis: str | None = Field(
        description="Judicial confirmation: why this court is competent (民事诉讼法 Art. 205)."
    )
    applicant_party_ids: list[uuid.UUID]
    claims: str | None
    arbitration_agreement: str | None
    warnings: list[HandoffWarning] = Field(
        description="E.g. the labour arbitration limitation running out, or a confirmation's period uncertain."
    )
    requested_on: date
    accept_due_on: date = Field(description="The target decides on acceptance by this day.")
    accepted_on: date | None
    target_case_number: str | None = Field(description="The court's or commission's own case number.")
    decide_due_on: date | None = Field(description="The decision is due by this day (after any extension).")
    provisional: bool = Field(
        description="The open step's last day (`accept_due_on` while pending, `decide_due_on` once accepted, "
        "`enforcement_deadline` once confirmed) was counted, in days or in working days, across a year whose "
        "holiday schedule is not published yet (weekends and the statutory holidays only), so a holiday may still move it (民事诉讼法 "
        "Art. 85); it is counted again once the schedule is loaded or known, and only moves later. False "
        "once settled otherwise."
    )
    extended_days: int
    extension_reason: str | None
    decided_on: date | None
    decision: dict[str, Any] | None
    enforcement_deadline: date | None = Field(
        description="Confirmed: last day to apply for enforcement (民事诉讼法 Art. 250, two years)."
    )
    overdue: Literal["accept", "decide"] | None = Field(
        description="The step whose deadline has passed, if any."
    )
    materials_requests: list[MaterialsRequestOut] = Field(
        description="The court's requests for more materials (民诉法解释 Art. 354, 356), oldest first; at "
        "most one `open`."
    )
    version: int
    created_at: datetime
    updated_at: datetime


class HandoffPage(BaseModel):
    items: list[HandoffOut]
    next_cursor: str | None


class CompetentCourt(BaseModel):
    basis: Literal["inviting_court", "party_domicile", "subject_matter_location", "body_location"]
    court_id: uuid.UUID
    name: str


class MaterialCheck(BaseModel):
    code: str = Field(
        description="The item's code; a judicial confirmation's (`agreement`, `identity`, `contact_address`, "
        "`mediation_proof`, `power_of_attorney`) are those a request for more materials may name."
    )
    item: str
    article: str
    present: bool


WITHHELD = " Null when the case's contents are `withheld`."


class PartyParticulars(BaseModel):
    """One party of the case as the court's materials state it (民诉法解释 Art. 353-354; 法释〔2011〕5号
    Art. 3): where papers are served on it, who acts for an organisation, whom an agent acts for.
    Its identity and contacts are the case's (`case.parties`, by `party_id`)."""

    party_id: uuid.UUID
    role: PartyRole
    name: str
    service_address: str | None = Field(
        description="Where the court serves its papers on the party: its 送达地址, or, none given, its "
        "address (住所), as `service_address_source` says. Null when neither is on record. ID and phone "
        "numbers in it are masked as in the case."
    )
    service_address_source: Literal["service_address", "address"] | None = Field(
        description="`service_address`: the party gave a service address; `address`: it gave none, "
        "and its address stands for it; null: neither is on record."
    )
    legal_representative: str | None = Field(
        description="An organisation's 法定代表人 or 主要负责人 (民事诉讼法 Art. 51), as registered."
    )
    acts_for_party_id: uuid.UUID | None = Field(
        description="An agent's: the party it acts for, whose power of attorney it holds (法释〔2011〕5号 "
        "Art. 3). Null for an agent that did not say, and for every other role."
    )
    acts_for_name: str | None = Field(description="The name of that party.")


class DossierOut(BaseModel):
    """What the court or commission receives (民诉法解释 Art. 353-354; 法释〔2011〕5号 Art. 3).

    A court or commission reads the case only while it is addressed to it. Once the case has
    left it (mediated again after a rejected confirmation, its confirmation request withdrawn,
    or handed to another court or commission), `withheld` says so and every member about the
    case (`case`, `agreement`, `sessions`, `timeline`, `manifest`, `late_documents`,
    `materials`, `filing_pack`) is null, while `handoff`, its own handoff's record (status,
    answers, dates; the response's ETag is its version), stays readable for good."""

    handoff: HandoffOut
    withheld: Literal["case_left_target"] | None = Field(
        description="Why the case's contents are not shown: `case_left_target`, the case is no longer "
        "with the caller. Null when the dossier is shown whole."
    )
    case: DisputeOut | None = Field(
        description="The case with its parties' full identity and contacts." + WITHHELD
    )
    particulars: list[PartyParticulars] | None = Field(
        description="Each party, in the case's order, as the application's materials state it: its "
        "service address (the address standing for one not given, said so), an organisation's legal "
        "representative, whom an agent acts for." + WITHHELD
    )
    agreement: AgreementOut | None = Field(description="The agreement to confirm, if any." + WITHHELD)
    sessions: list[SessionOut] | None = Field(
        description="The mediation record: sessions and their minutes (a referral's: without minutes, "
        "see `mediation_record_withheld`)." + WITHHELD
    )
    timeline: list[TimelineEntryOut] | None = Field(description="The case's timeline." + WITHHELD)
    mediation_record_withheld: bool | None = Field(
        description="True for a referral to arbitration or litigation: what the parties conceded in a "
        "mediation that failed may not be used against them (最高人民法院关于人民法院特邀调解的规定 Art. 22), "
        "so the sittings' minutes (and the free text of their calling off or moving), the timeline "
        "entries' reasons and notes (each such entry `reason_withheld`) and the free text of the case's "
        "`outcome` are left out; the filing pack keeps the parties, claims, the mediation's dates and "
        "the termination's reason code. The exception of Art. 22, every party's consent, is not recorded "
        "by this service, so they are always left out. False for a judicial confirmation: the court "
        "reviews the agreement and how it was reached, and reads the whole record." + WITHHELD
    )
    manifest: list[ManifestEntryOut] | None = Field(description="The documents frozen at handoff." + WITHHELD)
    late_documents: list[uuid.UUID] | None = Field(
        description="Added after the handoff; not part of the dossier." + WITHHELD
    )
    materials: list[MaterialCheck] | None = Field(
        description="The checklist of the materials the law asks for." + WITHHELD
    )
    filing_pack: dict[str, Any] | None = Field(
        description="Referrals: the filing pack pre-filled from intake. A suit's also lists the case's "
        "earlier referrals to arbitration (`prior_arbitration`: commission, status, case number, "
        "decision, e.g. a labour commission's non-acceptance with its `notice_number`, "
        "劳动争议调解仲裁法 Art. 29). Null for a confirmation request, and when `withheld`."
    )


class AcceptanceIn(WriteModel):
    model_config = ConfigDict(
        json_schema_extra={
            "allOf": [
                when("decision", ["accepted"], given("case_number", NON_BLANK_TEXT)),
                when("decision", ["not_accepted"], given("reason_code", {"type": "string"})),
                when("decision", ["accepted"], omitted("notice_number")),
            ]
        }
    )

    decision: Literal["accepted", "not_accepted"]
    case_number: Annotated[str | None, Field(min_length=1, max_length=100)] = Field(
        default=None, description="Your own case number (required when accepted)."
    )
    accepted_on: Day | None = Field(default=None, description="Today if omitted.")
    reason_code: NotAcceptedReason | ReferralNotAcceptedReason | None = Field(
        default=None, description="Required when not accepted. " + NOT_ACCEPTED_REASONS_DESCRIPTION
    )
    notice_number: NoticeNumber = None
    note: Note = None

    @model_validator(mode="after")
    def _complete(self) -> Self:
        if self.decision == "accepted" and self.notice_number is not None:
            raise at_field(
                "notice_number",
                "notice_number_without_refusal",
                Text("不予受理通知书编号只随不予受理登记", "A notice number goes with not accepting only"),
            )
        if self.decision == "accepted" and not self.case_number:
            raise at_field(
                "case_number",
                "case_number_missing",
                Text("受理须登记本院(委)案号", "Acceptance needs your case number"),
            )
        if self.decision == "not_accepted" and self.reason_code is None:
            raise at_field(
                "reason_code",
                "reason_code_missing",
                Text("不予受理须写明理由代码", "Not accepting needs a reason_code"),
            )
        return self


class HandoffExtensionIn(WriteModel):
    days: Annotated[int, Field(ge=1, le=30)] = Field(description="At most what the law allows for this kind.")
    reason: Reason


class DecisionIn(WriteModel):
    model_config = ConfigDict(
        json_schema_extra=when(
            "decision", ["rejected"], given("ground", {"type": "string"}), omitted("ground")
        )
    )

    decision: Literal["confirmed", "rejected", "withdrawn"] = Field(
        description="`withdrawn`: the court allows the parties' withdrawal of the application by its ruling "
        "(裁定准许撤回, 民诉法解释 Art. 357), or treats it as withdrawn; the case returns to `agreement_signed`."
    )
    ruling_number: ShortText
    ruled_on: Day
    ground: RejectionGround | None = Field(
        default=None, description="Rejected: the ground (民诉法解释 Art. 358)."
    )
    note: Note = None

    @model_validator(mode="after")
    def _ground(self) -> Self:
        if (self.decision == "rejected") != (self.ground is not None):
            raise at_field(
                "ground",
                "ground",
                Text("驳回须且仅须写明驳回理由 (ground)", "A ground goes with a rejection only"),
            )
        return self


class OutcomeIn(WriteModel):
    outcome: ReferralOutcome = Field(description=OUTCOMES_DESCRIPTION)
    reference_number: ShortText = Field(description="The award, judgment or settlement number.")
    decided_on: Day
    note: Note = None


class WithdrawalIn(WriteModel):
    reason: Reason
    party_id: uuid.UUID | None = None
    materials_missing: bool = False
    ruling_number: ShortText | None = Field(
        default=None,
        description="The court, once it has accepted: the number of its ruling allowing the withdrawal "
        "or treating the application as withdrawn (民诉法解释 Art. 357).",
    )
    ruled_on: Day | None = Field(default=None, description="The ruling's date, with `ruling_number`.")


class MaterialsRequestIn(WriteModel):
    items: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=500)]], Field(min_length=1, max_length=30)
    ] = Field(description="What the parties are to supply, one item a line.")
    codes: Annotated[list[MaterialCode], Field(max_length=6, json_schema_extra={"uniqueItems": True})] = (
        Field(default=[], description="The checklist items asked for, if the request names any.")
    )
    due_on: Day = Field(
        description="The last day to supply them: after today, at most "
        "90 days ahead (a later day is taken for a typing error)."
    )
    note: Note = None

    @model_validator(mode="after")
    def _codes_once(self) -> Self:
        if len(set(self.codes)) != len(self.codes):
            raise at_field("codes", "duplicate", Text("材料代码重复", "A code is named twice"))
        return self


class MaterialsSuppliedIn(WriteModel):
    document_ids: Annotated[list[uuid.UUID], Field(min_length=1, max_length=50)] = Field(
        description="The case's documents that answer the request, uploaded first "
        "(`POST /v1/disputes/{id}/documents`)."
    )
    note: Note = None

    @model_validator(mode="after")
    def _documents_once(self) -> Self:
        if len(set(self.document_ids)) != len(self.document_ids):
            raise at_field("document_ids", "duplicate", Text("材料重复", "A document is named twice"))
        return self
