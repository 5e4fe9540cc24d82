"""Registering a dispute from a page: the window's intake form (受理登记) and the residents' online
application (网上申请). Both submit `DisputeCreate`, the API's intake schema, to
`DisputeService.register`; the page adds only the form, the receipt and the hints as one types."""

from __future__ import annotations

import functools
import json
import secrets
import uuid
from dataclasses import replace
from typing import Annotated, Any

from annotated_types import MaxLen
from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import ValidationError
from sqlalchemy import select
from starlette.datastructures import FormData

from mediation.bodies.models import Body, BodyKind
from mediation.bodies.places import code_named, named_places, place_named
from mediation.core.db import Database, session_of
from mediation.core.errors import (
    DuplicateExternalReference,
    Forbidden,
    ValidationFailed,
    field_errors,
    hinted_messages,
)
from mediation.core.i18n import Text
from mediation.core.principal import Permission, Principal, Role
from mediation.core.ratelimit import caller_network
from mediation.core.schemas import DomainValueError
from mediation.disputes import lifecycle
from mediation.disputes.enums import IdType, PartyRole
from mediation.disputes.identity import names_a_place, normalise_id_number, normalise_phone, region_prefix
from mediation.disputes.lifecycle import Status
from mediation.disputes.router import NEXT_STEP, related_out, service
from mediation.disputes.schemas import DisputeCreate, DisputeCreated, PartyIn
from mediation.disputes.service import DisputeService, ListFilters, RelatedCase
from mediation.disputes.views import Viewer
from mediation.identity.auth import client_address, identity_of
from mediation.identity.models import User
from mediation.web.forms import (
    FormField,
    Option,
    describe,
    errors_of,
    form_data,
    path_of,
    read_form,
    run_once,
    with_stray_on_top,
)
from mediation.web.rendering import WebRoute, render
from mediation.web.session import check_csrf, staff

router = APIRouter(route_class=WebRoute, include_in_schema=False)

Staff = Annotated[Principal, Depends(staff)]
Service = Annotated[DisputeService, Depends(service)]

# What a resident does not choose online: the channel is `online`, and the center judges the rest.
ONLINE_SKIP = frozenset(
    {
        "channel",
        "external_reference",
        "severity",
        "complexity",
        "is_risk",
        "inviting_court_id",
        "court_stage",
        "court_case_number",
        "parties",
        "applied_on",  # applied online, on the day the center registers it
    }
)
WINDOW_SKIP = frozenset({"parties"})
DEFAULT_PARTY_ROLES = ("applicant", "respondent")
# As many party rows as the intake schema takes parties, numbered from 0.
MAX_PARTIES = next(
    m.max_length for m in DisputeCreate.model_fields["parties"].metadata if isinstance(m, MaxLen)
)
FIRST_ROW = "parties[0]."


@functools.cache
def _first_party_row() -> tuple[FormField, ...]:
    """PartyIn's fields, described once: every row is the same but for its number."""
    return tuple(describe(PartyIn, prefix=FIRST_ROW))


def _numbered(field: FormField, prefix: str) -> FormField:
    return replace(
        field,
        name=prefix + field.name.removeprefix(FIRST_ROW),
        children=[_numbered(child, prefix) for child in field.children],
    )


def party_fields(index: int, rows: int = 0) -> list[FormField]:
    """The fields of the party row `index` of a form of `rows` rows: whom an agent acts for is
    chosen among the rows, by their place as the form numbers them (当事人 1 is place 0, as
    `PartyIn.represents` counts; app.js keeps the choices to the rows there are)."""
    return [_choosing_among(_numbered(f, f"parties[{index}]."), rows) for f in _first_party_row()]


def _choosing_among(field: FormField, rows: int) -> FormField:
    if not field.name.endswith(".represents"):
        return field
    return replace(field, widget="select", options=[Option(str(n), f"当事人 {n + 1}") for n in range(rows)])


def case_fields(skip: frozenset[str], courts: list[Body]) -> list[FormField]:
    choices = {"inviting_court_id": [Option(str(c.id), c.name) for c in courts]}
    return describe(DisputeCreate, choices, skip=skip)


def party_rows(values: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The party rows of a form's values, at most as many as the schema takes. Only rows count:
    `parties` sent as one text is no list of rows (as a list it drew a row per character)."""
    parties = (values or {}).get("parties")
    if not isinstance(parties, list):
        return []
    return [p for p in parties if isinstance(p, dict)][:MAX_PARTIES]


def party_count(values: dict[str, Any] | None) -> int:
    return max(len(party_rows(values)), len(DEFAULT_PARTY_ROLES))


async def _places(request: Request) -> list[Option]:
    """Region codes the registry knows, named after the bodies there, for the region fields'
    suggestions: a resident does not know the 12-digit code of their village."""
    db: Database = request.app.state.db
    async with db.reader() as session:
        places = await named_places(session)
    named: dict[str, str] = {}
    for code, place in places:
        named.setdefault(code, place)
    return [Option(code, name) for code, name in named.items()]


def _region_fields(values: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
    """The region fields of a form's values, as (where it is, its name): the case's and each party's."""
    found = [(values, "region_code")]
    found += [(party, "region_code") for party in party_rows(values)]
    return [(where, name) for where, name in found if isinstance(where.get(name), str)]


async def _with_codes(request: Request, values: dict[str, Any]) -> dict[str, Any]:
    """The form's values with a place's name typed in a region field ("枫桥镇") taken as the code of
    the one place of exactly that name the registry knows. A name several places bear, or one that
    only resembles a place's, is left for the schema to refuse, and the message then lists the
    places it may mean (`_refused`): the clerk chooses, the page does not guess."""
    typed = [(where, name) for where, name in _region_fields(values) if names_a_place(where[name])]
    if not typed:
        return values
    db: Database = request.app.state.db
    async with db.reader() as session:
        places = await named_places(session)
    for where, name in typed:
        code = code_named(places, where[name])
        if code is not None:
            where[name] = code
    return values


async def place_name(request: Request, code: str) -> str | None:
    """The place a region code stands for (`bodies.places.place_named`)."""
    db: Database = request.app.state.db
    async with db.reader() as session:
        return await place_named(session, code)


async def _courts(request: Request) -> list[Body]:
    rows = await session_of(request).scalars(
        select(Body).where(Body.kind == BodyKind.court, Body.active.is_(True)).order_by(Body.name)
    )
    return list(rows.all())


async def _form_page(
    request: Request,
    template: str,
    *,
    values: dict[str, Any] | None,
    errors: dict[str, str],
    skip: frozenset[str],
    courts: list[Body],
    status_code: int = 200,
    defaults: dict[str, Any] | None = None,
    registered: dict[str, str] | None = None,
) -> HTMLResponse:
    values = values or {**(defaults or {})}
    # Rows left empty were not parties and are gone from what was submitted: an applicant's and a
    # respondent's row are offered again whenever none of that role is left.
    parties = party_rows(values)
    roles = {p.get("role") for p in parties}
    parties += [{"role": role} for role in DEFAULT_PARTY_ROLES if role not in roles]
    values = {**values, "parties": parties}
    count = party_count(values)
    return render(
        request,
        template,
        {
            "fields": case_fields(skip, courts),
            "parties": [party_fields(i, count) for i in range(count)],
            "party_template": party_fields(999, count),
            "values": values,
            "errors": errors,
            "idempotency_key": secrets.token_urlsafe(18),
            "places": await _places(request),
            "registered": registered,
        },
        status_code,
    )


async def _refused(
    request: Request,
    template: str,
    values: dict[str, Any],
    exc: ValidationError | ValidationFailed,
    skip: frozenset[str],
) -> HTMLResponse:
    """The form again, as it was filled in, each message beside its field; nothing was saved."""
    await session_of(request).rollback()
    courts = await _courts(request) if "inviting_court_id" not in skip else []
    # The parties' list and each party as a whole have their messages shown at their rows.
    rows = range(party_count(values))
    shown = {f.name for f in case_fields(skip, [])} | {"parties"}
    shown |= {f"parties[{i}]" for i in rows} | {f.name for i in rows for f in party_fields(i)}
    errors = errors_of(exc)
    if isinstance(exc, ValidationError):
        # A place's name typed for a region's code: which code, or which places it may mean.
        raw = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]
        found = field_errors(raw)
        for position, message in (await hinted_messages(request, raw)).items():
            errors[found[position]["field"]] = message
    errors = with_stray_on_top(errors, shown)
    if isinstance(exc, ValidationError) and any(
        e["loc"] == ("parties",) and e["type"] == "too_short" for e in exc.errors()
    ):
        errors["parties"] = "请至少填写一名申请人和一名被申请人"
    return await _form_page(
        request, template, values=values, errors=errors, skip=skip, courts=courts, status_code=422
    )


async def _submitted(request: Request) -> tuple[FormData, str | None]:
    """The form sent and its idempotency key, once it is known to come from our own page."""
    form = await read_form(request)
    csrf, key = form.get("csrf"), form.get("idempotency_key")
    check_csrf(request, csrf if isinstance(csrf, str) else None)
    return form, key if isinstance(key, str) and key else None


def _values(form: FormData, skip: frozenset[str]) -> dict[str, Any]:
    """The form as the intake schema's payload. Only the party rows sent are read, and no more of
    them than the schema takes parties: a form's size, not the number a row claims, bounds the
    work, and this runs on the event loop every other request shares."""
    rows: set[int] = set()
    for key in form:
        path = path_of(key)
        if len(path) > 1 and path[0] == "parties" and isinstance(path[1], int):
            if path[1] >= MAX_PARTIES:
                raise ValidationFailed.of_field(
                    "parties",
                    "too_many_parties",
                    Text("当事人最多 {n} 名", "At most {n} parties").format(n=MAX_PARTIES),
                )
            rows.add(path[1])
    fields = case_fields(skip, []) + [f for i in sorted(rows) for f in party_fields(i)]
    data = form_data(form, fields)
    if isinstance(data.get("parties"), list):
        # Rows the clerk added and left empty are not parties.
        kept = [not isinstance(p, dict) or bool(set(p) - ROW_DEFAULTS) for p in data["parties"]]
        data["parties"] = [p for p, keep in zip(data["parties"], kept, strict=True) if keep]
        _count_among_parties(data["parties"], kept)
    return data


# What a row the clerk added and left empty still sends: its choices' defaults.
ROW_DEFAULTS = frozenset({"role", "kind", "id_type"})


def _count_among_parties(parties: list[Any], kept: list[bool]) -> None:
    """An agent's party chosen among the rows as the page numbers them (`party_fields`), counted
    among the parties once the empty rows are left out (`PartyIn.represents`). A row left empty is
    no party: choosing it names none (the schema refuses a place past the last party)."""
    places: list[int | None] = []
    for keep in kept:
        places.append(sum(1 for k in places if k is not None) if keep else None)
    for party in parties:
        chosen = party.get("represents") if isinstance(party, dict) else None
        if not isinstance(chosen, str) or not (chosen.isascii() and chosen.isdigit()) or len(chosen) > 6:
            continue  # none, or not a row: the schema says what is wrong with it
        row = int(chosen)
        place = places[row] if row < len(places) else None
        party["represents"] = str(place if place is not None else len(parties))


def refuse_unknown(data: dict[str, Any], skip: frozenset[str]) -> None:
    """A field this form does not show is refused, like an unknown field in the API: the online
    form cannot set what the center decides (risk, severity, channel ...)."""
    shown = {f.name for f in case_fields(skip, [])} | {"parties"}
    unknown = sorted(set(data) - shown)
    if unknown:
        message = Text("此表单不接受字段: {f}", "This form does not take: {f}").format(f=", ".join(unknown))
        raise ValidationFailed(
            message,
            errors=[
                {"field": "_form", "location": "body", "code": "extra_forbidden", "message": message.get()}
            ],
        )


async def _receipt(
    request: Request, created: dict[str, Any], principal: Principal, *, online: bool, replayed: bool
) -> HTMLResponse:
    center = (
        await session_of(request).get(Body, principal.organisation_id) if principal.organisation_id else None
    )
    return render(
        request,
        "receipt.html",
        {
            "case": created,
            "online": online,
            "replayed": replayed,
            "next_step": NEXT_STEP[Status(created["status"])].get(),
            **issuer(center),
            # The clerk at the window registered it (a form sent twice is answered to the same
            # account: its one-time key is the caller's); an online application has no clerk.
            "clerk": None if online else principal.name,
        },
    )


def issuer(center: Body | None) -> dict[str, Any]:
    """What a printed paper says of the center that issues it: its name above the seal, and the
    telephone a party calls it on (the organisation's own `contact_phone`; no line without one)."""
    return {
        "center": center.name if center else None,
        "center_phone": center.contact_phone if center else None,
    }


async def staff_name(request: Request, actor_id: str | None) -> str | None:
    """The 经办人 a printed paper names: the display name of the account `actor_id` is (a case's
    `created_by`, a timeline entry's actor), as it is now. None for what no member of staff did: an
    online application, a machine client's key. A read of its own, as `center_for`'s."""
    try:
        user_id = uuid.UUID(actor_id or "")
    except ValueError:
        return None
    db: Database = request.app.state.db
    async with db.reader() as session:
        return await session.scalar(select(User.display_name).where(User.id == user_id))


async def _register(
    request: Request,
    svc: DisputeService,
    principal: Principal,
    data: DisputeCreate,
    key: str | None,
    *,
    with_related: bool = True,
) -> tuple[dict[str, Any], bool]:
    view = Viewer(principal, identity_of(request).cipher, request.app.state.clock.now())
    request.state.pii_reads = view.pii_reads

    async def work() -> JSONResponse:
        # The window sees earlier cases of the same people; an anonymous applicant never does.
        earlier: list[RelatedCase] = []
        dispute, query_code = await svc.register(data, principal, related=earlier if with_related else None)
        related = [related_out(r) for r in earlier]
        body = DisputeCreated(
            **view.dispute(dispute).model_dump(), query_code=query_code, related_cases=related
        )
        return JSONResponse(jsonable_encoder(body), status_code=201)

    response = await run_once(request, principal, key, work)
    created = json.loads(bytes(response.body))
    request.state.audit_object = ("dispute", created["id"])
    return created, response.headers.get("Idempotent-Replayed") == "true"


# ---- the window --------------------------------------------------------------------------------


@router.get("/intake", response_class=HTMLResponse)
async def intake_form(request: Request, principal: Staff) -> HTMLResponse:
    _only_center(principal)
    defaults = {"region_code": (principal.region or "").ljust(6, "0")[:6] if principal.region else ""}
    return await _form_page(
        request,
        "intake.html",
        values=None,
        errors={},
        skip=WINDOW_SKIP,
        courts=await _courts(request),
        defaults=defaults,
    )


def _only_center(principal: Principal) -> None:
    if principal.role not in lifecycle.CENTER:
        raise Forbidden(Text("只有中心窗口可以登记纠纷", "Only the center registers disputes"))


@router.post("/intake", response_class=HTMLResponse)
async def intake_submit(request: Request, principal: Staff, svc: Service) -> HTMLResponse:
    _only_center(principal)
    form, key = await _submitted(request)
    values: dict[str, Any] = {}
    try:
        values = await _with_codes(request, _values(form, WINDOW_SKIP))
        refuse_unknown(values, WINDOW_SKIP)
        data = DisputeCreate.model_validate(values)
        created, replayed = await _register(request, svc, principal, data, key)
    except (ValidationError, ValidationFailed) as exc:
        return await _refused(request, "intake.html", values, exc, WINDOW_SKIP)
    except DuplicateExternalReference as exc:
        return await _already_registered(request, values, exc)
    return await _receipt(request, created, principal, online=False, replayed=replayed)


async def _already_registered(
    request: Request, values: dict[str, Any], exc: DuplicateExternalReference
) -> HTMLResponse:
    """The form again, as it was filled in, saying the referral is already a case, with a link to it
    when it is one the clerk may open (another center's is not named): the clerk goes on with that
    case instead of registering it twice."""
    await session_of(request).rollback()
    message = exc.detail.get() if isinstance(exc.detail, Text) else str(exc.detail or exc.title.get())
    case_id, number = exc.extensions.get("dispute_id"), exc.extensions.get("case_number")
    registered = {"id": str(case_id), "case_number": str(number)} if case_id and number else None
    return await _form_page(
        request,
        "intake.html",
        values=values,
        errors={"external_reference": message},
        skip=WINDOW_SKIP,
        courts=await _courts(request),
        status_code=409,
        registered=registered,
    )


@router.post("/intake/check", response_class=HTMLResponse)
async def check_party_number(
    request: Request,
    principal: Staff,
    field: Annotated[str, Form(pattern=r"^(id_number|phone)$")],
    value: Annotated[str, Form(max_length=40)] = "",
    id_type: Annotated[str, Form(max_length=40)] = "",
) -> HTMLResponse:
    """The message under an ID or phone field as it is typed: the intake schema's own checks."""
    return _check(request, field, value, id_type)


def _check(request: Request, field: str, value: str, id_type: str) -> HTMLResponse:
    message, ok = "", False
    if value.strip():
        try:
            if field == "id_number":
                if not id_type:
                    raise DomainValueError(
                        "id_type_missing", Text("填写证件号码时须注明证件类型", "Give id_type with id_number")
                    )
                normalise_id_number(IdType(id_type), value)
            else:
                normalise_phone(value)
            ok = True
        except DomainValueError as exc:
            message = exc.args[0].get() if isinstance(exc.args[0], Text) else str(exc)
        except ValueError:
            message = "证件类型无效"
    return render(request, "_field_check.html", {"message": message, "ok": ok})


@router.post("/intake/related", response_class=HTMLResponse)
async def related_hint(request: Request, principal: Staff, svc: Service) -> HTMLResponse:
    """Earlier cases of the people being registered (by ID or phone number): a repeat, or the same
    dispute arriving by another channel, is seen before it is registered twice."""
    form = await read_form(request)
    token = form.get("csrf")
    check_csrf(request, token if isinstance(token, str) else None)
    # A search by ID or phone number is the party search of POST /v1/disputes/search-by-party: the
    # same least-privilege rule (pii:read) and the same processing record (个人信息保护法 Art. 51,
    # 55-56). Without it, a role that sees these numbers masked could learn whose they are, and
    # which cases they are in, by typing guesses into the form.
    if not principal.can(Permission.pii_read):
        return render(request, "_related.html", {"cases": []})
    # One search per number, read only from the party rows the form can have: a form of thousands
    # of phone fields would otherwise be thousands of searches.
    wanted: dict[tuple[str, str], None] = {}
    for key, raw in form.multi_items():
        if not isinstance(raw, str) or not raw.strip():
            continue
        try:
            path = path_of(key)
        except ValidationFailed:
            continue
        if len(path) != 3 or path[0] != "parties" or not isinstance(path[1], int) or path[1] >= MAX_PARTIES:
            continue
        if form.get(key.rsplit(".", 1)[0] + ".role") == PartyRole.agent:
            continue  # an agent acts for a party and relates no cases (disputes.service._SHARES_PARTY)
        if path[2] == "id_number":
            id_type = str(form.get(key.replace(".id_number", ".id_type")) or "")
            try:
                wanted[normalise_id_number(IdType(id_type), raw), "id_number"] = None
            except ValueError:
                continue
        elif path[2] == "phone":
            try:
                wanted[normalise_phone(raw), "phone"] = None
            except ValueError:
                continue
    if wanted:
        request.state.audit_reads = [("search_by_party", None, None)]
        request.state.audit_details = {"via": "intake_hint", "fields": sorted({kind for _, kind in wanted})}
    found: dict[uuid.UUID, tuple[Any, set[str]]] = {}
    for value, kind in wanted:
        rows, _ = await svc.search(ListFilters(party_index=svc.party_index(kind, value)), principal, 10, None)
        for dispute in rows:
            found.setdefault(dispute.id, (dispute, set()))[1].add(kind)
    cases = sorted(found.values(), key=lambda item: item[0].created_at, reverse=True)
    return render(request, "_related.html", {"cases": cases[:10]})


# ---- online application (public) ---------------------------------------------------------------


async def center_for(request: Request, region_code: str) -> Body | None:
    """The center whose region holds the place of the dispute: it receives the application.

    A read of its own: on SQLite the request's session is a writer, and the idempotency claim that
    follows must take the write lock before the request's transaction does."""
    db: Database = request.app.state.db
    async with db.reader() as session:
        rows = await session.scalars(
            select(Body).where(Body.kind == BodyKind.mediation_center, Body.active.is_(True))
        )
        centers = list(rows.all())
    best: Body | None = None
    for center in centers:
        prefix = region_prefix(center.region_code)
        if region_code.startswith(prefix) and (
            best is None or len(prefix) > len(region_prefix(best.region_code))
        ):
            best = center
    return best


def _reachable(data: DisputeCreate) -> None:
    """An application online is answered by the center calling the applicant back (the receipt
    says so): at least one applicant leaves a telephone number. At the window the clerk has the
    resident in front of them."""
    applicants = [i for i, p in enumerate(data.parties) if p.role == PartyRole.applicant]
    if applicants and not any(data.parties[i].phone for i in applicants):
        raise ValidationFailed.of_field(
            f"parties[{applicants[0]}].phone",
            "phone_missing",
            Text("请留下申请人的联系电话, 以便中心与您联系", "Give the applicant's telephone number"),
        )


# The notice the online form shows before anything is sent (个人信息保护法 Art. 17, 30, 35): which
# version the applicant read is kept in the audit record of the application.
PI_NOTICE_VERSION = "2026-12"


def _notice_read(form: FormData) -> None:
    """The applicant confirms having read how the personal data given will be handled: the
    application carries the other side's identity and contacts too, and ID numbers are sensitive
    personal information (Art. 28), whose necessity and effect are told before they are handled
    (Art. 30). The center handles them to perform its duties in law (Art. 13 item 3, Art. 34), so
    the box records that the notice was read, not a consent the application depends on."""
    if form.get("pi_notice_read") != "yes":
        raise ValidationFailed.of_field(
            "pi_notice_read",
            "notice_not_read",
            Text(
                "请阅读个人信息处理告知, 并勾选已阅读",
                "Read the notice on how your personal information is handled and tick the box",
            ),
        )


def online_principal(center: Body) -> Principal:
    """The resident applying online: recorded as a party, within the center that receives it."""
    return Principal(
        role=Role.party,
        id="online-application",
        organisation_id=center.id,
        region=region_prefix(center.region_code),
        kind="anonymous",
        name="网上申请",
    )


@router.get("/apply", response_class=HTMLResponse)
async def apply_form(request: Request) -> HTMLResponse:
    return await _form_page(request, "apply.html", values=None, errors={}, skip=ONLINE_SKIP, courts=[])


@router.post("/apply", response_class=HTMLResponse)
async def apply_submit(request: Request, svc: Service) -> Response:
    # Anonymous: the limit per address keeps the form from being used to flood the window.
    identity_of(request).anonymous_limiter.check(f"apply:{caller_network(client_address(request))}")
    form, key = await _submitted(request)
    values: dict[str, Any] = {}
    try:
        values = await _with_codes(request, _values(form, ONLINE_SKIP))
        refuse_unknown(values, ONLINE_SKIP)
        data = DisputeCreate.model_validate({**values, "channel": "online"})
        _reachable(data)
        _notice_read(form)
        center = await center_for(request, data.region_code)
        if center is None:
            raise ValidationFailed.of_field(
                "region_code",
                "outside_region",
                Text(
                    "该地区不在本平台受理范围内, 请向当地调处中心申请", "No center of this platform covers it"
                ),
            )
        principal = online_principal(center)
        request.state.principal = principal
        request.state.audit_details = {"pi_notice": PI_NOTICE_VERSION, "pi_notice_read": True}
        created, replayed = await _register(request, svc, principal, data, key, with_related=False)
    except (ValidationError, ValidationFailed) as exc:
        # The box ticked stays ticked: the resident corrects the field refused, not the notice.
        values = {**values, "pi_notice_read": form.get("pi_notice_read")}
        return await _refused(request, "apply.html", values, exc, ONLINE_SKIP)
    return await _receipt(request, created, principal, online=True, replayed=replayed)
