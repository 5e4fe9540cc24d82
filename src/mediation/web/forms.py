"""HTML forms derived from the API's own write schemas.

A form on a page is the schema of the endpoint it stands for: its fields, types, code lists and
limits come from the Pydantic model, and what the clerk submits is validated by that same model,
so the page can neither accept what the API refuses nor refuse what it accepts. Field names are the
paths the problem details use (`parties[0].id_number`), so an error lands next to its field.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any

from fastapi import Request, Response
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData

from mediation.core.errors import IdempotencyInProgress, ProblemError, ValidationFailed, field_errors
from mediation.core.i18n import Text
from mediation.core.idempotency import run_idempotent
from mediation.core.principal import Principal
from mediation.web.labels import ENUM_LABELS, FIELD_LABELS

LONG_TEXT = frozenset({"reason", "claims", "note", "notes", "description", "visit_impossible_reason"})
# Form fields that never reach a payload (the online form's notice box is checked apart, by the page;
# `show`, whether the case page a form came from showed the full numbers, is read by the page).
CONTROL_FIELDS = frozenset({"csrf", "idempotency_key", "version", "pi_notice_read", "show"})


@dataclass
class Option:
    value: str
    label: str


@dataclass
class FormField:
    name: str
    label: str
    widget: str  # text | textarea | select | checkbox | choice3 | checkboxes | date | datetime | number | fieldset
    required: bool
    help: str | None = None
    options: list[Option] = field(default_factory=list)
    children: list[FormField] = field(default_factory=list)
    max_length: int | None = None
    min_length: int | None = None
    pattern: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    step: str | None = None
    default: Any = None

    @property
    def dom_id(self) -> str:
        return self.dom_id_in("")

    def dom_id_in(self, form: str) -> str:
        """The field's element id. A page with several forms names each (`form`): the same field
        in two forms would otherwise share an id, and a label would focus the other form's field."""
        return field_dom_id(self.name, form)


def field_dom_id(name: str, form: str = "") -> str:
    """The element id of the field `name` in `form` (see Field.dom_id_in)."""
    return "f-" + re.sub(r"[^A-Za-z0-9_-]", "-", f"{form}-{name}" if form else name)


# A row of a repeated part of a form (`parties[0].name`, `obligations[1].amount`), and how the
# summary names the row.
_ROW_PATH = re.compile(r"([a-z_]+)\[(\d+)\](?:\.(.+))?")
ROW_NAMES = {
    "parties": "当事人",
    "add_parties": "追加当事人",
    "obligations": "履行义务",
    "attendees": "到场人员",
}


@dataclass(frozen=True)
class ErrorLink:
    """One line of a refused form's error summary: the field's name and message, and where it is."""

    href: str
    text: str


def error_links(
    errors: Mapping[str, str], form: str = "", fields: Sequence[FormField] = ()
) -> list[ErrorLink]:
    """The field errors of a refused form, each with the field's label and a link to the field;
    the form-wide message (`_form`) is shown on its own. A party row's error, or one about the
    parties as a whole, leads to the list of parties. `fields`: the form's own fields, whose
    labels (a page may name a field as its form means it: 更正理由) are the summary's."""
    labels = {f.name: f.label for f in fields} | {c.name: c.label for f in fields for c in f.children}
    links = []
    for name, message in errors.items():
        if name == "_form" or not message:
            continue
        row = _ROW_PATH.fullmatch(name)
        if name == "parties" or (row and row.group(1) == "parties" and row.group(3) is None):
            label = "当事人" if row is None else f"当事人 {int(row.group(2)) + 1}"
            links.append(ErrorLink("#parties", f"{label}: {message}"))
        elif row:
            kind, index, rest = row.groups()
            head = f"{ROW_NAMES.get(kind, FIELD_LABELS.get(kind, kind))} {int(index) + 1}"
            known = (
                labels.get(name)
                or FIELD_LABELS.get(f"{kind}.{rest}", FIELD_LABELS.get(rest.split(".")[-1], rest))
                if rest
                else None
            )
            text = f"{head} {known}: {message}" if known else f"{head}: {message}"
            links.append(ErrorLink("#" + field_dom_id(name, form), text))
        else:
            # A form may name its own fields (`<form>.<name>`): the lookup's case number is the
            # center's, not a court's.
            known = labels.get(name) or FIELD_LABELS.get(f"{form}.{name}") or FIELD_LABELS.get(name, name)
            links.append(ErrorLink("#" + field_dom_id(name, form), f"{known}: {message}"))
    return links


def _unwrap(prop: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The non-null branch of an Optional, and whether null was allowed."""
    if "anyOf" in prop:
        branches = [b for b in prop["anyOf"] if b.get("type") != "null"]
        if len(branches) == 1:
            merged = {**{k: v for k, v in prop.items() if k != "anyOf"}, **branches[0]}
            return merged, True
    return prop, False


def _resolve(prop: dict[str, Any], defs: Mapping[str, Any]) -> dict[str, Any]:
    if "$ref" in prop:
        target = defs[prop["$ref"].rsplit("/", 1)[-1]]
        return {**target, **{k: v for k, v in prop.items() if k != "$ref"}}
    return prop


def describe(
    model: type[BaseModel],
    choices: Mapping[str, Sequence[Option]] | None = None,
    *,
    prefix: str = "",
    skip: frozenset[str] = frozenset(),
) -> list[FormField]:
    """The fields of `model` as form fields; `choices` gives the options of id fields (bodies,
    courts, parties, agreements ...), which only the page's context knows."""
    schema = model.model_json_schema()
    return _fields(schema, schema.get("$defs", {}), choices or {}, prefix, skip)


def _fields(
    schema: dict[str, Any],
    defs: Mapping[str, Any],
    choices: Mapping[str, Sequence[Option]],
    prefix: str,
    skip: frozenset[str],
) -> list[FormField]:
    required = set(schema.get("required", ()))
    out = []
    for name, raw in schema.get("properties", {}).items():
        if name in skip:
            continue
        prop, nullable = _unwrap(_resolve(raw, defs))
        prop = _resolve(prop, defs)
        path = f"{prefix}{name}"
        label = FIELD_LABELS.get(
            f"{prefix.split('[')[0]}.{name}", FIELD_LABELS.get(name, prop.get("title", name))
        )
        item = FormField(
            name=path,
            label=label,
            widget="text",
            required=name in required,
            help=prop.get("description"),
            max_length=prop.get("maxLength"),
            min_length=prop.get("minLength"),
            pattern=prop.get("pattern"),
            minimum=prop.get("minimum"),
            maximum=prop.get("maximum"),
            default=prop.get("default"),
        )
        kind = prop.get("type")
        if prop.get("properties"):
            item.widget = "fieldset"
            item.children = _fields(prop, defs, choices, f"{path}.", frozenset())
        elif "enum" in prop:
            item.widget = "select"
            labels = ENUM_LABELS.get(name, {})
            item.options = [Option(str(v), labels.get(str(v), str(v))) for v in prop["enum"]]
        elif kind == "array":
            items = _resolve(prop.get("items", {}), defs)
            item.widget = "checkboxes"
            if "enum" in items:
                labels = ENUM_LABELS.get(name, {})
                item.options = [Option(str(v), labels.get(str(v), str(v))) for v in items["enum"]]
            else:
                item.options = list(choices.get(name, ()))
        elif prop.get("format") == "uuid":
            item.widget = "select" if name in choices else "text"
            item.options = list(choices.get(name, ()))
        elif prop.get("format") == "date":
            item.widget = "date"
        elif prop.get("format") == "date-time":
            item.widget = "datetime"
        elif kind == "boolean" and nullable:
            # Yes, no or not known: one checkbox could only say yes or not known, never no.
            item.widget = "choice3"
            item.required = False
            item.options = [Option("true", "是"), Option("false", "否"), Option("", "不清楚")]
        elif kind == "boolean":
            item.widget = "checkbox"
            item.required = False
        elif kind in ("integer", "number") or (
            "anyOf" not in prop and {"number", "string"} <= {b.get("type") for b in raw.get("anyOf", [])}
        ):
            item.widget = "number"
            item.step = "1" if kind == "integer" else "0.01"
        elif name in LONG_TEXT or (item.max_length or 0) > 500:
            item.widget = "textarea"
        out.append(item)
    return out


# ---- reading a submitted form ---------------------------------------------------------------------

# The most fields a page's form may send. A browser sends every input of a form, empty ones too,
# and the intake of a group case has up to 200 party rows of 8 inputs each: the framework's own
# limit (1,000) refused those as unreadable. The body's size limit still bounds the work.
MAX_FORM_FIELDS = 4_000


async def read_form(request: Request) -> FormData:
    """The form a page sent, its bytes kept on the request (the idempotency fingerprint reads them)."""
    await request.body()
    return await request.form(max_fields=MAX_FORM_FIELDS)


PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
# A row number of more digits is no row of any form, and its name is refused unread (Python will
# not even read a number of thousands of digits). How many rows a form takes is the form's to say.
INDEX_DIGITS = 18

NOT_A_NAME = Text("不是本表单的字段名", "Not a field name of this form")
CONFLICTING = Text("与同一表单中的其他字段冲突", "Conflicts with another field of the form")


def malformed(key: str, message: Text) -> ValidationFailed:
    """A field name no page sends: one that does not start with a name, or that gives a field both
    a value and fields of its own (`a=1&a.b=2`). Only a hand-made request has one; it is refused
    like any invalid field, named as it was sent (cut short)."""
    return ValidationFailed.of_field(key[:100], "malformed_field", message)


def path_of(key: str) -> list[str | int]:
    """A form field's name as its path: `parties[0].name` is ["parties", 0, "name"]."""
    parts: list[str | int] = []
    for m in PATH_PART.finditer(key):
        if m.group(1) is not None:
            parts.append(m.group(1))
        elif len(m.group(2)) > INDEX_DIGITS:
            raise malformed(key, NOT_A_NAME)
        else:
            parts.append(int(m.group(2)))
    if parts and not isinstance(parts[0], str):
        raise malformed(key, NOT_A_NAME)
    return parts


def unflatten(pairs: Sequence[tuple[str, str]], lists: frozenset[str] = frozenset()) -> dict[str, Any]:
    """`parties[0].name=...` pairs into nested data. Empty values are left out (the schema's
    defaults apply); names in `lists` collect every value given. A name that is no path, or that
    another name contradicts, is refused (`ValidationFailed`)."""
    data: dict[str, Any] = {}
    for key, value in pairs:
        if key in CONTROL_FIELDS:
            continue
        value = value.strip() if isinstance(value, str) else value
        if value == "":
            continue
        parts = path_of(key)
        if not parts:
            continue
        if not _put(data, parts, value, key in lists):
            raise malformed(key, CONFLICTING)
    compacted: dict[str, Any] = _compact(data)
    return compacted


def _put(node: dict[Any, Any], parts: list[str | int], value: str, many: bool) -> bool:
    """Put `value` at `parts`; False when what is there already says otherwise: a value where
    fields go, fields where a value goes, or numbered rows and named fields under one name."""
    for depth, here in enumerate(parts):
        if node and isinstance(here, int) != isinstance(next(iter(node)), int):
            return False
        if depth == len(parts) - 1:
            break
        child = node.setdefault(here, {})
        if not isinstance(child, dict):
            return False
        node = child
    last = parts[-1]
    there = node.get(last)
    if many:
        if there is None:
            node[last] = [value]
        elif isinstance(there, list):
            there.append(value)
        else:
            return False
    elif isinstance(there, (dict, list)):
        return False
    else:
        node[last] = value  # a plain field given twice: the last one counts
    return True


def _compact(node: Any) -> Any:
    """Numbered children (stored as dicts keyed by int) become lists in their order."""
    if isinstance(node, dict):
        if node and all(isinstance(k, int) for k in node):
            return [_compact(node[k]) for k in sorted(node)]
        return {k: _compact(v) for k, v in node.items()}
    return node


def checkbox_names(fields: Sequence[FormField]) -> tuple[frozenset[str], frozenset[str]]:
    """The names of the checkbox fields (booleans) and multi-choice fields (lists) in a form."""
    flags, lists = set(), set()
    for f in fields:
        if f.widget == "checkbox":
            flags.add(f.name)
        elif f.widget == "checkboxes":
            lists.add(f.name)
        for child in f.children:
            if child.widget == "checkbox":
                flags.add(child.name)
    return frozenset(flags), frozenset(lists)


def form_data(form: FormData, fields: Sequence[FormField]) -> dict[str, Any]:
    """A submitted form as the payload its schema expects."""
    flags, lists = checkbox_names(fields)
    pairs = [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
    data = unflatten([(k, "true" if k in flags else v) for k, v in pairs], lists)
    # A fieldset nobody filled in is absent, not an empty object the schema would then refuse.
    for f in fields:
        if f.widget == "fieldset" and f.name in data and not data[f.name]:
            del data[f.name]
    return data


def local_times(data: dict[str, Any], fields: Sequence[FormField], zone: tzinfo) -> dict[str, Any]:
    """The form's data with each moment typed into it (a `datetime` field, which a browser sends
    as the wall-clock time, without an offset) taken as the center's own time, the hour the pages
    show (`local`). A moment that names its offset, or is no moment, is left as it was, for the
    schema to take or refuse."""
    out = dict(data)
    for f in fields:
        value = out.get(f.name)
        if f.widget != "datetime" or not isinstance(value, str):
            continue
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            continue
        if moment.tzinfo is None:
            out[f.name] = moment.replace(tzinfo=zone).isoformat()
    return out


# ---- a form sent twice ---------------------------------------------------------------------------

# How long a second submission of a form waits between looks at the first one's outcome, and
# how long in all before it shows the refusal.
RETRY_PAUSE_SECONDS = 0.2
MAX_WAIT_SECONDS = 10.0


async def run_once(
    request: Request,
    principal: Principal,
    key: str | None,
    work: Callable[[], Awaitable[Response]],
    *,
    content: str | None = None,
) -> Response:
    """`run_idempotent` for a form: a double click, or a browser sending the form again, while the
    first submission is still at work waits for its outcome (at most as long as the key stays
    locked) and replays it. The API answers such a request 409 and its client retries; a person at a
    browser would see only a refusal, and never the receipt with the case number and the query code
    the first submission made, nor the case as the action left it. `content`: what the key stands
    for when not the body (an upload's file and fields, see `run_idempotent`)."""
    loop = asyncio.get_running_loop()
    # The wait holds this process's turn to write: bounded well below the key's lock, which a
    # process that died holding it keeps for its whole length.
    give_up = loop.time() + min(request.app.state.settings.idempotency_lock_seconds, MAX_WAIT_SECONDS)
    while True:
        try:
            return await run_idempotent(request, principal, key, work, content=content)
        except IdempotencyInProgress:
            if loop.time() + RETRY_PAUSE_SECONDS > give_up:
                raise
        await asyncio.sleep(RETRY_PAUSE_SECONDS)


def errors_of(exc: ValidationError | ProblemError) -> dict[str, str]:
    """Field path -> message, in the request's language, from either kind of refusal."""
    if isinstance(exc, ValidationError):
        raw = exc.errors()
        found = field_errors([{**e, "loc": ("body", *e["loc"])} for e in raw])
        for detail, shown in zip(raw, found, strict=True):
            # A form sends a field left blank as empty text: it was not filled in, not too short.
            if detail["type"] == "string_too_short" and not str(detail.get("input") or "").strip():
                shown["message"] = "此项为必填项"
    else:
        found = list(exc.extensions.get("errors", []))
    out: dict[str, str] = {}
    for e in found:
        name = e.get("field") or "_form"
        if name == "body":
            name = "_form"
        out.setdefault(str(name), str(e.get("message", "")))
    return out


def with_stray_on_top(errors: dict[str, str], shown: set[str]) -> dict[str, str]:
    """The errors, with those of fields the form does not show gathered at its top (`_form`): a
    refusal never comes back as a form with nothing marked on it."""
    stray = [
        f"{FIELD_LABELS.get(name, name)}: {text}"
        for name, text in errors.items()
        if name != "_form" and name not in shown
    ]
    if not stray:
        return errors
    return {**errors, "_form": "; ".join(filter(None, [errors.get("_form"), *stray]))}


_FIELD_IN_TEXT = re.compile(r"\(([a-z_]+)\)")
# Codes a refusal may quote beside a field's name: the basis a court was chosen on, a reason.
_CODES_IN_TEXT = ("basis", "reason_code", "ground", "advice", "handoff_kind", "form", "method")


def name_fields(message: str) -> str:
    """A message that names a field by its API name, "(override_reason)", or quotes a code,
    "(party_domicile)", as the page names them."""

    def named(m: re.Match[str]) -> str:
        code = m.group(1)
        known = FIELD_LABELS.get(code) or next(
            (ENUM_LABELS[kind][code] for kind in _CODES_IN_TEXT if code in ENUM_LABELS[kind]), code
        )
        return f"({known})"

    return _FIELD_IN_TEXT.sub(named, message)
