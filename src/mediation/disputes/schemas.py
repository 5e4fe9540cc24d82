"""Request and response shapes. Write schemas forbid unknown fields, so a client can never bind
`status`, `version`, `tier` or any other internal field."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal, Protocol, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from mediation.core.i18n import Text
from mediation.core.schemas import DomainValueError, Instant, WriteModel, Yuan
from mediation.disputes.court_delegation import is_court_delegated
from mediation.disputes.enums import (
    PARTY_ROLE_NAMES,
    Category,
    Channel,
    Complexity,
    ConfirmationCourtBasis,
    Consent,
    ContactMethod,
    CourtStage,
    DeclineAdvice,
    IdType,
    NotAcceptedReason,
    PartyKind,
    PartyRole,
    ReferralNotAcceptedReason,
    ReferralOutcome,
    RejectionGround,
    Severity,
    SubjectMatter,
    TerminationReason,
)
from mediation.disputes.identity import (
    REGION_CODE_PATTERN,
    at_field,
    no_place_name,
    normalise_id_number,
    normalise_phone,
    normalise_region_code,
)
from mediation.disputes.references import MAX_LENGTH as MAX_REFERENCE_LENGTH
from mediation.disputes.references import canonical_reference
from mediation.handoffs.answers import DECIDERS, KIND_LABELS

# The days a request may name: in the years the service keeps records for (Instant, core.schemas).
# The statistics' date range keeps to the same years (stats.service).
EARLIEST_DAY, LATEST_DAY = date(1990, 1, 1), date(2099, 12, 31)


def _iso_8601(value: object) -> object:
    # The contract says date-time (RFC 3339); without this a number would be read as Unix seconds.
    if isinstance(value, str) and not (value[:4].isdigit() and value[4:5] == "-"):
        raise DomainValueError(
            "datetime_format", Text("时间须为 ISO 8601 格式", "Give an ISO 8601 date-time")
        )
    return value


# A moment given in a query string, where it arrives as text.
IsoDateTime = Annotated[Instant, BeforeValidator(_iso_8601)]


def _within_service_days(value: date) -> date:
    if not EARLIEST_DAY <= value <= LATEST_DAY:
        raise DomainValueError(
            "date_out_of_range", Text("日期须在 1990 年至 2099 年之间", "The date must lie in 1990-2099")
        )
    return value


# A day a request may name; deadlines are counted from these, and past 9999 counting overflows.
Day = Annotated[date, AfterValidator(_within_service_days)]
ShortText = Annotated[str, Field(min_length=1, max_length=200)]
Reason = Annotated[str, Field(min_length=1, max_length=2000, description="Why; shown on the timeline.")]
Note = Annotated[str | None, Field(default=None, max_length=2000)]
NoticeNumber = Annotated[
    str | None,
    Field(
        default=None,
        min_length=1,
        max_length=100,
        description="The number of the notice or ruling not accepting (不予受理通知书 / 不予受理裁定书): "
        "e.g. the labour commission's, with which the applicant sues (劳动争议调解仲裁法 Art. 29).",
    ),
]
NOT_ACCEPTED_REASONS_DESCRIPTION = (
    "Each kind of handoff takes its own (422 `reason_not_of_this_body` otherwise): "
    + "; ".join(
        f"{KIND_LABELS[kind].en}: {', '.join(decider.not_accepted)} ({decider.not_accepted_article})"
        for kind, decider in DECIDERS.items()
    )
)
OUTCOMES_DESCRIPTION = (
    "Each kind of referral takes the outcomes its body gives (422 `outcome_not_of_this_body` otherwise): "
    + "; ".join(
        f"{KIND_LABELS[kind].en}: {', '.join(decider.outcomes)} ({decider.outcomes_article})"
        for kind, decider in DECIDERS.items()
        if decider.outcomes
    )
)
RegionCode = Annotated[
    str,
    Field(
        pattern=REGION_CODE_PATTERN,
        examples=["330681", "330681105000"],
        description="GB/T 2260 code, 6 or 12 digits, starting with a province code. A place's name "
        "given instead (枫桥镇) is refused, 422 `region_name_given`, with the code of the place of that "
        "name the registry knows (the places named after the committees and centers there), or the "
        "places the name may mean.",
    ),
    AfterValidator(normalise_region_code),
    # Before the pattern: a name typed for the code is told as such (and which code it is, where
    # the registry knows the place: bodies.places).
    BeforeValidator(no_place_name),
]


# Cross-field rules, stated in the contract as JSON Schema conditions (OpenAPI 3.1) beside the
# validators that enforce them, so a client learns them from the contract and not from a 422.
# Write models trim Unicode White_Space from text; text that must say something needs one
# character that is not among those.
NON_BLANK_TEXT: dict[str, Any] = {
    "type": "string",
    "pattern": r"[^\t\n\v\f\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]",
}
NON_NULL_ID: dict[str, Any] = {"type": "string", "format": "uuid"}


def given(name: str, value: dict[str, Any]) -> dict[str, Any]:
    """JSON Schema: `name` is present and its value matches `value`."""
    return {"required": [name], "properties": {name: value}}


def omitted(name: str) -> dict[str, Any]:
    """JSON Schema: `name` is absent or null."""
    return {"properties": {name: {"type": "null"}}}


def when(
    field: str, values: list[Any], then: dict[str, Any], otherwise: dict[str, Any] | None = None
) -> dict[str, Any]:
    """JSON Schema: `then` applies when `field` is given and holds one of `values`, else `otherwise`."""
    condition: dict[str, Any] = {"if": given(field, {"enum": values}), "then": then}
    if otherwise is not None:
        condition["else"] = otherwise
    return condition


def without_null(
    names: frozenset[str], extra: dict[str, Any] | None = None
) -> Callable[[dict[str, Any]], None]:
    """The contract of a body whose `names` are optional but never null: each property is offered
    as its own type alone (no null branch, no null default), as a validator refusing null enforces."""

    def adjust(schema: dict[str, Any]) -> None:
        for name in names:
            prop = schema["properties"][name]
            kept = [branch for branch in prop.pop("anyOf", []) if branch != {"type": "null"}]
            if len(kept) == 1:
                prop.update({**kept[0], **prop})
            elif kept:
                prop["anyOf"] = kept
            prop.pop("default", None)
        schema.update(extra or {})

    return adjust


# ---- intake -------------------------------------------------------------------------------------

# The channels by which a case comes from a body the resident applied to first: the day they
# applied there is the application date (民法典 Art. 195).
REFERRAL_CHANNELS = (Channel.hotline, Channel.petition, Channel.court_delegated, Channel.police)
# The other channels, as a refused application date names them: the resident applies to the center
# itself, on the day it registers the case (a grid worker's report is no application at all).
APPLIED_AT_REGISTRATION: dict[Channel, Text] = {
    Channel.window: Text("窗口受理", "registered at the window"),
    Channel.online: Text("网上申请", "applied for online"),
    Channel.grid: Text("网格员上报", "reported by a grid worker"),
}


# The highest place in a case's list of parties (`PartyIn.represents`): intake takes 200 parties,
# and corrections add at most as many at a time.
MAX_PARTY_POSITION = 9_999
NOT_AN_ORGANISATION = (
    "legal_representative_not_organisation",
    Text(
        "只有单位当事人填写法定代表人或主要负责人",
        "Only an organisation has a legal representative or principal",
    ),
)
NOT_AN_AGENT = (
    "represents_not_agent",
    Text("只有委托代理人填写所代理的当事人", "Only an agent names the party it acts for"),
)


def represents_refusal(roles: list[str], agent: int, target: int) -> tuple[str, Text] | None:
    """Why the agent at place `agent` of a case's parties (`roles`, in order) cannot act for the party
    at `target`, if it cannot: the same rule at intake and in a correction (`PartyIn.represents`)."""
    if target >= len(roles):
        return (
            "represents_unknown_party",
            Text(
                "所代理的当事人不在本案当事人之列: 当事人从 0 起编号, 共 {n} 名",
                "Names no party of the case: the parties are numbered from 0, {n} in all",
            ).format(n=len(roles)),
        )
    if target == agent:
        return "represents_self", Text("代理人不能代理自己", "An agent cannot act for itself")
    if roles[target] == PartyRole.agent:
        return (
            "represents_agent",
            Text(
                "代理人只能代理当事人, 不能代理另一名代理人",
                "An agent acts for a party, not for another agent",
            ),
        )
    return None


def party_id_number(value: str | None, info: ValidationInfo) -> str | None:
    """A party's document number, normalised for its type (given before it), as intake takes it."""
    if value is None or not value:
        return None
    id_type = info.data.get("id_type")
    if id_type is None:
        raise DomainValueError(
            "id_type_missing", Text("填写证件号码时须注明证件类型", "Give id_type with id_number")
        )
    return normalise_id_number(id_type, value)


class _PartyNumbers(WriteModel):
    """A party's document number and phone, checked and normalised as intake takes them: one rule
    for a party registered and for a party's details corrected. (`id_type` comes before
    `id_number` in the subclasses, so the number is checked against it.)"""

    @field_validator("id_number", check_fields=False)
    @classmethod
    def _check_id_number(cls, value: str | None, info: ValidationInfo) -> str | None:
        return party_id_number(value, info)

    @field_validator("phone", check_fields=False)
    @classmethod
    def _check_phone(cls, value: str | None) -> str | None:
        return normalise_phone(value) if value else None


# The particulars a court confirming an agreement is given of each party beyond its identity and
# contact (民诉法解释 Art. 353-354; 法释〔2011〕5号 Art. 3), described once for intake and correction.
SERVICE_ADDRESS_DESCRIPTION = (
    "送达地址: where the court serves its papers on the party (法释〔2011〕5号 Art. 3), when not at "
    "`address`. Omitted, the court's dossier and the 司法确认申请书 give the address as the service "
    "address, and say so."
)
LEGAL_REPRESENTATIVE_DESCRIPTION = (
    "法定代表人 (a legal person's) or 主要负责人 (another organisation's): the person an organisation "
    "acts through (民事诉讼法 Art. 51). Organisations only (422 `legal_representative_not_organisation`)."
)


def _represents_description(counting: str) -> str:
    return (
        "Agents only (role `agent`; 422 `represents_not_agent`): the party this agent (委托代理人) acts "
        f"for, by its place in the case's list of parties, counted from 0. {counting} It names a party "
        "of the case (422 `represents_unknown_party`) that is no agent (`represents_agent`), and not "
        "the agent itself (`represents_self`). The court is given the agent's power of attorney from "
        "that party (法释〔2011〕5号 Art. 3)."
    )


REPRESENTS_DESCRIPTION = _represents_description(
    "At intake that is its index in this request's `parties` (the party at `parties[0]` is 0); for a "
    "party added by a correction (`add_parties`), the case's parties come first, in the order the "
    "case read lists them, and the parties added follow in theirs."
)


class PartyIn(_PartyNumbers):
    role: PartyRole
    kind: PartyKind = PartyKind.person
    name: Annotated[str, Field(min_length=1, max_length=100)]
    id_type: IdType | None = None
    id_number: Annotated[str | None, Field(max_length=40)] = None
    phone: Annotated[str | None, Field(max_length=20)] = None
    address: Annotated[str | None, Field(max_length=200)] = None
    region_code: RegionCode | None = Field(
        default=None, description="Where the party lives (GB/T 2260); names the court of its domicile."
    )
    service_address: Annotated[str | None, Field(max_length=200)] = Field(
        default=None, description=SERVICE_ADDRESS_DESCRIPTION
    )
    legal_representative: Annotated[str | None, Field(max_length=100)] = Field(
        default=None, description=LEGAL_REPRESENTATIVE_DESCRIPTION
    )
    represents: Annotated[int | None, Field(ge=0, le=MAX_PARTY_POSITION)] = Field(
        default=None, description=REPRESENTS_DESCRIPTION
    )

    model_config = ConfigDict(
        json_schema_extra={
            "allOf": [
                {"if": given("id_number", NON_BLANK_TEXT), "then": given("id_type", {"type": "string"})},
                when(
                    "kind",
                    [PartyKind.organisation.value],
                    {"properties": {"id_type": {"enum": [IdType.uscc.value, IdType.other.value, None]}}},
                    omitted("legal_representative"),
                ),
                when("role", [PartyRole.agent.value], {}, omitted("represents")),
            ]
        }
    )

    @model_validator(mode="after")
    def _organisation_code(self) -> Self:
        if self.kind == PartyKind.organisation and self.id_type not in (None, IdType.uscc, IdType.other):
            raise at_field(
                "id_type",
                "invalid_id_type",
                Text("单位当事人的证件应为统一社会信用代码", "An organisation is identified by its USCC"),
            )
        return self

    @field_validator("service_address", "legal_representative")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value or None

    @model_validator(mode="after")
    def _particulars_of_its_kind(self) -> Self:
        # 民事诉讼法 Art. 51: a legal person acts through its 法定代表人, another organisation
        # through its 主要负责人; a person has neither. Only an agent acts for another party.
        if self.legal_representative is not None and self.kind != PartyKind.organisation:
            raise at_field("legal_representative", *NOT_AN_ORGANISATION)
        if self.represents is not None and self.role != PartyRole.agent:
            raise at_field("represents", *NOT_AN_AGENT)
        return self


class PartySearchIn(WriteModel):
    """Exactly one of the two numbers, validated like at intake."""

    model_config = ConfigDict(
        json_schema_extra={"oneOf": [given("id_number", NON_BLANK_TEXT), given("phone", NON_BLANK_TEXT)]}
    )

    id_type: IdType = IdType.resident_id
    id_number: Annotated[str | None, Field(max_length=40)] = None
    phone: Annotated[str | None, Field(max_length=20)] = None

    @field_validator("id_number")
    @classmethod
    def _check_id_number(cls, value: str | None, info: ValidationInfo) -> str | None:
        return normalise_id_number(info.data.get("id_type", IdType.resident_id), value) if value else None

    @field_validator("phone")
    @classmethod
    def _check_phone(cls, value: str | None) -> str | None:
        return normalise_phone(value) if value else None

    @model_validator(mode="after")
    def _one_of(self) -> Self:
        if (self.id_number is None) == (self.phone is None):
            raise DomainValueError(
                "one_number", Text("请只填写证件号码或电话号码之一", "Give either id_number or phone")
            )
        return self


class DisputeCreate(WriteModel):
    # A case a court delegated names the court: its deadline (特邀调解规定 Art. 27) and the court
    # competent to confirm the agreement follow from it.
    model_config = ConfigDict(
        json_schema_extra={
            "if": {"properties": {"channel": {"const": "court_delegated"}}, "required": ["channel"]},
            "then": {
                "properties": {"inviting_court_id": {"type": "string"}},
                "required": ["inviting_court_id"],
            },
            # An application date of its own only for a referred case (applied_on).
            "allOf": [
                {
                    "if": {"not": given("channel", {"enum": [c.value for c in REFERRAL_CHANNELS]})},
                    "then": omitted("applied_on"),
                },
                # The court's stage and case number only for a case a court delegated.
                {
                    "if": {
                        "not": {
                            "anyOf": [
                                given("channel", {"const": Channel.court_delegated.value}),
                                given("inviting_court_id", {"type": "string"}),
                            ]
                        }
                    },
                    "then": {
                        "properties": {"court_stage": {"type": "null"}, "court_case_number": {"type": "null"}}
                    },
                },
            ],
        }
    )

    category: Category
    subject_matters: Annotated[list[SubjectMatter], Field(max_length=11)] = []
    description: Annotated[str, Field(min_length=5, max_length=5000)]
    channel: Channel = Channel.window
    external_reference: Annotated[
        Annotated[str, AfterValidator(canonical_reference)] | None,
        Field(
            min_length=1,
            max_length=MAX_REFERENCE_LENGTH,
            description="The number the referring side gave the case: a 12345 work order "
            "(12345-2026-00001), a court's case number ((2026)浙0681民诉前调123号), a petition "
            "office's (浙信转〔2026〕12号), a police report's. Letters and digits of any script and "
            "- _ . / : # ( ) 〔〕; stored in one form (full-width characters as half-width, [ ] and "
            "【】 as 〔〕, dashes as -, no spaces), so the same number written another way is the same "
            "number. One case per number and issuing side: per channel and county, or for "
            "court_delegated per delegating court.",
        ),
    ] = None
    region_code: RegionCode
    address: Annotated[str | None, Field(max_length=200)] = None
    amount_in_dispute: Annotated[
        Decimal | None, Field(ge=0, le=Decimal("99999999999999.99"), decimal_places=2), Yuan
    ] = None
    people_involved: Annotated[int | None, Field(ge=1, le=100_000)] = Field(
        default=None,
        description="涉及人数: how many people the dispute involves, counting each party (agents are "
        "not parties of the dispute) and the people the parties stand for in a group dispute; it "
        "decides whether the case is a group dispute (群体性), counted as the category's triage rule "
        "says (`group_counts`): for labour the workers' side only (劳动争议调解仲裁法 Art. 7: ten or "
        "more workers), that is the people involved but the parties on the employer's side and any "
        "other organisation. Omitted, the number of parties given; never fewer than that (422 "
        "`people_involved_below_parties`). The registration's timeline entry and event say what was "
        "counted (`group`).",
    )
    severity: Severity = Severity.ordinary
    is_risk: bool = Field(
        default=False, description="涉稳/危险: danger of violence or a public-security matter."
    )
    complexity: Complexity | None = Field(
        default=None,
        description="简易 / 一般 / 疑难复杂: the center's handling deadline follows it (1 / 7 / 20 days by default).",
    )
    parties: Annotated[
        list[PartyIn],
        Field(
            min_length=2,
            max_length=200,
            description="At least one applicant and one respondent.",
            json_schema_extra={
                "allOf": [
                    {"contains": {"properties": {"role": {"const": role}}, "required": ["role"]}}
                    for role in (PartyRole.applicant.value, PartyRole.respondent.value)
                ]
            },
        ),
    ]
    inviting_court_id: uuid.UUID | None = Field(
        default=None,
        description="Court-delegated mediation (特邀调解): the court that invited it; it is competent to "
        "confirm the agreement. A case naming it is court-delegated whatever its channel: the parties' "
        "consent is asked before mediation begins (特邀调解规定 Art. 11) and the court's period applies "
        "(Art. 27).",
    )
    court_stage: CourtStage | None = Field(
        default=None,
        description="Court-delegated cases only: when in its case the court delegated the mediation, "
        "which sets the period (特邀调解规定 Art. 27): pre_filing (立案前委派调解, 30 days; the default "
        "for a court-delegated case), after_filing_ordinary (立案后委托调解, ordinary procedure, 15 days) "
        "or after_filing_simple (simple procedure, 7 days); longer only by every party's agreement. "
        "Refused (422 `not_court_delegated`) on a case no court delegated.",
    )
    court_case_number: Annotated[
        Annotated[str, AfterValidator(canonical_reference)] | None,
        Field(
            min_length=1,
            max_length=MAX_REFERENCE_LENGTH,
            description="Court-delegated cases only: the court's number for its case, e.g. the filed "
            "case's ((2026)浙0681民初123号) for mediation entrusted after filing. Stored in the form "
            "`external_reference` is. Refused (422 `not_court_delegated`) on a case no court delegated.",
        ),
    ] = None
    applied_on: Day | None = Field(
        default=None,
        description="申请日: for a case referred by the body the resident applied to (channel hotline, "
        "petition, court_delegated or police), the day they applied there, which interrupted the "
        "limitation period (民法典 Art. 195). Not after the day of registration, and at most "
        "`referred_application_max_days` (90 by default) before it. Omitted, and for the other "
        "channels, the application date is the day of registration.",
    )

    @field_validator("applied_on")
    @classmethod
    def _applied_at_a_referring_body(cls, value: date | None, info: ValidationInfo) -> date | None:
        # At the window and online the resident applies to the center itself, on the day it
        # registers the case; a grid worker's report is no application by the resident.
        channel = info.data.get("channel")  # None when the channel itself was refused
        if value is not None and channel is not None and channel not in REFERRAL_CHANNELS:
            # Said as what to do: the clerk leaves the date empty, or, when the case did come from
            # a referring body, chooses that channel first.
            raise DomainValueError(
                "applied_on_not_referred",
                Text(
                    "{channel}的案件以登记之日为申请日, 请将申请日期留空。只有 12345 热线、信访、法院、"
                    "公安转来的案件才填写当事人向该处申请之日: 如本案是这样转来的, 请先将来源渠道改为"
                    "相应渠道",
                    "A case {channel} was applied for on the day it is registered: leave applied_on "
                    "out. Only a case referred by the hotline, a petition office, a court or the "
                    "police gives the day the resident applied there: if this case was, give that "
                    "channel",
                ).format(channel=APPLIED_AT_REGISTRATION.get(channel, Text("本渠道", "from this channel"))),
            )
        return value

    @property
    def court_delegated(self) -> bool:
        return is_court_delegated(self.channel, self.inviting_court_id)

    @property
    def people(self) -> int:
        """涉及人数 as registered: as given, else one for each party (`_at_least_the_parties`)."""
        return self.people_involved or involved_parties(self.parties)

    @model_validator(mode="after")
    def _at_least_the_parties(self) -> Self:
        # Each party is someone the dispute involves: a count below the parties listed is a slip,
        # and would keep a group dispute from counting as one (the group threshold reads it). An
        # agent acts for a party and is no party of the dispute.
        parties = involved_parties(self.parties)
        if self.people_involved is not None and self.people_involved < parties:
            raise at_field(
                "people_involved",
                "people_involved_below_parties",
                people_below_parties(self.people_involved, parties),
            )
        return self

    @model_validator(mode="after")
    def _court_details_for_a_court_case(self) -> Self:
        # 特邀调解规定 Art. 27 times the mediation a court delegated by the stage of the court's
        # case; a case no court delegated has neither stage nor court case.
        if self.court_delegated:
            return self
        for name in ("court_stage", "court_case_number"):
            if getattr(self, name) is not None:
                raise at_field(
                    name,
                    "not_court_delegated",
                    Text(
                        "只有法院委派或委托调解的案件(注明委派的法院)可以填写法院的案件阶段和案号",
                        "Only a case a court delegated (naming the court) has a court stage and case number",
                    ),
                )
        return self

    @model_validator(mode="after")
    def _both_sides(self) -> Self:
        roles = {p.role for p in self.parties}
        if PartyRole.applicant not in roles or PartyRole.respondent not in roles:
            raise at_field(
                "parties",
                "parties_incomplete",
                Text("至少须有一名申请人和一名被申请人", "At least one applicant and one respondent"),
            )
        return self

    @model_validator(mode="after")
    def _agents_act_for_parties(self) -> Self:
        # 法释〔2011〕5号 Art. 3: the court is given each agent's power of attorney from the party it
        # acts for, a party of this case.
        roles = [p.role.value for p in self.parties]
        for position, party in enumerate(self.parties):
            if party.represents is None:
                continue
            refused = represents_refusal(roles, position, party.represents)
            if refused is not None:
                raise at_field(("parties", position, "represents"), *refused)
        return self

    @field_validator("parties")
    @classmethod
    def _each_party_once(cls, parties: list[PartyIn]) -> list[PartyIn]:
        """A person or organisation is one party of the case: never applicant and respondent at
        once (a dispute has two sides, and nobody settles one with themself), and not listed twice
        on one side, where it would count twice (consent, signatures, the claimants early warning
        counts). Recognised by the document number as normalised ("330681 1990..." is
        "3306811990..."); the message names the rows, never the number. An agent may act for
        several parties and is not compared."""
        first: dict[tuple[str, str], int] = {}
        repeats: list[tuple[int, int]] = []
        for position, party in enumerate(parties):
            if party.role == PartyRole.agent or party.id_type is None or not party.id_number:
                continue
            seen = first.setdefault((party.id_type.value, party.id_number), position)
            if seen != position:
                repeats.append((seen, position))
        if repeats:
            zh = "; ".join(
                f"{_row(parties, a, 'zh')} 与 {_row(parties, b, 'zh')} 证件号码相同" for a, b in repeats
            )
            en = "; ".join(
                f"{_row(parties, a, 'en')} and {_row(parties, b, 'en')} have the same document number"
                for a, b in repeats
            )
            raise DomainValueError(
                "party_repeated",
                Text("同一人不能两次列为当事人: {zh}", "One person is listed as two parties: {en}").format(
                    zh=zh, en=en
                ),
            )
        return parties


class CountedParty(Protocol):
    """A party as the counts of people read it: one given at intake or in a correction (PartyIn),
    or one on record (Party)."""

    @property
    def role(self) -> str: ...

    @property
    def kind(self) -> str: ...


def involved_parties(parties: Iterable[CountedParty]) -> int:
    """The parties a dispute involves: every one but the agents, who act for them."""
    return sum(1 for party in parties if party.role != PartyRole.agent)


def people_below_parties(count: int, parties: int, corrected: bool = False) -> Text:
    """Why a 涉及人数 below the parties is refused (422 `people_involved_below_parties`), at intake
    or in a correction (`corrected`, counting the parties the case will list after it)."""
    if corrected:
        listed = Text("更正后的当事人", "the case's {n} parties after this correction")
        advice = Text("", "")
    else:
        listed = Text("所列当事人", "the {n} parties given")
        advice = Text(", 或留空按当事人人数计", ", or omit it to count the parties")
    return Text(
        "涉及人数填写为 {count} 人, 少于{listed} {n} 人 (代理人不计): 请填写不少于 {n} 的人数{advice}",
        "people_involved is {count}, fewer than {listed} (agents not counted): give at least {n}{advice}",
    ).format(count=count, n=parties, listed=listed.format(n=parties), advice=advice)


def employer_side(parties: Iterable[CountedParty]) -> PartyRole:
    """The side of a labour dispute the employer (用人单位) stands on: the one of applicant and
    respondent that holds the organisation party or parties. When neither side holds one (workers
    against a natural-person employer, an individual business registered as a person) or both do
    (a trade union beside the workers), the respondent side: 劳动争议调解仲裁法 Art. 7 counts the
    workers who share a claim (有共同请求), and the side bringing the claim is theirs."""
    holding = {
        party.role
        for party in parties
        if party.kind == PartyKind.organisation and party.role in (PartyRole.applicant, PartyRole.respondent)
    }
    return PartyRole.applicant if holding == {PartyRole.applicant} else PartyRole.respondent


def workers_side(people: int, parties: Sequence[CountedParty]) -> int:
    """劳动者一方: the workers among the `people` a labour dispute involves (劳动争议调解仲裁法 Art. 7,
    "发生劳动争议的劳动者一方在十人以上, 并有共同请求的"). Intake says how many people the dispute
    involves and who its parties are, not who is a worker, so the workers are the people involved
    but the parties on the employer's side (`employer_side`), any other organisation (a labour
    dispatch agency as third party: an organisation is never a worker) and any third party (a
    subcontractor who hired the workers, 包工头, is on neither side). The people a group's
    representatives stand for beyond the parties listed are counted as workers. Agents are in
    neither: they act for a party and are not counted among the people involved."""
    employer = employer_side(parties)
    not_workers = sum(
        1
        for party in parties
        if party.role != PartyRole.agent
        and (party.role in (employer, PartyRole.third_party) or party.kind == PartyKind.organisation)
    )
    return max(people - not_workers, 0)


def _row(parties: list[PartyIn], position: int, language: str) -> str:
    party = parties[position]
    return f"{PARTY_ROLE_NAMES[party.role].get(language)} {party.name} (parties[{position}])"


# ---- corrections ---------------------------------------------------------------------------------


# What a party may lack at intake, and so what a correction may clear (null) when the detail on
# record is wrong and the right one is not known: a wrong number finds another person's cases, a wrong
# address sends papers to a stranger (个人信息保护法 Art. 46: inaccurate information is corrected or
# deleted). A party's name, and the case's facts, are required at intake and are never cleared.
CLEARABLE_PARTY_FIELDS = (
    "id_type",
    "id_number",
    "phone",
    "address",
    "region_code",
    "service_address",
    "legal_representative",
    "represents",
)
# Left out, or blank text for a number (as the case page sends a field it shows empty): unchanged.
BLANK_AS_OMITTED = ("id_number", "phone")


def _not_cleared(value: Any) -> Any:
    """A correction leaves out what it keeps; null clears, and this must always hold a value."""
    if value is None:
        raise DomainValueError(
            "null_not_allowed",
            Text(
                "此项为必填项, 不能清空; 不更正时请省略该项",
                "Required: it cannot be cleared; leave it out to keep it as it is",
            ),
        )
    return value


class PartyCorrectionIn(_PartyNumbers):
    """The registered details of one party, corrected or completed (个人信息保护法 Art. 46): only
    the fields given change, each checked and normalised as at intake; a field left out stays as
    it is. A document number is given with its type, as at intake. null clears a detail a party may
    lack at intake (id_type, id_number, phone, address, region_code, service_address,
    legal_representative, represents) when the one on record is wrong; the name is never cleared
    (422 `null_not_allowed`). A number given as blank text is left as it is, as if left out."""

    model_config = ConfigDict(
        json_schema_extra=without_null(
            frozenset({"name"}),
            {
                "if": given("id_number", NON_BLANK_TEXT),
                "then": given("id_type", {"type": "string"}),
            },
        )
    )

    party_id: uuid.UUID
    name: Annotated[str | None, Field(min_length=1, max_length=100)] = Field(
        default=None, description="Never cleared: null is refused (422 `null_not_allowed`)."
    )
    id_type: IdType | None = Field(
        default=None,
        description="null clears it; while the party has a document number on record, only with "
        "id_number null in the same entry (422 `id_number_missing` at id_number otherwise).",
    )
    id_number: Annotated[str | None, Field(max_length=40)] = Field(
        default=None,
        description="Given with its id_type. null clears a wrong number: the case is no longer found "
        "by it, nor related by it to other cases.",
    )
    phone: Annotated[str | None, Field(max_length=20)] = Field(
        default=None, description="null clears a wrong number: the case is no longer found by it."
    )
    address: Annotated[str | None, Field(min_length=1, max_length=200)] = Field(
        default=None, description="null clears it."
    )
    region_code: RegionCode | None = Field(
        default=None,
        description="Where the party lives (GB/T 2260); names the court of its domicile. null clears it.",
    )
    service_address: Annotated[str | None, Field(min_length=1, max_length=200)] = Field(
        default=None, description=SERVICE_ADDRESS_DESCRIPTION + " null clears it."
    )
    legal_representative: Annotated[str | None, Field(min_length=1, max_length=100)] = Field(
        default=None, description=LEGAL_REPRESENTATIVE_DESCRIPTION + " null clears it."
    )
    represents: Annotated[int | None, Field(ge=0, le=MAX_PARTY_POSITION)] = Field(
        default=None,
        description=_represents_description(
            "The case's parties are counted in the order the case read lists them, the parties this "
            "correction adds (`add_parties`) following in theirs."
        )
        + " null clears it.",
    )

    _name_kept = field_validator("name")(_not_cleared)

    @model_validator(mode="before")
    @classmethod
    def _blank_number_left_out(cls, data: Any) -> Any:
        # Blank text never meant "clear" here (it was read as no number given), and the case page
        # sends a number it shows masked as empty text: only null clears.
        if isinstance(data, dict):
            return {
                k: v
                for k, v in data.items()
                if not (k in BLANK_AS_OMITTED and isinstance(v, str) and not v.strip())
            }
        return data


class DisputeCorrectionIn(WriteModel):
    """更正、补充登记信息: at least one of the registered facts, corrections to parties, or
    parties found later. Parties are never removed here."""

    model_config = ConfigDict(
        json_schema_extra=without_null(
            frozenset({"description", "people_involved"}),
            {
                "anyOf": [
                    {"required": ["description"], "properties": {"description": {"type": "string"}}},
                    {"required": ["parties"], "properties": {"parties": {"type": "array"}}},
                    {"required": ["add_parties"], "properties": {"add_parties": {"type": "array"}}},
                    {
                        "required": ["people_involved"],
                        "properties": {"people_involved": {"type": "integer"}},
                    },
                ]
            },
        )
    )

    reason: Reason
    description: Annotated[str | None, Field(min_length=5, max_length=5000)] = Field(
        default=None,
        description="The dispute's facts as registered, corrected; never cleared (null is refused, "
        "422 `null_not_allowed`). Read for words of violence, self-harm or gathering as at intake "
        "(人民调解法 Art. 25): a word no risk alert of the case has named yet flags the case (is_risk, "
        "attention `risk`) and raises its risk alert, or joins the one open, with `details.source` "
        "`correction`, on the timeline and in the feed (`alert_raised`) in the same transaction as the "
        "correction. Words the case's risk alerts named already raise none again.",
    )
    parties: Annotated[
        list[PartyCorrectionIn] | None,
        Field(min_length=1, max_length=200, description="Corrections to parties of the case, each once."),
    ] = None
    add_parties: Annotated[
        list[PartyIn] | None,
        Field(
            min_length=1,
            max_length=200,
            description="Parties found later (another respondent, a third party), while mediation can "
            "still involve them.",
        ),
    ] = None
    people_involved: Annotated[int | None, Field(ge=1, le=100_000)] = Field(
        default=None,
        description="涉及人数 as registered, corrected: never fewer than the case's parties after this "
        "correction, agents not counted (422 `people_involved_below_parties`). Parties added beyond the "
        "number registered raise it to the number of parties without it being given. The group "
        "dispute is decided again as at intake (for labour, the workers' side: 劳动争议调解仲裁法 "
        "Art. 7), also when parties are added to a labour case: crossing the threshold makes the case "
        "a group dispute and, while it is still at the center, gives it the tier intake would have; "
        "falling below it clears the group flag but never lowers a tier. The change says "
        "`people_involved` `{from, to}`, `group` (what was counted, the threshold, the decision) and, "
        "when it moved, `tier`.",
    )

    _facts_kept = field_validator("description", "people_involved")(_not_cleared)

    @model_validator(mode="after")
    def _something(self) -> Self:
        if (
            self.description is None
            and not self.parties
            and not self.add_parties
            and self.people_involved is None
        ):
            raise DomainValueError(
                "nothing_to_correct",
                Text(
                    "请填写要更正的事实、涉及人数、当事人信息或新增的当事人",
                    "Give the facts, the number of people involved, party details or new parties to correct",
                ),
            )
        return self


class PartyOut(BaseModel):
    id: uuid.UUID
    role: PartyRole
    kind: PartyKind
    name: str
    id_type: IdType | None
    id_number: str | None = Field(description="Masked (110***********1234) unless the caller holds pii:read.")
    phone: str | None = Field(description="Masked (138****0000) unless the caller holds pii:read.")
    address: str | None
    region_code: str | None
    service_address: str | None = Field(
        description="送达地址 as registered; null: none given, and the court serves at `address` "
        "(the dossier's `particulars` say which). ID and phone numbers in it are masked as in `address`."
    )
    legal_representative: str | None = Field(
        description="An organisation's 法定代表人 or 主要负责人 (民事诉讼法 Art. 51); null for a person."
    )
    represents: int | None = Field(
        description="An agent's: the place, counted from 0 in this list, of the party it acts for, "
        "as given at intake or corrected. Null when not stated, and for every other role."
    )
    represents_party_id: uuid.UUID | None = Field(
        description="An agent's: the id of the party it acts for (`represents`)."
    )
    consent: Consent
    masked: bool = Field(description="Whether id_number and phone are masked for this caller.")


class CaseClockSummary(BaseModel):
    name: str = Field(
        description="acceptance | sign_for | handling | mediation | confirmation_window | follow_up_visit"
    )
    rule_id: str
    source: str = Field(description="The article or center practice the deadline comes from.")
    due_on: date = Field(description="The last day (local calendar).")
    due_at: datetime = Field(description="When the period is over: the end of the last day.")
    remaining_seconds: int = Field(description="Until due_at; negative when overdue. Frozen while paused.")
    level: str = Field(description="normal | at_risk | overdue")
    paused: bool
    provisional: bool = Field(
        description="The holiday calendar of a year in the period is not yet published; only weekends and the statutory "
        "holidays were counted."
    )


class DisputeOut(BaseModel):
    id: uuid.UUID
    case_number: str = Field(examples=["330681-2026-000042"])
    status: str
    status_label: str
    category: Category
    subject_matters: list[SubjectMatter]
    description: str
    channel: Channel
    external_reference: str | None
    region_code: str
    address: str | None
    amount_in_dispute: Decimal | None
    people_involved: int
    severity: Severity
    is_group: bool
    is_risk: bool
    tier: str
    version: int
    body_id: uuid.UUID | None
    handoff_target_id: uuid.UUID | None
    inviting_court_id: uuid.UUID | None
    court_delegated: bool = Field(
        description="特邀调解: the case names the court that invited the mediation, or came by the court "
        "channel. The parties' consent is asked before mediation (特邀调解规定 Art. 11), the court's period "
        "applies (Art. 27) and the inviting court alone confirms the agreement (民事诉讼法 Art. 205)."
    )
    court_stage: CourtStage | None = Field(
        description="Court-delegated cases: pre_filing, after_filing_ordinary or after_filing_simple "
        "(特邀调解规定 Art. 27: 30, 15 or 7 days)."
    )
    court_case_number: str | None
    mediator_id: uuid.UUID | None
    mediator_name: str | None
    sign_for_due_on: date | None = Field(
        description="While assigned: the last day for the body to sign for the case or return it."
    )
    attention: str | None = Field(
        description="Why a supervisor must look at the case now: the most urgent reason that holds, "
        "in this order: risk (words of violence, self-harm or gathering, until its alert is resolved), "
        "triage_exhausted (every candidate body returned it, none is left), supervision_overdue (a 督办 "
        "order went unanswered past its day). When the reason shown stops holding, the next one that "
        "still holds is shown."
    )
    complexity: Complexity | None
    clock: CaseClockSummary | None = Field(
        description="The most urgent running deadline: due time, time left and level (normal / at_risk / overdue)."
    )
    owner: dict[str, Any] | None = Field(description="包案领导: the official who owns the case, if any.")
    applied_on: date
    mediation_started_on: date | None
    agreement: dict[str, Any] | None
    agreement_effective_on: date | None
    handoff: dict[str, Any] | None
    outcome: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    parties: list[PartyOut]


class RelatedCaseOut(BaseModel):
    id: uuid.UUID
    case_number: str
    status: str
    status_label: str
    category: Category
    channel: Channel
    created_at: datetime
    matched_on: list[Literal["id_number", "phone", "respondent_organisation"]] = Field(
        description="What the cases share: a party's ID number or phone number (by the keyed index), "
        "or the respondent organisation (credit code, or its exact normalised name). "
        "A person's name alone never matches, nor does an agent (代理人), who acts for a party."
    )
    linked: bool = Field(description="Whether a clerk already linked the two cases.")


class DisputeCreated(DisputeOut):
    query_code: str = Field(
        description="For the party's status lookup; shown once, printed on the intake receipt."
    )
    related_cases: list[RelatedCaseOut] = Field(
        description="Earlier cases of the same applicant or against the same respondent organisation, "
        "newest first (at most 20), so the clerk can link a repeat of the same dispute."
    )


class LinkKind(StrEnum):
    same_dispute = "same_dispute"  # 同一纠纷经不同渠道重复反映
    related = "related"  # 关联纠纷


class CaseLinkIn(WriteModel):
    dispute_id: uuid.UUID = Field(description="The other case.")
    kind: LinkKind = LinkKind.same_dispute
    note: Note = None


class CaseLinkOut(BaseModel):
    id: uuid.UUID
    dispute_id: uuid.UUID = Field(description="The other case.")
    case_number: str
    status: str
    channel: Channel
    kind: LinkKind
    note: str | None
    created_by: str
    created_at: datetime


class CaseUnlinkIn(WriteModel):
    """Why two cases linked by mistake (not the same dispute, not related after all) are told apart
    again: kept on both cases' timelines."""

    reason: Reason


class UnlinkedCase(BaseModel):
    id: uuid.UUID
    case_number: str
    version: int = Field(description="The case's version after the link was removed (its ETag).")


class CaseUnlinkOut(BaseModel):
    """Both cases as the removal left them: each version moved on by one."""

    dispute: UnlinkedCase = Field(description="The case named in the path; the response's ETag is its.")
    other: UnlinkedCase = Field(description="The case it was linked to.")
    kind: LinkKind = Field(description="What the link had said the two cases were.")
    unlinked_at: datetime


class DisputePage(BaseModel):
    items: list[DisputeOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")


class TimelineEntryOut(BaseModel):
    seq: int
    action: str
    from_status: str | None
    to_status: str | None
    actor_role: str
    actor_id: str
    reason: str | None
    payload: dict[str, Any]
    occurred_at: datetime
    reason_withheld: bool = Field(
        default=False,
        description=(
            "The entry's reason is another body's (its return, transfer, escalation or withdrawal), "
            "or the center's for sending the case to another body (an assignment's override reason "
            "and note): `reason`, and the payload's `reason`, `note` and `override_reason`, are null "
            "for this caller, as `GET /v1/disputes/{id}/assignments` leaves that body's part out. "
            "So, too, an `add_document` or `withdraw_document` entry of a document the caller is not "
            "shown (a court or commission is shown what was handed to it: `GET .../documents`): it "
            "keeps its place, kind and `document_id`, but `reason` and the payload's `name` and "
            "`note` are null."
        ),
    )

    model_config = ConfigDict(from_attributes=True)


class ConsentIn(WriteModel):
    decision: Consent = Field(
        description="given or refused; unknown is the state before a decision and cannot be recorded.",
        json_schema_extra={"enum": [Consent.given.value, Consent.refused.value]},
    )
    note: Note = None

    @field_validator("decision")
    @classmethod
    def _decided(cls, value: Consent) -> Consent:
        if value == Consent.unknown:
            raise DomainValueError("consent_undecided", Text("须为同意或拒绝", "Must be given or refused"))
        return value


class QueryCodeCause(StrEnum):
    lost = "lost"  # 遗失: the receipt or the slip is lost
    disclosed = "disclosed"  # 可能被他人知悉: someone else may know the code


class QueryCodeReissueIn(WriteModel):
    cause: QueryCodeCause = Field(
        default=QueryCodeCause.lost,
        description="Why a new code is given: lost (the receipt or slip is lost) or disclosed (someone "
        "else may know the code). On the timeline and in the event.",
    )
    note: Note = Field(
        default=None,
        description="Who asked and how the window checked it (e.g. 申请人本人持身份证到窗口): on the "
        "timeline, masked like other notes without pii:read; never in the event.",
    )


class QueryCodeReissued(BaseModel):
    dispute_id: uuid.UUID
    case_number: str
    query_code: str = Field(
        description="The new query code, answered this once and kept nowhere but as its hash: the old "
        "code no longer works. Print it for the party (the case page's slip) or tell it; it is never "
        "shown again."
    )
    version: int = Field(description="The case's version after the change (also the ETag).")


class StatusLookupIn(WriteModel):
    case_number: Annotated[str, Field(min_length=1, max_length=32)]
    query_code: Annotated[str, Field(min_length=4, max_length=16)]

    @field_validator("case_number", "query_code", mode="before")
    @classmethod
    def _as_printed(cls, value: Any) -> Any:
        return as_printed(value) if isinstance(value, str) else value


# Full-width forms of ASCII (U+FF01-U+FF5E) and the ideographic space, to what a receipt prints.
_FULL_WIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}


def as_printed(text: str) -> str:
    """A phone's Chinese input method types full-width digits, letters and dashes (３３０６８１－…,
    ＡＢＣＤ) and the ideographic space: read as the receipt prints them, or a party holding the
    right receipt is told the code is wrong. One character for one, so the length the contract
    states holds for the text as sent; NFKC would also spread a ½ or a ㎏ over several
    characters, and refuse as too long a code the contract allows."""
    return text.translate(_FULL_WIDTH)


class StatusLookupHandoff(BaseModel):
    """The court or commission the case went to, as the party is told of it: no personal data."""

    kind: str = Field(
        description="judicial_confirmation | labour_arbitration | commercial_arbitration | "
        "rural_land_arbitration | litigation"
    )
    kind_label: str
    target_name: str = Field(description="The court or commission.")
    status: str = Field(
        description="pending (it decides whether to accept) | accepted | not_accepted | confirmed | "
        "rejected | concluded"
    )
    target_case_number: str | None = Field(description="Its own case number, once it accepted the case.")
    due_on: date | None = Field(
        description="The last day it has to decide: on accepting while pending, on the matter once "
        "accepted (e.g. 劳动争议调解仲裁法 Art. 29: 5 days; Art. 43: 45 days, extended by at most 15); "
        "null when the law sets none or once it decided."
    )
    provisional: bool = Field(
        description="`due_on` (or `enforcement_deadline`) reaches a year whose public holidays are not "
        "published yet: counted on weekends and the statutory holidays only, it may move later."
    )
    ruling_number: str | None = Field(
        description="Judicial confirmation: the number of the court's ruling (民事裁定书), once it ruled."
    )
    ruled_on: date | None = None
    enforcement_deadline: date | None = Field(
        description="Judicial confirmation granted: the last day to apply to the court for enforcement "
        "if the agreement is not performed (民事诉讼法 Art. 250: two years from the last day of "
        "performance the agreement sets, or from the ruling)."
    )


class StatusLookupOut(BaseModel):
    case_number: str
    status: str
    status_label: str
    next_step: str = Field(
        description="What the party does next, in words; for a declined case, the route it was told "
        "to take instead and what that means (never the reason, which may name the parties); for a "
        "case at a court or commission, where it is, by when it must decide, and what the party may "
        "do if it does not (a labour dispute goes to court: 劳动争议调解仲裁法 Art. 29, 43)."
    )
    handoff: StatusLookupHandoff | None = Field(
        default=None, description="The court or commission the case went to; null while it has gone to none."
    )
    updated_at: datetime


# ---- action payloads: one per action, so the contract documents each --------------------------


class AcceptPayload(WriteModel):
    note: Note = None


class DeclinePayload(WriteModel):
    reason: Reason
    advice: DeclineAdvice = Field(description="Where the party should go instead.")


class AssignPayload(WriteModel):
    body_id: uuid.UUID
    override_reason: Annotated[
        str | None,
        Field(
            min_length=2,
            max_length=2000,
            description="Required when the body is not among the triage recommendations "
            "(GET /v1/disputes/{id}/triage) or triage advises declining.",
        ),
    ] = None
    note: Note = None


class SignForPayload(WriteModel):
    mediator_id: uuid.UUID | None = Field(
        default=None,
        description="The body's mediator who takes the case (checked for declared conflicts); "
        "may also be set later with PUT /v1/disputes/{id}/mediator.",
    )
    note: Note = None


class MediatorChoiceIn(WriteModel):
    mediator_id: uuid.UUID
    note: Note = None


class ReturnPayload(WriteModel):
    reason: Reason


class TransferPayload(WriteModel):
    reason: Reason


class EscalatePayload(WriteModel):
    reason: Reason


class WithdrawPayload(WriteModel):
    reason: Reason
    party_id: uuid.UUID | None = Field(default=None, description="The party who withdrew, if one did.")


class AgreePayload(WriteModel):
    agreement_id: uuid.UUID = Field(
        description="The agreement version, complete and signed by every party and the mediator and sealed "
        "(or, for an oral agreement, recorded by the mediator): see /v1/disputes/{id}/agreements."
    )
    note: Note = None


class FailPayload(WriteModel):
    reason_code: TerminationReason
    note: Note = None


class RequestConfirmationPayload(WriteModel):
    court_id: uuid.UUID
    basis: ConfirmationCourtBasis
    applicant_party_ids: Annotated[list[uuid.UUID], Field(min_length=1, max_length=200)]
    note: Note = None


class WithdrawConfirmationPayload(WriteModel):
    reason: Reason
    party_id: uuid.UUID | None = Field(default=None, description="The party who withdrew, if one did.")
    materials_missing: bool = Field(
        default=False,
        description="The court treats the application as withdrawn because materials were not supplied "
        "(民诉法解释 Art. 357).",
    )
    ruling_number: ShortText | None = Field(
        default=None,
        description="Once the court has accepted the application, the withdrawal is its ruling (裁定准许撤回, "
        "民诉法解释 Art. 357): the court gives the ruling's number and date, and only the court closes "
        "the request so; before acceptance there is no ruling.",
    )
    ruled_on: Day | None = Field(default=None, description="The ruling's date, with `ruling_number`.")


class RecordPerformancePayload(WriteModel):
    performed_on: Day = Field(description="The day the last obligation was performed.")
    note: Note = None


class ConfirmPayload(WriteModel):
    ruling_number: ShortText = Field(description="The ruling (民事裁定书) number.")
    ruled_on: Day
    note: Note = None


class RejectPayload(WriteModel):
    ground: RejectionGround
    ruling_number: ShortText
    ruled_on: Day
    note: Note = None


class NotAcceptPayload(WriteModel):
    reason_code: NotAcceptedReason | ReferralNotAcceptedReason = Field(
        description=NOT_ACCEPTED_REASONS_DESCRIPTION
    )
    notice_number: NoticeNumber = None
    note: Note = None


class RemediatePayload(WriteModel):
    reason: Reason


class ReferArbitrationPayload(WriteModel):
    commission_id: uuid.UUID
    arbitration_agreement: Annotated[
        str | None,
        Field(
            max_length=500, description="The written arbitration agreement (clause or document reference)."
        ),
    ] = None
    claims: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=5000,
            description="仲裁请求: what the applicant asks the commission to decide, with the facts and "
            "reasons the referral letter states (劳动争议调解仲裁法 Art. 28; 仲裁法 Art. 21, 23; "
            "农村土地承包经营纠纷调解仲裁法 Art. 20-21). Optional: the party's own application may "
            "state them; the dossier's checklist shows whether the referral did.",
        ),
    ] = None
    rights_known_on: Day | None = Field(
        default=None,
        description="The day the party knew or should have known of the infringement; the "
        "arbitration limitation runs from it: labour 1 year (劳动争议调解仲裁法 Art. 27), rural land "
        "contracts 2 years (农村土地承包经营纠纷调解仲裁法 Art. 18).",
    )
    note: Note = None


class ReferLitigationPayload(WriteModel):
    court_id: uuid.UUID
    claims: Annotated[str, Field(min_length=1, max_length=5000, description="诉讼请求")]
    note: Note = None


class RecordOutcomePayload(WriteModel):
    outcome: ReferralOutcome = Field(description=OUTCOMES_DESCRIPTION)
    reference_number: ShortText
    decided_on: Day
    note: Note = None


class ClosePayload(WriteModel):
    reason: Reason | None = Field(
        default=None,
        description="Why the case is closed; required from confirmation_rejected, where the parties "
        "took the refused agreement no further (guard `reason_given`).",
    )
    note: Note = None


class FollowUpIn(WriteModel):
    contact_method: ContactMethod
    satisfaction: Annotated[int, Field(ge=1, le=5)]
    agreement_performed: bool | None = None
    notes: Note = None


class ArchivePayload(WriteModel):
    """Archive after the follow-up visit. The visit is normally recorded on its task first
    (`POST /v1/follow-ups/{id}/visit`); it may instead come with this request, as a result or as
    the reason no visit was possible (guard `follow_up_visit_recorded`). That is taken only while
    the visit is still open: a visit already recorded, made or impossible, stands with its
    satisfaction rating (人民调解法 Art. 27)."""

    model_config = ConfigDict(
        json_schema_extra={
            "not": {
                "required": ["follow_up", "visit_impossible_reason"],
                "properties": {
                    "follow_up": {"type": "object"},
                    "visit_impossible_reason": {"type": "string"},
                },
            }
        }
    )

    follow_up: FollowUpIn | None = None
    visit_impossible_reason: Annotated[str | None, Field(min_length=1, max_length=2000)] = None
    note: Note = None

    @model_validator(mode="after")
    def _visit_or_reason(self) -> Self:
        if self.follow_up is not None and self.visit_impossible_reason is not None:
            raise at_field(
                "visit_impossible_reason",
                "follow_up_conflict",
                Text(
                    "回访结果与无法回访的原因只能二者选一",
                    "Give either a follow-up result or why no visit was possible, not both",
                ),
            )
        return self


ACTION_PAYLOADS: dict[str, type[WriteModel]] = {
    "accept": AcceptPayload,
    "decline": DeclinePayload,
    "assign": AssignPayload,
    "sign_for": SignForPayload,
    "return": ReturnPayload,
    "transfer": TransferPayload,
    "escalate": EscalatePayload,
    "withdraw": WithdrawPayload,
    "agree": AgreePayload,
    "fail": FailPayload,
    "request_confirmation": RequestConfirmationPayload,
    "withdraw_confirmation": WithdrawConfirmationPayload,
    "record_performance": RecordPerformancePayload,
    "confirm": ConfirmPayload,
    "reject": RejectPayload,
    "not_accept": NotAcceptPayload,
    "remediate": RemediatePayload,
    "refer_arbitration": ReferArbitrationPayload,
    "refer_litigation": ReferLitigationPayload,
    "record_outcome": RecordOutcomePayload,
    "close": ClosePayload,
    "archive": ArchivePayload,
}
