"""The base of every request body the service reads.

Text is trimmed before it is checked and kept: a clerk's pasted "  张三 " is stored as "张三", and a
value of spaces is too short. A longest length, though, holds for the text as it was sent, because
that is what the contract states (`maxLength`) and what a client builds against: 510 characters
of which ten are trailing spaces are refused, not trimmed to fit. (Pydantic trims before it checks
either bound.) And no text may hold the NUL character (U+0000), which PostgreSQL cannot store: it
is refused with the field named, where it would otherwise fail the write.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from decimal import Decimal
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from annotated_types import MaxLen
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import InitErrorDetails, PydanticCustomError

from mediation.core.i18n import Text


class DomainValueError(ValueError):
    """A ValueError whose message is a Text and whose `code` is a stable identifier: a field's
    problem detail gives the code and the message in the request's language (core.errors)."""

    def __init__(self, code: str, message: Text) -> None:
        super().__init__(message)
        self.code = code


class WriteModel(BaseModel):
    """A request body: unknown fields are refused, so a client can never bind `status`, `version`
    or any other internal field; text is trimmed, within the longest length as sent."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_longer_than_stated_as_sent(cls, value: Any, info: ValidationInfo) -> Any:
        if info.field_name is None:
            return value
        if _is_flag(cls, info.field_name) and not _reads_as_flag(value):
            # JSON's true and false only (and the pages' "true"/"false"): 0, 1, "yes" or "0" are
            # another type, refused as the contract says, not read as a yes or a no.
            raise PydanticCustomError("bool_type", "Input should be a valid boolean")
        if _holds_nul(value, deep=not _checks_itself(cls, info.field_name)):
            raise PydanticCustomError("null_character", "Text may not contain the NUL character (U+0000)")
        text_limit, item_limit = _limits(cls, info.field_name)
        if isinstance(value, str) and text_limit is not None and len(value) > text_limit:
            raise _too_long(text_limit)
        if isinstance(value, list) and item_limit is not None:
            # Each item too long named by its place in the list (`terms[3]`), as Pydantic names it.
            errors = [
                InitErrorDetails(type=_too_long(item_limit), loc=(n,), input=item)
                for n, item in enumerate(value)
                if isinstance(item, str) and len(item) > item_limit
            ]
            if errors:
                raise ValidationError.from_exception_data(cls.__name__, errors)
        return value


@functools.cache
def _is_flag(model: type[BaseModel], name: str) -> bool:
    """Whether the field is a yes or no (`bool`, or `bool | None`)."""
    return _unwrapped(model.model_fields[name].annotation) is bool


def _reads_as_flag(value: Any) -> bool:
    return value is None or isinstance(value, bool) or value in ("true", "false")


def _holds_nul(value: Any, *, deep: bool) -> bool:
    """Whether a string in the value holds U+0000: in its lists and objects too when `deep` (a
    field whose objects are request models checks its own strings, and names them exactly)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list | tuple):
        return any(_holds_nul(item, deep=deep) for item in value if deep or isinstance(item, str))
    if deep and isinstance(value, dict):
        return any(_holds_nul(k, deep=True) or _holds_nul(v, deep=True) for k, v in value.items())
    return False


@functools.cache
def _checks_itself(model: type[BaseModel], name: str) -> bool:
    """Whether the field holds request models (one, or a list of them), which check their own text."""
    annotation = _unwrapped(model.model_fields[name].annotation)
    if get_origin(annotation) is list:
        annotation = _unwrapped((get_args(annotation) or (Any,))[0])
    return isinstance(annotation, type) and issubclass(annotation, WriteModel)


def _unwrapped(annotation: Any) -> Any:
    """`X | None` as X."""
    if get_origin(annotation) in (Union, UnionType):
        return next((a for a in get_args(annotation) if a is not type(None)), annotation)
    return annotation


def _too_long(limit: int) -> PydanticCustomError:
    """The same error, and so the same problem detail, as Pydantic's own check."""
    return PydanticCustomError(
        "string_too_long", "String should have at most {max_length} characters", {"max_length": limit}
    )


@functools.cache
def _limits(model: type[BaseModel], name: str) -> tuple[int | None, int | None]:
    """The field's longest text, and the longest text of each item of a list field."""
    field = model.model_fields[name]
    annotation = _unwrapped(field.annotation)  # `list[...] | None` as a list
    if get_origin(annotation) is list:
        (item,) = get_args(annotation) or (Any,)
        return None, _item_max_length(item)  # a list's own maxLength counts its items
    return _max_length(field.metadata), None


def _item_max_length(item: Any) -> int | None:
    if get_origin(item) is not Annotated:
        return None
    return _max_length(m for info in get_args(item)[1:] if isinstance(info, FieldInfo) for m in info.metadata)


def _max_length(metadata: Any) -> int | None:
    return next((m.max_length for m in metadata if isinstance(m, MaxLen)), None)


_CENT = Decimal("0.01")


def _in_cents(value: Decimal | None) -> Decimal | None:
    return None if value is None else value.quantize(_CENT)


# An amount of money in yuan, as every answer gives it: "1e5" and 100000 are sent back as
# "100000.00", the same as the stored value reads, not as they came.
Yuan = AfterValidator(_in_cents)


# The moments a request may name: in the years the service keeps records for. Beyond them a time
# is a typo, and near year 1 or 9999 converting it to UTC overflows.
EARLIEST_INSTANT = datetime(1990, 1, 1, tzinfo=UTC)
LATEST_INSTANT = datetime(2100, 1, 1, tzinfo=UTC)


def _within_service_years(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise DomainValueError(
            "timezone_missing", Text("时间须带时区", "Give the time with its time zone offset")
        )
    try:
        inside = EARLIEST_INSTANT <= value.astimezone(UTC) < LATEST_INSTANT
    except OverflowError:
        inside = False
    if not inside:
        raise DomainValueError(
            "date_out_of_range", Text("时间须在 1990 年至 2099 年之间", "The time must lie in 1990-2099")
        )
    return value


Instant = Annotated[datetime, AfterValidator(_within_service_years)]
_INSTANT: TypeAdapter[datetime] = TypeAdapter(Instant)


def parse_instant(text: str) -> datetime:
    """The time an ISO 8601 text names, held to the service's years with a zone (Instant); a
    ValueError otherwise. For the times a page cursor holds: the service wrote them, and a crafted
    one near year 1 or 9999 converts to no UTC time the database takes, so it is refused as an
    invalid cursor rather than failing the query."""
    return _INSTANT.validate_python(datetime.fromisoformat(text))
