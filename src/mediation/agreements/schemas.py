from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from mediation.core.i18n import Text
from mediation.core.schemas import Instant, WriteModel, Yuan
from mediation.disputes.enums import AgreementForm, ContactMethod, PartyKind
from mediation.disputes.identity import at_field
from mediation.disputes.schemas import (
    NON_BLANK_TEXT,
    NON_NULL_ID,
    Day,
    Note,
    Reason,
    given,
    omitted,
    when,
)

LongText = Annotated[str, Field(max_length=5000)]


def _blank_is_no_place(value: str | None) -> str | None:
    return value or None


# Where a sitting is held. Blank ("", or spaces trimmed to nothing) is no place, as null is: a
# scheduling form or a move sends an online sitting's place emptied, and the sitting keeps none,
# not an empty one a later move would take for a place changed.
Place = Annotated[str | None, Field(max_length=200), AfterValidator(_blank_is_no_place)]


class SessionOutcome(StrEnum):
    continued = "continued"  # 继续调解
    adjourned = "adjourned"  # 改期
    agreement_reached = "agreement_reached"  # 达成协议 (then draft and sign the agreement)
    party_absent = "party_absent"  # 当事人未到场
    party_refused = "party_refused"  # 当事人拒绝调解 (人民调解法 Art. 17): mediation ends
    termination_demanded = "termination_demanded"  # 当事人要求终止调解 (Art. 23): mediation ends
    no_agreement = "no_agreement"  # 分歧较大, 未能达成协议: mediation ends


# Session outcomes that end mediation, and the termination reason recorded (特邀调解规定 Art. 26).
ENDING_OUTCOMES = {
    SessionOutcome.party_refused: "party_refused",
    SessionOutcome.termination_demanded: "party_refused",
    SessionOutcome.no_agreement: "positions_too_far_apart",
}


class Attendee(WriteModel):
    party_id: uuid.UUID | None = Field(default=None, description="A party of the case, or null for others.")
    name: Annotated[str, Field(min_length=1, max_length=100)]
    capacity: Annotated[
        str, Field(min_length=1, max_length=50, description="当事人/代理人/调解员/见证人 ...")
    ]


class SessionIn(WriteModel):
    # Online defaults to false: unless the session is online, it needs a place.
    model_config = ConfigDict(json_schema_extra=when("online", [True], {}, given("place", NON_BLANK_TEXT)))

    scheduled_at: Instant
    place: Place = None
    online: bool = False

    @model_validator(mode="after")
    def _where(self) -> Self:
        if not self.online and not self.place:
            raise at_field(
                "place", "place_missing", Text("线下调解须写明地点", "An in-person session needs a place")
            )
        return self


class SessionRecordIn(WriteModel):
    model_config = ConfigDict(
        json_schema_extra=when(
            "outcome", ["party_refused", "termination_demanded"], given("party_id", NON_NULL_ID)
        )
    )

    held_at: Instant
    attendees: Annotated[list[Attendee], Field(min_length=1, max_length=100)]
    minutes: Annotated[str, Field(min_length=1, max_length=20000, description="调解笔录")]
    outcome: SessionOutcome
    party_id: uuid.UUID | None = Field(
        default=None,
        description="The party who refused or demanded termination (required for those outcomes).",
    )

    @model_validator(mode="after")
    def _who(self) -> Self:
        if (
            self.outcome in (SessionOutcome.party_refused, SessionOutcome.termination_demanded)
            and not self.party_id
        ):
            raise at_field(
                "party_id",
                "party_missing",
                Text("须写明拒绝调解或要求终止的当事人", "Name the party who refused or asked to stop"),
            )
        return self


class SessionCancelIn(WriteModel):
    """Why the sitting is called off (当事人请假, 另行安排 ...): kept on the sitting and on the
    case's timeline. A sitting to be held another day is moved instead (`SessionRescheduleIn`)."""

    reason: Reason


class SessionRescheduleIn(WriteModel):
    """A sitting still to be held moved (改期) to a new time, and perhaps another place, with the
    reason (当事人生病, 调解室被占用 ...): the sitting keeps its id, and the earlier time stays in its
    `reschedules`. Where it then stands is held to the rules of a new sitting (`SessionIn`)."""

    scheduled_at: Instant = Field(description="The new time.")
    place: Place = Field(
        default=None,
        description="The new place. Omitted: the sitting's current place; null or blank: none (online only).",
    )
    online: bool | None = Field(default=None, description="Whether held online. Omitted or null: as now.")
    reason: Reason = Field(description="改期原因: kept on the sitting and on the case's timeline.")

    def moved(self, place: str | None, online: bool) -> SessionIn:
        """Where the sitting stands once moved from `place` and `online`, checked as a new sitting
        is: an in-person sitting needs a place (refused at `place`). Raises pydantic's
        ValidationError."""
        return SessionIn.model_validate(
            {
                "scheduled_at": self.scheduled_at,
                "place": self.place if "place" in self.model_fields_set else place,
                "online": online if self.online is None else self.online,
            }
        )


class SittingPlan(BaseModel):
    """When and where a sitting was (or is) to be held."""

    scheduled_at: datetime
    place: str | None
    online: bool


class RescheduleOut(BaseModel):
    """One move of a sitting (改期): from where it stood to where it was moved, why, when, by whom."""

    model_config = ConfigDict(populate_by_name=True)

    from_: SittingPlan = Field(alias="from", description="原定: the time and place before this move.")
    to: SittingPlan = Field(description="The time and place it was moved to.")
    reason: str = Field(description="改期原因.")
    at: datetime = Field(description="When it was moved.")
    by: str = Field(description="Who moved it (as a timeline entry's `actor_id`).")
    by_role: str = Field(description="In what role (as a timeline entry's `actor_role`).")


class SessionOut(BaseModel):
    id: uuid.UUID
    dispute_id: uuid.UUID
    scheduled_at: datetime
    place: str | None
    online: bool
    status: Literal["scheduled", "held", "cancelled"]
    held_at: datetime | None
    attendees: list[dict[str, Any]]
    minutes: str | None
    outcome: SessionOutcome | None
    party_id: uuid.UUID | None
    mediator_name: str | None
    cancelled_at: datetime | None = Field(description="When the sitting was called off.")
    cancel_reason: str | None = Field(
        description="The body's reason, when it called the sitting off; null when it was called off "
        "with the case, as mediation at the body ended (the case's timeline says why)."
    )
    rescheduled_count: int = Field(description="How many times the sitting was moved (改期).")
    reschedules: list[RescheduleOut] = Field(
        description="Each move, oldest first: `scheduled_at`, `place` and `online` above are the last one's `to`."
    )
    created_at: datetime
    version: int


class ObligationIn(WriteModel):
    obligor_party_id: uuid.UUID = Field(description="Who owes it.")
    obligee_party_id: uuid.UUID | None = Field(default=None, description="To whom.")
    kind: Literal["payment", "act"]
    amount: Annotated[
        Decimal | None, Field(gt=0, le=Decimal("99999999999999.99"), decimal_places=2), Yuan
    ] = None
    description: Annotated[str, Field(min_length=1, max_length=1000, description="What is paid or done.")]
    place: Annotated[str | None, Field(max_length=200)] = None
    manner: Annotated[str, Field(max_length=200, description="履行方式, e.g. 银行转账, 现金当面支付")] = ""
    due_on: Day = Field(description="履行期限: by this day.")


class AgreementIn(WriteModel):
    """A draft may be saved incomplete; `missing` in the answer lists what Art. 29 still needs."""

    form: AgreementForm = AgreementForm.written
    facts: LongText = ""
    disputed_matters: LongText = ""
    responsibility: LongText = ""
    terms: Annotated[list[Annotated[str, Field(min_length=1, max_length=2000)]], Field(max_length=50)] = []
    obligations: Annotated[list[ObligationIn], Field(max_length=100)] = []


class AgreementDraftIn(AgreementIn):
    """A new version of the agreement, and the version it was drafted over."""

    supersedes: Annotated[
        int | None,
        Field(
            ge=0,
            le=1_000_000,
            description="The `number` of the newest version the client saw when it drafted this one (0: it saw "
            "none). If another version has been drafted since, nothing is written and 412 `stale-version` is "
            "answered: what the client drafted over is no longer what it would replace. Omitted: not checked.",
        ),
    ] = None


SIGNING_METHODS: dict[str, list[str]] = {
    "party": ["in_person", "fingerprint", "electronic", "seal"],
    "mediator": ["in_person", "electronic", "recorded"],
    "body_seal": ["seal", "electronic"],
}
# 人民调解法 Art. 29 (and 民法典 Art. 490 for written contracts): the agreement takes effect once
# every party has signed (签名), sealed (盖章) or put a fingerprint on it (按指印). Any party may seal:
# a legal person or other organisation (法人、非法人组织) with its seal, a natural person with a
# personal seal (私章), which binds its holder as a signature does. A fingerprint is a natural
# person's own mark, which a unit cannot make: a unit signs by its seal or by its representative's
# hand. A unit's seal comes first: it is how a unit usually signs.
PARTY_SIGNING_METHODS: dict[str, list[str]] = {
    PartyKind.person: ["in_person", "fingerprint", "seal", "electronic"],
    PartyKind.organisation: ["seal", "in_person", "electronic"],
}
# 人民调解法 Art. 29: a written agreement (调解协议书) takes effect once the mediator has signed it
# (人民调解员签名), in person or electronically. Recording the agreed terms in place of a signature
# is how the mediator makes an oral agreement (Art. 28, effective when reached: Art. 30), and only that.
MEDIATOR_SIGNING_METHODS: dict[str, list[str]] = {
    AgreementForm.written: ["in_person", "electronic"],
    AgreementForm.oral: ["recorded", "in_person", "electronic"],
}


class SignatureIn(WriteModel):
    model_config = ConfigDict(
        json_schema_extra={
            "allOf": [
                *(
                    when("signer", [signer], {"properties": {"method": {"enum": methods}}})
                    for signer, methods in SIGNING_METHODS.items()
                ),
                when("signer", ["party"], given("party_id", NON_NULL_ID), omitted("party_id")),
                when(
                    "method",
                    ["electronic"],
                    given("document_hash", {"type": "string", "pattern": r"^[0-9a-f]{64}$"}),
                    omitted("document_hash"),
                ),
            ]
        }
    )

    signer: Literal["party", "mediator", "body_seal"]
    party_id: uuid.UUID | None = Field(default=None, description="For a party's signature.")
    method: Literal["in_person", "fingerprint", "electronic", "seal", "recorded"] = Field(
        description="A natural person party signs in person, by fingerprint, with a personal seal or electronically; "
        "a legal person or other organisation party by its seal, its representative's signature or electronically "
        "(never by fingerprint); the mediator "
        "signs (or records an oral agreement); the body affixes its seal."
    )
    signed_at: Instant | None = Field(default=None, description="When it was signed; now if omitted.")
    document_hash: Annotated[
        str | None,
        Field(
            pattern=r"^[0-9a-f]{64}$",
            description="Electronic signatures: the SHA-256 of what was signed; must equal content_hash.",
        ),
    ] = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.method not in SIGNING_METHODS[self.signer]:
            raise at_field(
                "method",
                "method_not_allowed",
                Text("该签署人不能以此方式签署", "This signer cannot sign that way"),
            )
        if (self.signer == "party") != (self.party_id is not None):
            raise at_field(
                "party_id",
                "party_id",
                Text("当事人签名须且仅须写明 party_id", "party_id goes with a party's signature only"),
            )
        if (self.method == "electronic") != (self.document_hash is not None):
            raise at_field(
                "document_hash",
                "document_hash",
                Text(
                    "电子签名须且仅须附所签文本的哈希", "document_hash goes with electronic signatures only"
                ),
            )
        return self


class ObligationOut(BaseModel):
    id: uuid.UUID
    position: int
    obligor_party_id: uuid.UUID
    obligee_party_id: uuid.UUID | None
    kind: str
    amount: Decimal | None
    description: str
    place: str | None
    manner: str
    due_on: date
    status: Literal["pending", "performed", "overdue"]
    overdue_since: date | None
    performed_on: date | None
    performance_note: str | None


class SignatureOut(BaseModel):
    signer: str
    party_id: uuid.UUID | None
    name: str
    method: str
    signed_at: datetime
    document_hash: str | None
    recorded_by: str
    recorded_at: datetime


class MissingOut(BaseModel):
    code: str
    message: str
    article: str | None


class AwaitingOut(BaseModel):
    signer: str
    party_id: uuid.UUID | None
    name: str


class AgreementOut(BaseModel):
    id: uuid.UUID
    dispute_id: uuid.UUID
    number: int
    form: AgreementForm
    status: Literal["draft", "effective", "superseded"]
    facts: str
    disputed_matters: str
    responsibility: str
    terms: list[str]
    obligations: list[ObligationOut]
    body_id: uuid.UUID
    body_name: str
    mediator_id: uuid.UUID | None
    mediator_name: str | None
    content_hash: str = Field(description="SHA-256 of the content; what an electronic signature signs.")
    effective_on: date | None
    effective_at: datetime | None
    supersedes_id: uuid.UUID | None
    signatures: list[SignatureOut]
    missing: list[MissingOut] = Field(
        description="Contents 人民调解法 Art. 29 still requires before signing."
    )
    awaiting_signatures: list[AwaitingOut]
    created_at: datetime
    updated_at: datetime
    version: int


class PerformanceIn(WriteModel):
    performed_on: Day
    note: Note = None


class FollowUpResultIn(WriteModel):
    contacted_on: Day
    method: ContactMethod
    outcome: Literal["performing", "performed", "refuses", "unreachable"]
    note: Note = None


class FollowUpOut(BaseModel):
    id: uuid.UUID
    dispute_id: uuid.UUID
    case_number: str
    body_id: uuid.UUID | None = Field(description="The body whose task it is; null: the center's.")
    kind: Literal["performance", "visit"] = Field(
        description="performance: an obligation past due (Art. 31); visit: the follow-up visit after closing (回访)."
    )
    obligation_id: uuid.UUID | None
    reason: str
    due_on: date
    provisional: bool = Field(
        description="A performance follow-up's date was counted in working days across a year whose holiday schedule was not "
        "published yet (weekends and the statutory holidays only); it is counted again once the schedule is loaded, and only moves later."
    )
    status: Literal["open", "done", "impossible"]
    raised_at: datetime
    done_at: datetime | None
    result: dict[str, Any] | None
    attempts: list[dict[str, Any]] | None = Field(description="Visits: each try to reach the parties.")


class VisitIn(WriteModel):
    """One try at the follow-up visit. Reached: the result with the satisfaction rating closes the
    task. Not reached: the try is recorded; after the configured number of tries the visit is
    recorded as impossible (parties unreachable), which also allows archiving."""

    model_config = ConfigDict(
        json_schema_extra=when("reached", [True], given("satisfaction", {"type": "integer"}))
    )

    visited_on: Day
    contact_method: ContactMethod
    reached: bool
    satisfaction: Annotated[int | None, Field(ge=1, le=5, description="1 (very dissatisfied) to 5.")] = None
    agreement_performed: bool | None = Field(default=None, description="Is the agreement being performed?")
    notes: Note = None

    @model_validator(mode="after")
    def _rating_when_reached(self) -> Self:
        if self.reached and self.satisfaction is None:
            raise at_field(
                "satisfaction",
                "satisfaction_required",
                Text(
                    "回访到当事人时须记录满意度 (1-5)",
                    "A visit that reached the parties records satisfaction (1-5)",
                ),
            )
        return self


class VisitImpossibleIn(WriteModel):
    reason: Annotated[str, Field(min_length=2, max_length=2000, description="Why no visit is possible.")]


class FollowUpPage(BaseModel):
    items: list[FollowUpOut]
    next_cursor: str | None
