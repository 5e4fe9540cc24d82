"""Request and response shapes of the body registry. Write schemas forbid unknown fields."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from mediation.bodies.models import BodyKind
from mediation.core.i18n import Text
from mediation.core.schemas import DomainValueError, WriteModel
from mediation.disputes.enums import Category, IdType, Tier
from mediation.disputes.identity import at_field, normalise_id_number, region_prefix
from mediation.disputes.schemas import NON_BLANK_TEXT, NON_NULL_ID, RegionCode, given, when, without_null

Categories = Annotated[
    list[Category], Field(max_length=len(Category), json_schema_extra={"uniqueItems": True})
]
Capacity = Annotated[int, Field(ge=1, le=100_000, description="Active cases it can carry at once.")]
Jurisdiction = Annotated[
    list[RegionCode],
    Field(
        min_length=1,
        max_length=200,
        description="GB/T 2260 codes it covers; a county code covers its towns and villages. "
        "Defaults to the body's own region.",
    ),
]


def _unique(values: list[Category] | None) -> list[Category] | None:
    if values is not None and len(set(values)) != len(values):
        raise DomainValueError("duplicate_category", Text("纠纷类型重复", "A category is listed twice"))
    return values


class _Write(WriteModel):
    # The registry keeps names and descriptions as sent (no trimming); the rest is WriteModel's.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


def not_null(value: Any, info: ValidationInfo) -> Any:
    """A patch leaves out what it does not change; null would clear a column that must hold a value."""
    if value is None:
        raise DomainValueError(
            "null_not_allowed",
            Text(
                f"{info.field_name} 不能为 null; 不修改时请省略该字段",
                f"{info.field_name} cannot be null; leave it out to keep it as it is",
            ),
        )
    return value


class BodyCreate(_Write):
    name: Annotated[str, Field(min_length=2, max_length=200)]
    kind: BodyKind
    tier: Tier
    region_code: RegionCode
    jurisdiction: Jurisdiction | None = None
    categories: Categories = Field(default=[], description="Categories it takes; empty: every category.")
    capacity: Capacity = 30
    address: Annotated[str | None, Field(max_length=200)] = None
    contact_phone: Annotated[str | None, Field(max_length=40)] = None
    description: Annotated[str | None, Field(max_length=2000)] = None

    _categories = field_validator("categories")(_unique)


# What a body patch may leave out but never clear: each is a column that always holds a value.
BODY_NOT_NULL = frozenset({"name", "tier", "region_code", "categories", "capacity", "active"})


class BodyPatch(_Write):
    """Any subset. A body's own administrator may change its profile (categories, capacity,
    contact, description); kind, tier, region, jurisdiction and working status are the registry's."""

    model_config = ConfigDict(
        json_schema_extra=without_null(
            BODY_NOT_NULL, when("active", [False], given("suspended_reason", NON_BLANK_TEXT))
        )
    )

    name: Annotated[str | None, Field(min_length=2, max_length=200)] = None
    tier: Tier | None = None
    region_code: RegionCode | None = None
    jurisdiction: Jurisdiction | None = None
    categories: Categories | None = None
    capacity: Capacity | None = None
    address: Annotated[str | None, Field(max_length=200)] = None
    contact_phone: Annotated[str | None, Field(max_length=40)] = None
    description: Annotated[str | None, Field(max_length=2000)] = None
    active: bool | None = Field(
        default=None, description="false suspends the body: triage stops offering it."
    )
    suspended_reason: Annotated[str | None, Field(max_length=2000)] = None

    _categories = field_validator("categories")(_unique)
    _required = field_validator(*BODY_NOT_NULL)(not_null)

    @model_validator(mode="after")
    def _suspension_has_reason(self) -> Self:
        if self.active is False and not self.suspended_reason:
            raise at_field(
                "suspended_reason",
                "suspended_reason_required",
                Text("暂停工作须说明原因", "Give suspended_reason when suspending a body"),
            )
        return self


PROFILE_FIELDS = frozenset({"categories", "capacity", "address", "contact_phone", "description"})


class BodyOut(BaseModel):
    id: uuid.UUID
    name: str
    kind: BodyKind
    tier: str
    region_code: str
    jurisdiction: list[str] = Field(
        description="Region prefixes it covers (330681 = the county and all in it)."
    )
    categories: list[str]
    capacity: int
    active_cases: int = Field(description="Cases assigned to it or in mediation now.")
    active: bool
    suspended_reason: str | None
    address: str | None
    contact_phone: str | None
    description: str | None
    version: int
    created_at: datetime
    updated_at: datetime | None


def jurisdiction_prefixes(codes: list[str]) -> list[str]:
    return sorted({region_prefix(code) for code in codes})


class MediatorIn(_Write):
    name: Annotated[str, Field(min_length=1, max_length=100)]
    title: Annotated[str | None, Field(max_length=60)] = None
    specialties: Categories = []

    _specialties = field_validator("specialties")(_unique)


MEDIATOR_NOT_NULL = frozenset({"name", "specialties", "active"})


class MediatorPatch(_Write):
    model_config = ConfigDict(json_schema_extra=without_null(MEDIATOR_NOT_NULL))

    name: Annotated[str | None, Field(min_length=1, max_length=100)] = None
    title: Annotated[str | None, Field(max_length=60)] = None
    specialties: Categories | None = None
    active: bool | None = None

    _specialties = field_validator("specialties")(_unique)
    _required = field_validator(*MEDIATOR_NOT_NULL)(not_null)


class MediatorOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    body_id: uuid.UUID
    name: str
    title: str | None
    specialties: list[str]
    active: bool
    version: int
    created_at: datetime
    updated_at: datetime | None


class ConflictIn(_Write):
    """A declared relation with a person (by ID number) or with one case."""

    model_config = ConfigDict(
        json_schema_extra={"anyOf": [given("id_number", NON_BLANK_TEXT), given("dispute_id", NON_NULL_ID)]}
    )

    relation: Annotated[str, Field(min_length=1, max_length=200, examples=["申请人的表兄"])]
    person_name: Annotated[str | None, Field(max_length=100)] = None
    id_type: IdType = IdType.resident_id
    id_number: Annotated[str | None, Field(max_length=40)] = None
    dispute_id: uuid.UUID | None = None

    @field_validator("id_number")
    @classmethod
    def _check_id_number(cls, value: str | None, info: ValidationInfo) -> str | None:
        if not value:
            return None
        return normalise_id_number(info.data.get("id_type", IdType.resident_id), value)

    @model_validator(mode="after")
    def _names_someone(self) -> Self:
        if self.id_number is None and self.dispute_id is None:
            raise DomainValueError(
                "conflict_target_missing",
                Text(
                    "须填写利害关系人的证件号码或相关案件",
                    "Give the related person's id_number or the dispute_id",
                ),
            )
        return self


class ConflictOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    mediator_id: uuid.UUID
    dispute_id: uuid.UUID | None
    person_name: str | None
    id_number_masked: str | None
    relation: str
    declared_by: str
    declared_at: datetime
