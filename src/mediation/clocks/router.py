"""HTTP API for the case clocks, their rules and the legal calendar under /v1."""

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response
from pydantic import BaseModel
from sqlalchemy import event

from mediation.agreements.router import CHANGES
from mediation.clocks import calendar, engine
from mediation.clocks.actions import ClockActions
from mediation.clocks.models import CaseClock
from mediation.clocks.rules import ClockName, ClockRule, Unit
from mediation.clocks.schemas import (
    CalendarIn,
    CalendarOut,
    ClockExtensionIn,
    ClockOut,
    DeadlineOut,
    PauseIn,
    ResumeIn,
)
from mediation.core import legal_time
from mediation.core.db import UnitOfWorkRoute, session_of
from mediation.core.errors import (
    Conflict,
    NotFound,
    ValidationFailed,
    problem_responses,
)
from mediation.core.http import sends
from mediation.core.i18n import Text
from mediation.core.idempotency import run_idempotent
from mediation.core.principal import Permission, Principal
from mediation.disputes.router import (
    IdempotencyKey,
    IfMatch,
    Reader,
    Service,
    Writer,
    dispute_response,
    service,
)
from mediation.disputes.schemas import Day
from mediation.disputes.service import DisputeService
from mediation.identity.auth import authenticate, permission

router = APIRouter(prefix="/v1", route_class=UnitOfWorkRoute, tags=["clocks"])


async def actions(svc: Annotated[DisputeService, Depends(service)]) -> ClockActions:
    return ClockActions(svc)


Actions = Annotated[ClockActions, Depends(actions)]


def clock_out(clock: CaseClock, now: datetime) -> ClockOut:
    remaining = None
    if clock.stopped_at is None:
        remaining = int((clock.due_at - (clock.paused_at or now)).total_seconds())
    fields = ClockOut.model_fields.keys() - {"remaining_seconds"}
    return ClockOut.model_validate({**{f: getattr(clock, f) for f in fields}, "remaining_seconds": remaining})


@router.get(
    "/disputes/{dispute_id}/clocks",
    response_model=list[ClockOut],
    summary="案件时限 The case's deadlines, running and past",
    description="Each clock with its rule and source, due time, level, pauses and extensions (history).",
    responses=problem_responses(NotFound),
)
async def list_clocks(dispute_id: uuid.UUID, principal: Reader, svc: Service) -> list[ClockOut]:
    await svc.get(dispute_id, principal)
    now = svc.clock.now()
    return [clock_out(c, now) for c in await svc.clocks.of_case(dispute_id)]


def _change_endpoint(operation: str, schema: type[BaseModel]) -> Any:
    """One POST per clock change; each takes the case's ETag, answers with the case's new one, lands
    on the timeline and in the event feed, and may be retried with an Idempotency-Key."""

    async def endpoint(
        request: Request,
        dispute_id: uuid.UUID,
        name: ClockName,
        data: Annotated[schema, Body()],  # type: ignore[valid-type]
        principal: Writer,
        svc: Actions,
        if_match: IfMatch = None,
        idempotency_key: IdempotencyKey = None,
    ) -> Response:
        async def work() -> Response:
            dispute, clock = await getattr(svc, operation)(dispute_id, name, data, principal, if_match)
            return dispute_response(clock_out(clock, svc.disputes.clock.now()), dispute.version)

        return await run_idempotent(request, principal, idempotency_key, work)

    endpoint.__name__ = f"{operation}_clock"
    return endpoint


STEPS: list[tuple[str, str, type[BaseModel], str, str]] = [
    (
        "pause",
        "pause",
        PauseIn,
        "中止计时 Pause a clock while waiting on a party",
        "Only where the rule allows it (e.g. mediation periods; never a statutory window).",
    ),
    (
        "resume",
        "resume",
        ResumeIn,
        "恢复计时 Resume a paused clock",
        "The days it stood still are added to its period, in its own unit.",
    ),
    (
        "extension",
        "extend",
        ClockExtensionIn,
        "延长期限 Extend a clock",
        "Within the rule's limit, and with every party's consent where the rule asks for it "
        "(人民调解工作若干规定 Art. 33; 特邀调解规定 Art. 27).",
    ),
]
for _step, _operation, _schema, _summary, _description in STEPS:
    router.add_api_route(
        f"/disputes/{{dispute_id}}/clocks/{{name}}/{_step}",
        _change_endpoint(_operation, _schema),
        methods=["POST"],
        response_model=ClockOut,
        summary=_summary,
        description=_description
        + " The center's staff (clerk, supervisor) change the center's clocks (acceptance, sign_for, handling, "
        "follow_up_visit); the body that has the case changes its mediation clock (and the confirmation "
        "window, which no rule lets change); any other caller is refused (403 `forbidden`, naming "
        "`allowed_roles`). Needs the case's ETag; the response carries the case's new ETag.",
        responses=CHANGES | sends(200, "ETag"),
    )


@router.get(
    "/clock-rules",
    response_model=list[ClockRule],
    summary="时限规则 The deadline rules in force",
    description="Which clock runs in which state, for which cases, how long, in which unit, and from which article.",
    dependencies=[Depends(authenticate)],
    responses=problem_responses(),
)
async def clock_rules(svc: Service) -> list[ClockRule]:
    return list(svc.clocks.rules.rules)


@router.get(
    "/calendar/deadline",
    response_model=DeadlineOut,
    summary="期限计算 The last day of a period",
    description=(
        "Counts as the case clocks do: days and months end on a working day (民事诉讼法 Art. 85); working days "
        "follow the official holiday calendar with its make-up working days. A period reaching a year whose "
        "calendar is not yet published is refused (422 `calendar_unknown`) rather than guessed."
    ),
    responses=problem_responses(ValidationFailed),
    dependencies=[Depends(authenticate)],
)
async def calendar_deadline(
    start: Day,
    length: Annotated[int, Query(ge=1, le=3650)],
    unit: Unit = Unit.days,
) -> DeadlineOut:
    end = engine.period(start, length, unit)
    if not end.calendar_known:
        raise ValidationFailed.of_field(
            "start",
            "calendar_unknown",
            Text(
                "该期间涉及尚未公布节假日安排的年份, 无法准确计算",
                "The period reaches a year whose official holiday calendar is not yet published",
            ),
            location="query",
        )
    return DeadlineOut(
        start=start, length=length, unit=unit.value, last_day=end.last_day, moved_off_rest_day=end.extended
    )


Year = Annotated[int, Path(ge=2000, le=2100, description="The calendar year.")]


@router.get(
    "/calendar/years/{year}",
    response_model=CalendarOut,
    summary="节假日安排 A year's holiday schedule",
    description=(
        "The days off and the make-up working days the deadlines are counted on, and where they come from: "
        "shipped with the service, loaded by an administrator from the State Council's notice, or not "
        "published yet (periods reaching the year then count weekends and the statutory holidays only and "
        "are provisional)."
    ),
    responses=problem_responses(ValidationFailed),
    dependencies=[Depends(authenticate)],
)
async def get_calendar(request: Request, year: Year) -> CalendarOut:
    return await calendar.CalendarService(session_of(request)).year(year)


@router.put(
    "/calendar/years/{year}",
    response_model=CalendarOut,
    summary="导入节假日安排 Load a year's holiday schedule",
    description=(
        "For a year whose schedule the service does not ship yet: the days off and the weekend days worked "
        "instead, as the State Council's notice lists them. A second load replaces the first. Every process "
        "counts on it within `calendar_refresh_seconds`, and the scheduler then counts the running deadlines "
        "that reach the year again; each one moved, or settled where it was provisional, is recorded on its "
        "case (`clock_recounted`). A year that ships with the service is refused (409 `calendar_published`), "
        "unless it was loaded before the service shipped it: the loaded schedule keeps counting, so it stays "
        "correctable."
    ),
    responses=problem_responses(ValidationFailed, Conflict),
)
async def put_calendar(
    request: Request,
    year: Year,
    data: CalendarIn,
    principal: Annotated[Principal, permission(Permission.registry_manage)],
) -> CalendarOut:
    request.state.audit_object = ("calendar_year", year)
    session = session_of(request)
    service = calendar.CalendarService(session)
    await service.replace(year, data, principal, request.app.state.clock.now())
    schedules = await calendar.read_schedules(session)

    def install(_: object) -> None:  # this process counts on it from the commit on
        legal_time.install_schedules(schedules)

    event.listen(session.sync_session, "after_commit", install, once=True)
    return await service.year(year)
