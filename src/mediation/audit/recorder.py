"""Audit records for requests: every change (and every refused attempt at one), every refused
read, every sign-in, and every read that disclosed personal data unmasked (个人信息保护法 Art. 55).

Endpoints describe what they did through `request.state`:
- `principal`: set by authentication (or by sign-in once the password checked out);
- `audit_object`: `(type, id)` when the path does not already name it;
- `audit_action`: the action's name when it is not the route's (a status lookup refused during its
  case's wait, which the count of wrong codes must not read: disputes.lookup);
- `audit_details`: extra facts (never personal data);
- `audit_reads`: `(action, type, id)` of reads recorded whatever they show (a download of a
  document holding personal data), none for a HEAD, which shows no body;
- `changed_nothing`: a change that found itself made already and wrote nothing, recorded as a
  read is (its disclosures only);
- `pii_reads`: ids of the cases whose personal data the response shows unmasked; none for a HEAD
  either: the handler lists what its body would have shown, and a HEAD's is dropped unsent.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from mediation.audit.chain import AuditEntry, append
from mediation.core.db import Database, utcnow
from mediation.core.principal import Principal, Role

log = logging.getLogger(__name__)

# Path parameters that name the object a request acts on, and the object type they name.
# The object a request acted on, by its path's parameter; the innermost first (a document or a
# mediator is the object, not the case or body above it).
OBJECT_PARAMS = (
    ("document_id", "document"),
    ("party_id", "party"),
    ("dispute_id", "dispute"),
    ("handoff_id", "handoff"),
    ("alert_id", "alert"),
    ("order_id", "supervision_order"),
    ("follow_up_id", "follow_up"),
    ("key_id", "api_key"),
    ("user_id", "user"),
    ("mediator_id", "mediator"),
    ("body_id", "body"),
    ("delivery_id", "webhook_delivery"),
    ("subscription_id", "webhook_subscription"),
)
LOCATION_TYPES = {"disputes": "dispute", "api-keys": "api_key", "users": "user"}


def _outcome(status: int) -> str:
    if status < 400:
        return "success"
    if status in (401, 403, 404):
        return "denied"
    if status >= 500:
        return "error"
    return "rejected"


def _action(request: Request) -> str:
    given = getattr(request.state, "audit_action", None)
    if given:
        return str(given)
    route = request.scope.get("route")
    name = getattr(route, "name", None)
    return str(name) if name else f"{request.method} {request.url.path}"


def _object(request: Request, response: Response | None) -> tuple[str | None, str | None]:
    given = getattr(request.state, "audit_object", None)
    if given:
        return given[0], str(given[1])
    for param, kind in OBJECT_PARAMS:
        value = request.path_params.get(param)
        if value is not None and kind != "party":
            return kind, str(value)
    if response is not None and (location := response.headers.get("location")):
        parts = location.strip("/").split("/")
        if len(parts) >= 3 and parts[1] in LOCATION_TYPES:
            return LOCATION_TYPES[parts[1]], parts[2]
    return None, None


def _principal(request: Request) -> Principal:
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is not None:
        return principal
    address = request.client.host if request.client else "unknown"
    return Principal(role=Role.party, id=f"anonymous@{address}", kind="anonymous")


def _entry(request: Request, status: int, response: Response | None, action: str | None = None) -> AuditEntry:
    object_type, object_id = _object(request, response)
    details: dict[str, Any] = dict(getattr(request.state, "audit_details", None) or {})
    details.setdefault("method", request.method)
    details.setdefault("path", request.url.path)
    return AuditEntry.by(
        _principal(request),
        action or _action(request),
        _outcome(status),
        object_type=object_type,
        object_id=object_id,
        status_code=status,
        request_id=getattr(request.state, "request_id", None) or request.headers.get("x-request-id"),
        client_address=request.client.host if request.client else None,
        details=details,
    )


class GroupAppender:
    """Appends records that need a transaction of their own (reads that disclosed personal data,
    refused requests) for every request waiting at that moment at once: one journal head and one
    commit per batch instead of per request (group commit).

    Each caller still returns only once its own records are committed, and fails if that commit
    fails. While one batch commits, the next gathers; nothing waits on a timer.
    """

    def __init__(self) -> None:
        self._waiting: list[tuple[list[AuditEntry], asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def append(self, db: Database, entries: list[AuditEntry]) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((entries, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(db))
        await done

    async def _flush(self, db: Database) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            outcome: BaseException | None = None
            try:
                async with db.writer() as session, session.begin():
                    await append(session, [entry for entries, _ in batch for entry in entries], utcnow())
            except BaseException as exc:  # cancelled too: no caller may be left waiting
                outcome = exc
            for _, done in batch:
                if done.done():  # its request was cancelled meanwhile
                    continue
                if outcome is None:
                    done.set_result(None)
                else:
                    done.set_exception(
                        outcome if isinstance(outcome, Exception) else RuntimeError("audit cancelled")
                    )
            if outcome is not None and not isinstance(outcome, Exception):
                for _, done in self._waiting:
                    if not done.done():
                        done.set_exception(RuntimeError("audit cancelled"))
                self._waiting = []
                raise outcome


class ChainedRequestAuditor:
    def __init__(self) -> None:
        self._group = GroupAppender()

    async def succeeded(self, request: Request, session: AsyncSession, response: Response) -> None:
        entries = [_entry(request, response.status_code, response)]
        entries += self._pii_entries(request, response)
        await append(session, entries, utcnow())

    async def failed(self, request: Request, status: int, response: Response | None = None) -> None:
        # A refused read is worth a record (someone probing); a missing one is not (typos, links),
        # unless the endpoint asks for it (downloads of documents, which answer 404 when refused).
        refusal = status in (401, 403) or getattr(request.state, "audit_refusals", False)
        entries = []
        if request.method not in ("GET", "HEAD", "OPTIONS") or refusal:
            entries.append(_entry(request, status, None))
        # A refusal the handler answered itself can show personal data: a page refusing a change
        # shows the case again beside the reason. Recorded with the refusal, in its transaction.
        disclosed = self._disclosure(request, response) if response is not None else []
        if not entries and not disclosed:
            return
        try:
            await self._group.append(request.app.state.db, entries + disclosed)
        except Exception:
            if disclosed:
                raise  # a 503 instead: personal data is not shown unaudited
            # The refusal stands either way; the failure to record it must be visible to operators.
            log.exception("could not record a refused request in the audit trail")

    async def read(self, request: Request, response: Response) -> None:
        entries = self._pii_entries(request, response)
        if not entries:
            return
        # Raising here turns the response into a 503: personal data is not shown unaudited.
        await self._group.append(request.app.state.db, entries)

    def _pii_entries(self, request: Request, response: Response) -> list[AuditEntry]:
        entries = []
        # What a body showed (a file's content, a search's results): a HEAD's answer has none, so
        # it is no download.
        shown = [] if request.method == "HEAD" else getattr(request.state, "audit_reads", None) or []
        for action, object_type, object_id in shown:
            entry = _entry(request, response.status_code, response, action=action)
            entry.object_type, entry.object_id = object_type, object_id
            entries.append(entry)
        return [*entries, *self._disclosure(request, response)]

    def _disclosure(self, request: Request, response: Response) -> list[AuditEntry]:
        reads: list[str] = getattr(request.state, "pii_reads", None) or []
        # A HEAD ran the handler as its GET does, but its body is dropped unsent (core/http.py): what
        # the body would have shown was not disclosed and there is no read to record (个人信息保护法
        # Art. 55). A header showing a number (a file's name in Content-Disposition) was sent.
        if not reads or (request.method == "HEAD" and not getattr(request.state, "pii_in_headers", False)):
            return []
        entry = _entry(request, response.status_code, response, action="pii.read")
        # The data was shown, whatever became of the request: a refusal's page shows it too.
        entry.outcome = "success"
        entry.object_type = "dispute"
        entry.object_id = reads[0] if len(reads) == 1 else None
        entry.details = {
            "via": _action(request),
            "disputes": sorted(set(reads)),
            "fields": ["id_number", "phone"],
        }
        return [entry]


async def record_system_changes(session: AsyncSession, job: str) -> int:
    """The scheduler's changes are audited as a user's are: one record per change it made to a
    case, by the system, in the transaction that made it (before its events are numbered). A
    change is known by the event it wrote; `job` names the scheduler's task that made it."""
    from mediation.core.principal import SYSTEM
    from mediation.events.service import PENDING_KEY, TYPE_PREFIX

    entries = [
        AuditEntry.by(
            SYSTEM,
            "scheduler." + event.type.removeprefix(TYPE_PREFIX),
            object_type="dispute" if event.dispute_id else None,
            object_id=str(event.dispute_id) if event.dispute_id else None,
            details={"job": job, "event_id": str(event.id)},
        )
        for event in session.info.get(PENDING_KEY, [])
    ]
    await append(session, entries, utcnow())
    return len(entries)
