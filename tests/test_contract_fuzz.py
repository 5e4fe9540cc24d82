"""Contract fuzzing: Schemathesis reads the committed contract (openapi/openapi.json, not the one
the code would generate), generates requests from it, valid and invalid, and sends them to the
live app in this process over ASGI, with a real database, as each role that uses the API. Every
built-in check runs on every response: no server error, responses and headers as the contract
says, invalid requests refused, valid ones accepted, authentication enforced, created resources
found, deleted ones gone.

Phases: the contract's examples, coverage (boundary and invalid values of every parameter), and
random generation, with the roles taking turns request by request; then the stateful phase per
role, chaining calls through the links Schemathesis infers (an intake's Location to the case, a
created body to its mediators ...), one role per run so a case one role created is looked up by
the same role.

CONTRACT_FUZZ_EXAMPLES sets the generated examples per operation (`make test`: a few; `make
fuzz`: 150), CONTRACT_FUZZ_SCENARIOS the stateful scenarios per role. The figures of each run
are printed in the terminal summary.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis.engine import events, from_schema
from schemathesis.python import asgi
from schemathesis.specs.openapi.schemas import OpenApiSchema

from mediation.app import create_app
from mediation.core.clock import FrozenClock
from mediation.core.settings import Settings
from tests.support import STAFF_HOME, Api, person, staff_user

CONTRACT = Path(__file__).resolve().parents[1] / "openapi" / "openapi.json"
OPERATIONS = sum(
    len(methods) for methods in json.loads(CONTRACT.read_text(encoding="utf-8"))["paths"].values()
)
EXAMPLES = int(os.environ.get("CONTRACT_FUZZ_EXAMPLES", "3"))
# SQLite in `make test`, where the whole suite runs on both databases already; `make fuzz` adds
# PostgreSQL.
DATABASES = os.environ.get("CONTRACT_FUZZ_DATABASES", "sqlite").split(",")
# Scenarios per role in the stateful phase.
SCENARIOS = int(os.environ.get("CONTRACT_FUZZ_SCENARIOS", str(max(EXAMPLES, 5))))

# The roles that use the API: the window clerk and the supervisor sign in (bearer token); a
# mediation body's client, a court and an arbitration commission send API keys; a party has no
# credentials and looks up its case with the case number and query code from its receipt.
ROLES = ("clerk", "supervisor", "body_mediator", "court", "arbitration", "party")

# Valid requests the server refuses for a rule the request schema cannot state. Anything else a
# valid request is refused for with 422 fails the run, like any other refusal of valid data.
UNSTATED_RULES = {
    # GB 11643 check digit and a real birth date; the USCC check character (GB 32100).
    "invalid_id_number",
    # Phone numbers are accepted as people write them: spaces and brackets anywhere, +86 or not.
    "invalid_phone",
    # A period must lie within the years whose public-holiday calendar is published.
    "calendar_unknown",
    # `from` and `to` at most ten years apart, and `from` not after `to`: relations between two
    # parameters.
    "range_too_long",
    "range_reversed",
    # A region inside the caller's own: it depends on who asks.
    "outside_region",
    # A cursor is a token the server issued as next_cursor; its content is not a client's to make.
    "invalid_cursor",
    # The event feed's `cursor` and `after` are one parameter under two names: given both, they
    # must be equal, a relation between two parameters.
    "cursor_conflict",
    # Text is trimmed before its length is checked: a value of spaces is too short.
    "string_too_short",
    # No text may hold U+0000, which PostgreSQL cannot store; a pattern on every string would
    # state it at the price of the contract's readability.
    "null_character",
    # A web address is kept as the server writes it (an internationalised host in punycode), which
    # can outgrow its maxLength as sent.
    "url_too_long",
    # An amount sent as a string is held to the same bounds as one sent as a number; the string
    # form's schema (what Python's Decimal reads) cannot state minimum or exclusiveMinimum.
    "greater_than",
    "greater_than_equal",
    "less_than_equal",
    # Amounts have at most two decimal places: as a JSON number (a binary float) multipleOf 0.01
    # cannot state that exactly, and the string form takes what Python's Decimal reads.
    "decimal_max_places",
    "decimal_parsing",
    # ... and which Python's Decimal reads as infinite ("Inf", "NaN"), which an amount cannot be.
    "finite_number",
    # References that must name an existing court, or a party of this case: data, not shape
    # (like a 404 for a path id).
    "not_a_court",
    "unknown",
    "unknown_party",
    # The party an agent acts for is named by its place in the request's own list of parties (or the
    # case's): it must be there, be another party than the agent, and be no agent itself, relations
    # between the list's items that JSON Schema cannot state.
    "represents_unknown_party",
    "represents_self",
    "represents_agent",
    # A correction of a party on record does not carry its role or kind, which decide whether it
    # may act for another or have a legal representative (intake's schema states both).
    "represents_not_agent",
    "legal_representative_not_organisation",
    # Dates between 1990 and 2099: JSON Schema has no bounds for a `date` string.
    "date_out_of_range",
    # A referred case's application date lies between the registration day, which is the
    # server's today, and a configured number of days before it.
    "applied_on_in_future",
    "applied_on_too_early",
    # A referral's number holds letters and digits of any script and a few separators, as its
    # description says: a pattern naming Unicode's letter and digit categories (\p{L}, \p{N})
    # needs the regular expressions' Unicode mode, which JSON Schema's patterns do not promise.
    "external_reference_characters",
    # One person is not two parties: a relation between the items of a list, by their numbers
    # as normalised.
    "party_repeated",
    # A correction names parties of this case, each once, and changes something on record; a new
    # document type goes with its number when the party has one: relations to the stored case.
    "not_a_party",
    "duplicate_party",
    "nothing_to_correct",
    "id_number_missing",
    # A case is not linked to itself: a relation between the path's id and the body's.
    "self_link",
    # A sitting moved to the time and place it already has: a relation to the stored sitting, as
    # are a move's omitted place and online, kept from it.
    "session_unchanged",
    # A sitting is not scheduled, moved or held on a day before mediation at the body began: a
    # relation to the stored case (its sign-for), which no schema of the sitting can know.
    "before_mediation",
    # An uploaded file with no bytes: the multipart body's shape cannot say "non-empty".
    "empty",
    # Passwords: the minimum length is the center's setting (MEDIATION_MIN_PASSWORD_LENGTH), not
    # the contract's; the current password, and whether the new one repeats it, are the account's
    # data (like a 401 at sign-in), which no schema can know.
    "too_short",
    "wrong_password",
    "same_as_current",
}


@schemathesis.check
def refusals_of_valid_requests_name_an_unstated_rule(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> None:
    """positive_data_acceptance lets 415 and 422 through (see CHECKS); this check lets through only
    the 415s that refuse an upload's content and the 422s whose every field error is a rule in
    UNSTATED_RULES."""
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return
    if any(value is None for value in (case.path_parameters or {}).values()):
        # A stateful step whose link took a path parameter from a field that is null in the
        # previous response (a case no body has yet: `/v1/bodies/None`). That is no request the
        # contract describes; its 422 is the right answer, and the built-in checks still judge it.
        return
    if response.status_code == 415:
        # An upload whose bytes are not a kind of file a dossier takes: the server reads the kind
        # from the content (the name and the declared type can lie), which the schema's `binary`
        # cannot state. Any other 415 to a valid request fails.
        problem = json.loads(response.content or b"{}")
        if "detected_media_type" not in problem:
            raise AssertionError("A request the contract allows was refused as an unsupported media type")
        return
    if response.status_code != 422:
        return
    problem = json.loads(response.content or b"{}")
    if problem.get("type") == "/problems/idempotency-key-mismatch":
        return  # the key was used before with another body: the server's state, like a 409
    if problem.get("type") == "/problems/guard-failed":
        return  # a legal condition on the case's state (each reason names its article), like a 409
    errors = problem.get("errors") or [{"code": "(none)"}]
    unstated = {str(error.get("code")) for error in errors} - UNSTATED_RULES
    if unstated:
        raise AssertionError(f"A request the contract allows was refused for {sorted(unstated)}")


# The headers a client acts on. The built-in checks hold an answer to the headers its response
# declares as required; this one holds the service to declaring these wherever it sends them.
WATCHED_HEADERS = ("etag", "location", "idempotent-replayed", "retry-after", "www-authenticate")


@schemathesis.check
def headers_sent_are_declared(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> None:
    definition = case.operation.responses.find_by_status_code(response.status_code)
    if definition is None:
        return  # an undeclared status, which status_code_conformance reports
    declared = {name.lower() for name, _ in definition.headers.items()}
    undeclared = [name for name in WATCHED_HEADERS if name in response.headers and name not in declared]
    if undeclared:
        raise AssertionError(
            f"The answer {response.status_code} sends headers its contract omits: {undeclared}"
        )


# Besides the default statuses a valid request may get: 412 and 428, the answers of the
# conditional requests that every change to a case needs (an If-Match that is not the case's
# current ETag, or none: RFC 9110 §13.1.1, RFC 6585 §3), both documented on those operations; 422
# when it names an UNSTATED_RULES rule, and 415 for an upload whose content is refused, which the
# check above holds them to.
CHECKS = {
    "enabled": True,
    "positive_data_acceptance": {
        "expected-statuses": ["2xx", "3xx", "401", "403", "404", "409", "412", "415", "422", "428", "429"]
    },
}


def contract(app: Any, phases: dict[str, Any], scenarios: int | None = None) -> OpenApiSchema:
    generation: dict[str, Any] = {"mode": "all", "max-examples": EXAMPLES, "database": "none"}
    config: dict[str, Any] = {"checks": CHECKS, "generation": generation, "phases": phases}
    if scenarios is not None:
        config["phases"] = {**phases, "stateful": {"generation": {"max-examples": scenarios}}}
    schema = schemathesis.openapi.from_path(CONTRACT, config=schemathesis.Config.from_dict(config))
    schema.app = app
    return schema


@dataclass
class Figures:
    label: str
    cases: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def line(self) -> str:
        per_operation = min(self.cases.values(), default=0)
        return (
            f"{self.label}: {len(self.cases)} operations, {sum(self.cases.values())} cases "
            f"(at least {per_operation} per operation), {len(self.failures)} failures, "
            f"{len(self.errors)} errors, {self.seconds:.0f} s; statuses {dict(sorted(self.statuses.items()))}"
        )


def execute(label: str, schema: OpenApiSchema) -> Figures:
    figures = Figures(label)
    started = time.monotonic()
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            recorder = event.recorder
            for node in recorder.cases.values():
                figures.cases[node.value.operation.label] += 1
            for interaction in recorder.interactions.values():
                if interaction.response is not None:
                    figures.statuses[interaction.response.status_code] += 1
            for case_id, checks in recorder.checks.items():
                for check in checks:
                    if check.failure_info is not None:
                        failure = check.failure_info.failure
                        figures.failures.append(
                            f"{recorder.label} [{check.name}] {failure.title}: {failure.message}\n"
                            f"{check.failure_info.code_sample}\n{_answer(recorder, case_id)}"
                        )
        elif isinstance(event, events.NonFatalError | events.FatalError):
            figures.errors.append(repr(event))
    figures.seconds = time.monotonic() - started
    return figures


def _answer(recorder: Any, case_id: str) -> str:
    interaction = recorder.interactions.get(case_id)
    if interaction is None or interaction.response is None:
        return "(no response)"
    response = interaction.response
    return f"-> {response.status_code} {response.content[:800].decode('utf-8', 'replace')}"


@contextmanager
def quiet_access_log() -> Iterator[None]:
    """Generated query strings carry long digit runs (a 300-digit cursor) that the suite's log scan
    would take for ID numbers. They are not anyone's data; the access log's redaction of real
    numbers has its own tests (tests/test_log_redaction.py)."""
    access = logging.getLogger("mediation.access")
    level = access.level
    access.setLevel(logging.WARNING)
    try:
        yield
    finally:
        access.setLevel(level)


# Operations that end a signed-in session (`everywhere`: every session of the account) or change its
# password: sent with the shared token, the first would sign a role out for the rest of the run.
SESSION_ENDING = frozenset({"/v1/auth/logout", "/v1/me/password"})


@dataclass
class OwnSession:
    """A signed-in role's second account, for SESSION_ENDING operations alone: each case gets a
    new session of it, at the account's current generation (moved on as the service moves it)."""

    user_id: Any
    role: str
    organisation_id: Any
    generation: int = 0


@dataclass
class Live:
    app: Any
    credentials: dict[str, dict[str, str]]
    lookup: dict[str, str]
    own: dict[str, OwnSession] = field(default_factory=dict)
    minted: dict[str, str] = field(default_factory=dict)  # token -> role

    def session_ending_credentials(self, role: str) -> dict[str, str] | None:
        own = self.own.get(role)
        if own is None:
            return None
        tokens = self.app.state.identity.tokens
        token = tokens.issue(own.user_id, own.role, own.organisation_id, generation=own.generation).token
        self.minted[token] = role
        return {"Authorization": f"Bearer {token}"}

    def ended(self, case: schemathesis.Case, status: int) -> None:
        """After a SESSION_ENDING case: an account whose sessions the service ended (signing out
        everywhere, a password changed) moves to its next generation here too."""
        if status != 204 or case.operation.path not in SESSION_ENDING:
            return
        token = str((case.headers or {}).get("Authorization", "")).removeprefix("Bearer ")
        role = self.minted.get(token)
        if role is None:
            return
        everywhere = isinstance(case.body, dict) and case.body.get("everywhere") is True
        if case.operation.path == "/v1/me/password" or everywhere:
            self.own[role].generation += 1


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # Thousands of requests in a few minutes from one client address, and a run longer than an
    # access token lives.
    return settings.model_copy(
        update={
            "rate_limit_per_minute": 1_000_000,
            "anonymous_rate_limit_per_minute": 1_000_000,
            "access_token_minutes": 24 * 60,
            # The feed's long poll (`wait`, up to 60 s) would outlast the fuzzer's 10 s read timeout.
            "feed_max_wait_seconds": 1.0,
        }
    )


@pytest.fixture
async def live(api: Api, settings: Settings, clock: FrozenClock) -> AsyncIterator[Live]:
    """A second app over the seeded database. Schemathesis runs it, lifespan and requests, on an
    event loop of its own, so its connections never cross into the test's loop."""
    # Cases for the lists and lookups to return: one in mediation, one just registered, whose
    # receipt the party role looks it up with.
    await api.drive("mediating")
    registered = await api.intake(parties=[person("applicant", "王五", 7), person("respondent", "赵六", 8)])
    credentials = {role: api.auth(role) for role in ROLES if role != "party"}
    lookup = {"case_number": registered["case_number"], "query_code": registered["query_code"]}
    own = {
        role: OwnSession(user_id, role, org_id)
        for role in ROLES
        if "Authorization" in credentials.get(role, {})
        for user_id, org_id in [await second_account(api, role)]
    }
    yield Live(create_app(settings, clock), credentials, lookup, own)
    asgi.shutdown_lifespans()


async def second_account(api: Api, role: str) -> tuple[Any, Any]:
    """Another account of `role` in the same organisation as the shared one."""
    identity = api.app.state.identity
    org_id = api.bodies[STAFF_HOME[role]] if STAFF_HOME[role] else None
    password_hash = identity.passwords.hash("correct horse battery staple")
    user = staff_user(f"fuzz-own-{role}", f"会话{role}", role, org_id, password_hash, datetime.now(UTC))
    async with api.app.state.db.writer() as session, session.begin():
        session.add(user)
    return user.id, org_id


def with_roles(schema: OpenApiSchema, live: Live, roles: Iterator[str]) -> OpenApiSchema:
    credentials = live.credentials

    class RoleCredentials:
        """Each request goes as the next role; the party sends no credentials. A request that ends
        sessions goes in a session of its own, so the role stays signed in for the rest."""

        def get(self, case: schemathesis.Case, ctx: schemathesis.AuthContext) -> dict[str, str] | None:
            role = next(roles)
            if case.operation.path in SESSION_ENDING:
                return live.session_ending_credentials(role) or credentials.get(role)
            return credentials.get(role)

        def set(self, case: schemathesis.Case, data: dict[str, str], ctx: schemathesis.AuthContext) -> None:
            case.headers = {**(case.headers or {}), **data}

    # No caching: every request asks for its role's credentials.
    schema.auth(refresh_interval=None)(RoleCredentials)

    @schema.hook("after_call")
    def follow_ended_sessions(
        context: schemathesis.HookContext, case: schemathesis.Case, response: Any
    ) -> None:
        live.ended(case, response.status_code)

    @schema.hook("flatmap_body")
    def receipt_of_a_real_case(context: schemathesis.HookContext, body: Any) -> st.SearchStrategy[Any]:
        """The party's lookup: half the well-formed ones carry a real receipt, so the lookup's
        answer is checked and not only its 404.

        Well-formed means valid by StatusLookupIn (exactly the two keys, strings, within their
        lengths): a body generated to break the schema must reach the service as generated. (A
        number or null used to pass for a value by its text, and the real receipt then turned a
        negative case into a valid one, which the negative-data check reported as accepted.)"""
        operation = context.operation
        if (
            operation is None
            or operation.path != "/v1/status-lookup"
            or not isinstance(body, dict)
            or set(body) != {"case_number", "query_code"}
            or not isinstance(number := body["case_number"], str)
            or not isinstance(code := body["query_code"], str)
            or not 1 <= len(number) <= 32
            or not 4 <= len(code) <= 16
        ):
            return st.just(body)
        return st.sampled_from([body, {**body, **live.lookup}])

    return schema


@pytest.mark.parametrize("database_url", DATABASES, indirect=True)
def test_contract_holds_for_every_role_in_every_phase(live: Live, request: pytest.FixtureRequest) -> None:
    runs: list[Figures] = []
    with quiet_access_log():
        stateless = contract(live.app, {"stateful": {"enabled": False}})
        runs.append(
            execute("examples, coverage, fuzzing", with_roles(stateless, live, itertools.cycle(ROLES)))
        )
        for role in ROLES:
            stateful = contract(
                live.app,
                {
                    "examples": {"enabled": False},
                    "coverage": {"enabled": False},
                    "fuzzing": {"enabled": False},
                },
                scenarios=SCENARIOS,
            )
            runs.append(execute(f"stateful as {role}", with_roles(stateful, live, itertools.repeat(role))))
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    for figures in runs:
        if reporter is not None:
            reporter.write_line(f"contract fuzz ({request.node.callspec.id}) {figures.line()}")
    problems = [f for figures in runs for f in figures.failures + figures.errors]
    assert not problems, f"{len(problems)} failures:\n\n" + "\n\n".join(problems[:30])
    # Every operation of the contract was exercised, and the stateful runs did chain calls.
    assert len(runs[0].cases) == OPERATIONS
    assert all(sum(figures.cases.values()) > 0 for figures in runs[1:])
    # A signed-in role stays signed in: a run whose requests were mostly refused as unauthenticated
    # tested the sign-in check and nothing behind it (a sign-out with the shared token did that).
    for figures in runs[1:]:
        role = figures.label.removeprefix("stateful as ")
        if role in live.own:
            assert figures.statuses[401] * 2 < figures.statuses.total(), figures.line()
