"""A court's client for the mediation center's handoff API: a starting point for integrators.

A court pulls the judicial confirmation requests (司法确认申请) and litigation referrals addressed to
it, reads each one's dossier, acknowledges acceptance with its own case number, and posts its
ruling. The service holds the legal clocks: acceptance is due within 3 days of the request, the
ruling within 15 days of acceptance (法释〔2011〕5号 Art. 4-5).

Conventions this client follows:

* Authentication: the court's API key in the ``X-API-Key`` header. A key belongs to one court,
  and the service shows that court only what is addressed to it.
* A dossier read again sends ``If-None-Match`` with the ETag of the copy the client holds: while
  nothing it shows has changed, the service answers 304 without a body (and records no read of
  the parties' data), and the client returns the copy it holds. Polling a request costs little.
* Every change sends ``If-Match`` with the handoff's current ETag. The client remembers the ETag
  of every handoff it has listed, read or changed; a change made meanwhile by someone else makes
  the service answer 412, and the caller reads the dossier again before retrying.
* Every change carries a fresh ``Idempotency-Key``. A request whose answer was lost on the
  network is retried with the same key, so the service makes the change at most once and the
  retry gets the first answer back. While the first attempt is still being worked on, the service
  answers the retry 409 ``idempotency-in-progress`` with ``Retry-After``; a busy service answers
  503 with ``Retry-After``. The client waits that long (at most ``MAX_RETRY_AFTER``) and asks
  again, until the first attempt's answer comes back or ``retry_for`` seconds have passed.
* The client waits for an answer longer than the service works on a request (30 s by default,
  then it answers 503 itself), so it does not give up on a change the service is still making.
* An answer whose response was lost for good (the process stopped, the key's first answer
  expired) may be sent again without it. The service answers an answer sent again exactly as
  recorded 200; one that differs, 409 with the answer it holds (``status_now``,
  ``target_case_number``, ``decision``, ``extended_days``, ``current_etag``, ...). The client
  compares that answer with the one it meant: the same decision (case number, ruling, reason code,
  days; a note or reason worded otherwise does not count) is its own answer that landed, and it
  returns the handoff as it stands; another is someone else's (or an earlier mind's), raised as
  ``AnswerConflict`` with ``recorded``, for a person to look at.
* Errors are RFC 9457 problem details (``application/problem+json``); they are raised as
  ``ApiProblem`` with the problem's type, code, and the legal reasons for a refusal.

Usage, to accept every pending request with a generated case number::

    MEDIATION_API_KEY=mk_... python examples/court_client.py --base-url https://mediation.example.cn

Only ``httpx`` is needed besides the standard library.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
import uuid
from collections.abc import Callable
from datetime import date
from types import TracebackType
from typing import Any

import httpx

PROBLEM_JSON = "application/problem+json"
IN_PROGRESS = "/problems/idempotency-in-progress"
MAX_RETRY_AFTER = 10.0  # seconds: never wait longer than this on one Retry-After
# The refusals of an answer because the handoff holds one already; they carry the one it holds.
ANSWERED = frozenset({"already_answered", "handoff_settled", "already_extended"})
RECORDED = (
    "status_now",
    "accepted_on",
    "target_case_number",
    "decided_on",
    "decision",
    "extended_days",
    "extension_reason",
    "current_etag",
)


class ApiProblem(Exception):
    """The service refused a request. `reasons` lists each rule that refused it, with its article."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status = status
        self.problem = problem
        self.type: str = problem.get("type", "about:blank")
        self.title: str = problem.get("title", "")
        self.detail: str | None = problem.get("detail")
        self.code: str | None = problem.get("code")
        self.reasons: list[dict[str, Any]] = problem.get("reasons") or []
        self.errors: list[dict[str, Any]] = problem.get("errors") or []
        super().__init__(self._describe())

    def _describe(self) -> str:
        text = f"{self.status} {self.type}: {self.detail or self.title}"
        if self.code:
            text += f" [{self.code}]"
        for reason in self.reasons:
            article = f" ({reason['article']})" if reason.get("article") else ""
            text += f"\n  - {reason['code']}: {reason['message']}{article}"
        for error in self.errors:
            text += f"\n  - {error.get('field')}: {error.get('message')}"
        return text


class AnswerConflict(ApiProblem):
    """The handoff holds another answer than the one sent: `recorded` is the one it holds (its
    status now, `target_case_number`, `decision`, `extended_days`, `current_etag`, ...)."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        super().__init__(status, problem)
        self.recorded: dict[str, Any] = {name: problem.get(name) for name in RECORDED}


class CourtClient:
    """The court's side of the handoff API, synchronous."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 40.0,
        retries: int = 2,
        retry_for: float = 40.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url,
            headers={"X-API-Key": api_key, "Accept": "application/json"},
            timeout=timeout,
            transport=transport,
        )
        self._retries = retries  # after a failure on the network
        self._retry_for = retry_for  # seconds of asking again while the service says to
        self._etags: dict[str, str] = {}  # handoff id -> the last ETag seen
        self._dossiers: dict[str, tuple[str, dict[str, Any]]] = {}  # handoff id -> (ETag, dossier) held

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> CourtClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # ---- reading ----------------------------------------------------------------------------------

    def list_pending(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Every request addressed to this court still awaiting its answer on acceptance, oldest
        first; `kind` narrows to "judicial_confirmation" or "litigation"."""
        params: dict[str, Any] = {"status": "pending", "limit": 100}
        if kind is not None:
            params["kind"] = kind
        items: list[dict[str, Any]] = []
        while True:
            page = self._json(self._http.get("/v1/handoffs", params=params))
            for item in page["items"]:
                self._etags[str(item["id"])] = f'"{item["version"]}"'
            items.extend(page["items"])
            if not page["next_cursor"]:
                return items
            params["cursor"] = page["next_cursor"]

    def dossier(self, handoff_id: str) -> dict[str, Any]:
        """The request with its dossier: the parties' full identity, the agreement, the mediation
        record, the document manifest and the materials checklist. Each read is audited.

        Read again, it asks with the ETag of the copy held (If-None-Match): unchanged (304), the
        copy held is returned as it was read, `case.clock.remaining_seconds` included (count it
        from `case.clock.due_at`); changed, the new one is read in full and held instead."""
        handoff_id = str(handoff_id)
        held = self._dossiers.get(handoff_id)
        headers = {"If-None-Match": held[0]} if held is not None else {}
        response = self._http.get(f"/v1/handoffs/{handoff_id}", headers=headers)
        if response.status_code == 304 and held is not None:
            # Its ETag is still the handoff's current one, by its handoff part, for the next change.
            self._etags[handoff_id] = response.headers.get("ETag", held[0])
            return copy.deepcopy(held[1])
        dossier = self._json(response)
        etag = response.headers["ETag"]
        self._etags[handoff_id] = etag
        self._dossiers[handoff_id] = (etag, copy.deepcopy(dossier))
        return dossier

    # ---- answering --------------------------------------------------------------------------------

    def accept(self, handoff_id: str, case_number: str, accepted_on: date | None = None) -> dict[str, Any]:
        """Acknowledge acceptance with the court's own case number; the decision period starts."""
        body: dict[str, Any] = {"decision": "accepted", "case_number": case_number}
        if accepted_on is not None:
            body["accepted_on"] = accepted_on.isoformat()

        def meant(recorded: dict[str, Any]) -> bool:
            return (
                recorded["accepted_on"] is not None
                and recorded["target_case_number"] == case_number
                and (accepted_on is None or recorded["accepted_on"] == accepted_on.isoformat())
            )

        return self._change(handoff_id, "acceptance", body, meant)

    def not_accept(self, handoff_id: str, reason_code: str, note: str | None = None) -> dict[str, Any]:
        """Decline to accept (e.g. reason_code "materials_missing" or "not_competent_court")."""

        def meant(recorded: dict[str, Any]) -> bool:
            decision = recorded["decision"] or {}
            return recorded["status_now"] == "not_accepted" and decision.get("reason_code") == reason_code

        return self._change(
            handoff_id,
            "acceptance",
            {"decision": "not_accepted", "reason_code": reason_code, "note": note},
            meant,
        )

    def extend(self, handoff_id: str, days: int, reason: str) -> dict[str, Any]:
        """Extend the period to decide, once, while it runs (法释〔2011〕5号 Art. 5: by at most 10 days)."""

        def meant(recorded: dict[str, Any]) -> bool:
            return recorded["extended_days"] == days

        return self._change(handoff_id, "extension", {"days": days, "reason": reason}, meant)

    def decide(
        self,
        handoff_id: str,
        decision: str,
        ruling_number: str,
        ruled_on: date,
        ground: str | None = None,
    ) -> dict[str, Any]:
        """Post the ruling: "confirmed", or "rejected" with its ground (民诉法解释 Art. 358, e.g.
        "unclear_content" or "not_voluntary")."""
        body: dict[str, Any] = {
            "decision": decision,
            "ruling_number": ruling_number,
            "ruled_on": ruled_on.isoformat(),
        }
        if ground is not None:
            body["ground"] = ground

        def meant(recorded: dict[str, Any]) -> bool:
            ruling = recorded["decision"] or {}
            return (
                recorded["status_now"] == decision
                and ruling.get("ruling_number") == ruling_number
                and ruling.get("ruled_on") == ruled_on.isoformat()
                and ruling.get("ground") == ground
            )

        return self._change(handoff_id, "decision", body, meant)

    # ---- plumbing ---------------------------------------------------------------------------------

    def _change(
        self, handoff_id: str, step: str, body: dict[str, Any], meant: Callable[[dict[str, Any]], bool]
    ) -> dict[str, Any]:
        """Send one answer; `meant` tells whether an answer the handoff holds already is this one."""
        handoff_id = str(handoff_id)
        if handoff_id not in self._etags:
            self.dossier(handoff_id)
        headers = {"If-Match": self._etags[handoff_id], "Idempotency-Key": str(uuid.uuid4())}
        # The same key on every attempt: a retry after a lost answer cannot change anything twice.
        give_up_at = time.monotonic() + self._retry_for
        failures = 0
        while True:
            try:
                response = self._http.post(f"/v1/handoffs/{handoff_id}/{step}", json=body, headers=headers)
            except httpx.TransportError:
                failures += 1
                if failures > self._retries:
                    raise
                continue
            wait = self._retry_after(response)
            if wait is None or time.monotonic() + wait > give_up_at:
                break
            time.sleep(wait)
        try:
            answer = self._json(response)
        except AnswerConflict as conflict:
            if not meant(conflict.recorded):
                # Someone else's answer: the ETag stays the one read, so that the next change is
                # refused (412) until the caller has read the handoff as it now stands.
                raise
            # Recorded as this client meant it: its own answer, whose response it never got (or
            # another clerk's, the same). Done; the handoff as it stands, read again.
            return self.dossier(handoff_id)["handoff"]
        self._etags[handoff_id] = response.headers["ETag"]
        return answer

    @staticmethod
    def _retry_after(response: httpx.Response) -> float | None:
        """How long to wait before asking again, when the service says to: busy (503), or still
        working on this key's first attempt (409 idempotency-in-progress). None: the answer stands."""
        if response.status_code == 409:
            in_progress = response.headers.get("content-type", "").startswith(PROBLEM_JSON) and (
                response.json().get("type") == IN_PROGRESS
            )
            if not in_progress:
                return None
        elif response.status_code != 503:
            return None
        try:
            seconds = float(response.headers.get("Retry-After", "1"))
        except ValueError:  # an HTTP date: not sent by this service; wait the usual second
            seconds = 1.0
        return min(max(seconds, 0.0), MAX_RETRY_AFTER)

    @staticmethod
    def _json(response: httpx.Response) -> dict[str, Any]:
        if response.is_success:
            data: dict[str, Any] = response.json()
            return data
        if response.headers.get("content-type", "").startswith(PROBLEM_JSON):
            problem = response.json()
            if response.status_code == 409 and problem.get("code") in ANSWERED and "status_now" in problem:
                raise AnswerConflict(response.status_code, problem)
            raise ApiProblem(response.status_code, problem)
        raise ApiProblem(
            response.status_code,
            {"title": response.reason_phrase, "detail": response.text[:500] or None},
        )


def new_case_number(serial: int, today: date | None = None) -> str:
    """A placeholder in the form of a confirmation case number, e.g. (2026)民特0001号. A real
    integration takes the number the court's case management system assigns."""
    year = (today or date.today()).year
    return f"({year})民特{serial:04d}号"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Accept every pending request addressed to this court, with a generated case number."
    )
    parser.add_argument(
        "--base-url",
        default=os.environ.get("MEDIATION_BASE_URL", "http://127.0.0.1:8000"),
        help="the mediation service (default: $MEDIATION_BASE_URL or http://127.0.0.1:8000)",
    )
    parser.add_argument(
        "--api-key",
        default=os.environ.get("MEDIATION_API_KEY"),
        help="the court's API key (default: $MEDIATION_API_KEY)",
    )
    args = parser.parse_args(argv)
    if not args.api_key:
        parser.error("an API key is needed: --api-key or MEDIATION_API_KEY")

    failed = 0
    with CourtClient(args.base_url, args.api_key) as court:
        try:
            pending = court.list_pending()
        except (ApiProblem, httpx.TransportError) as exc:
            print(f"cannot list pending requests at {args.base_url}: {exc}", file=sys.stderr)
            return 2
        print(f"{len(pending)} pending request(s)")
        for serial, item in enumerate(pending, start=1):
            try:
                accepted = court.accept(item["id"], new_case_number(serial))
            except ApiProblem as problem:
                failed += 1
                print(
                    f"{item['case_number']}  {item['kind_label']}  not accepted:\n{problem}", file=sys.stderr
                )
                continue
            due = accepted["decide_due_on"] or "-"
            print(
                f"{accepted['case_number']}  {accepted['kind_label']}  "
                f"accepted as {accepted['target_case_number']}, decision due {due}"
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
