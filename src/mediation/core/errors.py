"""Typed errors, each mapped to one HTTP status and one RFC 9457 problem `type`.

The `type` values are stable relative URIs (`/problems/<slug>`); the app serves a short page for
each, so they dereference on any deployment while comparing equal everywhere.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from mediation.core.i18n import Text, current_language

log = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_BASE = "/problems/"


class ProblemError(Exception):
    status: ClassVar[int] = 500
    slug: ClassVar[str] = "internal-error"
    title: ClassVar[Text] = Text("服务内部错误", "Internal server error")
    # The response headers every answer of this type carries besides Content-Language (all do),
    # declared on the responses of the contract that may answer it (PROBLEM_HEADERS).
    sends: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        detail: Text | str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        http_status: int | None = None,
        **extensions: Any,
    ) -> None:
        self.http_status = http_status or type(self).status
        self.detail = detail
        self.headers = dict(headers or {})
        self.extensions = extensions
        super().__init__(str(detail) if detail else self.title.en)

    @classmethod
    def type_uri(cls) -> str:
        return PROBLEM_BASE + cls.slug

    def body(self, instance: str | None = None) -> dict[str, Any]:
        language = current_language()
        body: dict[str, Any] = {
            "type": self.type_uri(),
            "title": self.title.get(language),
            "status": self.http_status,
        }
        if self.detail is not None:
            body["detail"] = self.detail.get(language) if isinstance(self.detail, Text) else self.detail
        if instance:
            body["instance"] = instance
        body.update(self.extensions)
        return body


class NotFound(ProblemError):
    status = 404
    slug = "not-found"
    title = Text("资源不存在", "Resource not found")


class OutsideScope(NotFound):
    """A case (or a court's request) that exists, outside the caller's scope. It answers exactly as
    one that does not exist, so its existence does not leak, but unlike a mistyped address it is
    audited: someone asked for what is not theirs (GB/T 22239-2019 8.1.4.3, 安全审计)."""


class Forbidden(ProblemError):
    status = 403
    slug = "forbidden"
    title = Text("无权执行该操作", "Not allowed for this role")


class InvalidTransition(ProblemError):
    status = 409
    slug = "invalid-transition"
    title = Text("当前状态下不能执行该操作", "Action not allowed in the current state")


class GuardFailed(ProblemError):
    status = 422
    slug = "guard-failed"
    title = Text("不满足执行该操作的条件", "Conditions for this action are not met")


class StaleVersion(ProblemError):
    status = 412
    slug = "stale-version"
    title = Text("已被他人修改, 请刷新后重试", "It has changed since you read it; reload and retry")


class PreconditionRequired(ProblemError):
    status = 428
    slug = "precondition-required"
    title = Text("缺少 If-Match 请求头", "If-Match header required")


class ValidationFailed(ProblemError):
    status = 422
    slug = "validation-error"
    title = Text("请求内容有误", "The request is not valid")

    @classmethod
    def of_field(cls, field: str, code: str, message: Text, location: str = "body") -> ValidationFailed:
        """One field's error, shaped like the framework's own validation errors."""
        return cls(
            message, errors=[{"field": field, "location": location, "code": code, "message": message.get()}]
        )


def unknown_query_parameters(names: Sequence[str], known: Iterable[str]) -> ValidationFailed:
    """The query parameters in `names` are none of those the endpoint takes (`known`)."""
    accepted = ", ".join(sorted(known)) or "-"
    message = Text(
        f"未知的查询参数, 可能拼写有误; 本接口接受: {accepted}",
        f"Unknown query parameter, perhaps misspelt; this endpoint takes: {accepted}",
    )
    listed = ", ".join(names[:5])
    return ValidationFailed(
        Text(f"未知的查询参数: {listed}", f"Unknown query parameters: {listed}"),
        errors=[
            {"field": name, "location": "query", "code": "extra_forbidden", "message": message.get()}
            for name in names
        ],
    )


def duplicate_field(name: str) -> ValidationFailed:
    """A JSON body names `name` twice in one object."""
    return ValidationFailed.of_field(
        name,
        "duplicate_field",
        Text("同一对象中该字段出现了两次", "This field appears twice in one object"),
    )


def _media_type_required(content_type: str | None, taken: str, what: Text) -> UnsupportedMediaType:
    """415 saying what to send (`what`, with {t} for the type the body came as) and the type taken."""
    return UnsupportedMediaType(
        what.format(t=content_type or "-"),
        detected_media_type=content_type,
        allowed_media_types=[taken],
    )


def form_body_required(content_type: str | None) -> UnsupportedMediaType:
    """A file was to be uploaded as multipart/form-data, and the body was sent as something else
    (JSON naming the file, say): told what to send, not that the file is missing."""
    return _media_type_required(
        content_type,
        "multipart/form-data",
        Text(
            "文件须以 multipart/form-data 上传 (字段 file)，收到的是 {t}",
            "Upload the file as multipart/form-data (field `file`); the body was sent as {t}",
        ),
    )


def json_body_required(content_type: str | None) -> UnsupportedMediaType:
    """A body was sent labelled as something other than JSON, or not labelled at all."""
    return _media_type_required(
        content_type,
        "application/json",
        Text(
            "请求体应为 JSON (Content-Type: application/json)，收到的是 {t}",
            "The request body must be JSON (Content-Type: application/json); it was sent as {t}",
        ),
    )


class DuplicateExternalReference(ProblemError):
    status = 409
    slug = "duplicate-external-reference"
    title = Text("该来源平台的工单已登记", "This platform's reference is already registered")


class IdempotencyKeyMismatch(ProblemError):
    status = 422
    slug = "idempotency-key-mismatch"
    title = Text("幂等键已用于另一个请求", "Idempotency-Key was used for a different request")


class IdempotencyInProgress(ProblemError):
    status = 409
    slug = "idempotency-in-progress"
    title = Text("相同幂等键的请求正在处理", "A request with this Idempotency-Key is in progress")
    sends = ("Retry-After",)


class PayloadTooLarge(ProblemError):
    status = 413
    slug = "payload-too-large"
    title = Text("请求体过大", "Request body too large")


def payload_too_large(limit: int) -> PayloadTooLarge:
    """A body over its `limit` of bytes: one answer whether it was refused by its Content-Length,
    before a byte was read, or sent chunked and refused at the byte over."""
    return PayloadTooLarge(Text("请求体超过 {n} 字节上限", "Request body exceeds {n} bytes").format(n=limit))


class BodyOverLimit(StarletteHTTPException):
    """Raised while a body without its length is read past `limit`: an HTTPException, since the
    framework turns any other error out of reading a body (a form's) into a 400."""

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413)
        self.limit = limit


class RangeNotSatisfiable(ProblemError):
    status = 416
    slug = "range-not-satisfiable"
    title = Text("请求的范围超出文件长度", "The requested range lies beyond the file")
    sends = ("Content-Range",)


class UnsupportedMediaType(ProblemError):
    status = 415
    slug = "unsupported-media-type"
    title = Text("不支持的请求格式", "Unsupported media type")


class MethodNotAllowed(ProblemError):
    status = 405
    slug = "method-not-allowed"
    title = Text("不支持该请求方法", "Method not allowed")
    sends = ("Allow",)


class ServiceUnavailable(ProblemError):
    status = 503
    slug = "service-unavailable"
    title = Text("服务暂时不可用, 请稍后重试", "Service temporarily unavailable; retry shortly")
    sends = ("Retry-After",)


class InternalError(ProblemError):
    pass


class Unauthenticated(ProblemError):
    status = 401
    slug = "unauthenticated"
    title = Text("未登录或凭证无效", "Missing or invalid credentials")
    sends = ("WWW-Authenticate",)

    def __init__(self, detail: Text | str | None = None, **kwargs: Any) -> None:
        # RFC 9110 §11.6.1: a 401 names the schemes the caller can use.
        headers = {"WWW-Authenticate": 'Bearer realm="mediation", ApiKey header="X-API-Key"'}
        super().__init__(detail, headers={**headers, **kwargs.pop("headers", {})}, **kwargs)
        # Whose credential was refused, when it named one that exists (a revoked key, a disabled
        # account): for the audit record only, never the answer, which stays the same for all.
        self.credential: dict[str, str] | None = None

    def naming(self, **credential: str) -> Unauthenticated:
        self.credential = credential
        return self


class Conflict(ProblemError):
    status = 409
    slug = "conflict"
    title = Text("与现有数据冲突", "Conflicts with existing data")


class TooManyRequests(ProblemError):
    status = 429
    slug = "rate-limited"
    title = Text("请求过于频繁, 请稍后再试", "Too many requests; slow down")
    sends = ("Retry-After",)


class RequestTimeout(ProblemError):
    status = 503
    slug = "request-timeout"
    title = Text("请求处理超时, 请稍后重试", "The request took too long; retry shortly")
    sends = ("Retry-After",)


class RequestBodyTimeout(ProblemError):
    """The client stopped sending its request's body (RFC 9110 §15.5.9)."""

    status = 408
    slug = "request-body-timeout"
    title = Text("请求内容长时间未送达", "The request body stopped arriving")


class FeedPositionExpired(ProblemError):
    """A feed cursor whose following events the feed no longer holds, so paging on would skip some
    unnoticed (RFC 9110 §15.5.11: gone for good): one from before the oldest event kept (events
    after it were deleted past the retention period), or one ahead of the newest event (the
    database was restored to a point before it)."""

    status = 410
    slug = "feed-position-expired"
    title = Text("该位置之后的事件已不在事件流中", "Events after this position are no longer in the feed")


class DataIntegrityError(ProblemError):
    """Stored data failed an integrity check (e.g. an encrypted value moved to another row)."""

    status = 500
    slug = "data-integrity"
    title = Text("数据完整性校验失败", "Stored data failed an integrity check")


ALL_PROBLEMS: tuple[type[ProblemError], ...] = (
    NotFound,
    Forbidden,
    InvalidTransition,
    GuardFailed,
    StaleVersion,
    PreconditionRequired,
    ValidationFailed,
    DuplicateExternalReference,
    IdempotencyKeyMismatch,
    IdempotencyInProgress,
    PayloadTooLarge,
    RangeNotSatisfiable,
    UnsupportedMediaType,
    MethodNotAllowed,
    ServiceUnavailable,
    InternalError,
    Unauthenticated,
    Conflict,
    TooManyRequests,
    RequestTimeout,
    RequestBodyTimeout,
    FeedPositionExpired,
    DataIntegrityError,
)


# What `code` says within each type that carries one. Several problems share one `type` (a
# conflict is a dozen different situations), so a client that must tell them apart branches on
# `type` and then `code`, never on `title` or `detail`, which are prose in the request's language.
# Every code the API answers is listed here (tests/test_contract.py reads the raise sites); the
# contract publishes the list in Problem's `code`, and docs/errors.md is written from it.
PROBLEM_CODES: dict[type[ProblemError], dict[str, str]] = {
    Unauthenticated: {
        "organisation_suspended": "The caller's organisation is suspended: its accounts and API keys "
        "cannot be used until an administrator resumes it.",
        "session_ended": "The access token's session was signed out or ended (a password change, "
        "signing out everywhere): sign in again.",
    },
    NotFound: {
        "link_not_found": "The two cases are not linked (never, or no longer: a removal sent again "
        "finds the link gone), so there is no link to remove.",
    },
    Forbidden: {
        "not_submitter": "Only the organisation that submitted a document, or the center's staff, "
        "withdraw it.",
        "password_change_required": "The account's password was set by an administrator: change it "
        "(POST /v1/me/password) before anything else.",
        "pii_read_required": "The caller reads ID and phone numbers masked, and the request would "
        "clear, correct or show them in full; `field` names the field where there is one.",
        "staff_only": "An API key cannot manage API keys: an administrator signs in to do it.",
        "subscriber_key_lapsed": "The webhook subscription was made by an API key since revoked or "
        "expired: a signed-in administrator, not an API key, checks its URL and enables it.",
    },
    InvalidTransition: {
        "case_closed": "The case's file stands as a record (`status_now`): its registration is "
        "not corrected once it is closed, declined or archived, and no risk is flagged once it is "
        "declined or archived.",
        "case_handed_off": "The case is with a court or arbitration commission: its file stands as "
        "handed over (`status_now`).",
    },
    StaleVersion: {
        "weak_etag": 'If-Match held only weak ETags (`W/"7"`), which never match (RFC 9110 '
        "§13.1.1, strong comparison): send the ETag as the service sent it (`current_etag`). A "
        "proxy compressing responses (nginx's gzip) weakens the ETags it passes.",
    },
    PreconditionRequired: {
        "if_match_malformed": "If-Match is no list of entity tags: an ETag is sent with its double "
        'quotes (`"7"`, as `current_etag` shows), not as the bare number.',
    },
    Conflict: {
        "agreement_effective": "That agreement version has taken effect and binds the parties; it "
        "is not replaced, edited or signed again (人民调解法 Art. 29, 31).",
        "agreement_in_effect": "An agreement version has taken effect: a party's refusal of "
        "mediation is no longer recorded (人民调解法 Art. 29, 31).",
        "agreement_signed": "The draft has signatures and no longer changes: draft a new version.",
        "agreement_superseded": "That agreement version was superseded (by a newer one, or void "
        "when mediation ended) and no longer changes.",
        "agreement_unchanged": "The agreement's content is unchanged; nothing was edited.",
        "alert_not_open": "The early warning is already acknowledged or resolved.",
        "alert_resolved": "The early warning is already resolved.",
        "already_answered": "The handoff's acceptance was already answered, otherwise than this request "
        "answers it: the answer recorded comes with it (`status_now`, `accepted_on`, "
        "`target_case_number`, `decided_on`, `decision`, `current_etag`). The same answer sent again "
        "(a retry) is no conflict: it answers 200 with the handoff as it stands, whatever ETag it names.",
        "already_extended": "The handoff's period was extended already, otherwise than this request "
        "extends it; it is extended once. The extension recorded comes with it (`extended_days`, "
        "`extension_reason`, with `status_now` and `current_etag`). The same extension sent again (a "
        "retry) is no conflict: it answers 200 with the handoff as it stands, whatever ETag it names.",
        "already_linked": "The two cases are already linked.",
        "already_performed": "The obligation is already recorded as performed.",
        "already_rotated": "The API key was rotated already (the detail names its successor).",
        "already_signed": "This signatory has already signed the agreement version.",
        "already_withdrawn": "The document is already withdrawn: a withdrawal sent again finds it "
        "withdrawn, not missing.",
        "calendar_published": "That year's public-holiday calendar ships with the service and is "
        "not loaded over.",
        "case_archived": "The case is archived: documents are no longer added or withdrawn.",
        "case_finished": "The case is no longer being handled (`status_now`): it is not supervised.",
        "clock_not_paused": "The clock is not paused, so it is not resumed.",
        "clock_paused": "The clock is already paused.",
        "concurrent_draft": "Another agreement version was drafted for the case at the same moment: "
        "reload the case and draft over the newest version.",
        "expired": "An expired API key is not rotated.",
        "follow_up_closed": "The follow-up is already closed.",
        "generated_document": "A record the service generated is not withdrawn: correct the case or "
        "draft a new agreement version instead.",
        "handoff_settled": "The handoff is already settled, otherwise than this request would settle "
        "it; it takes no further answer. The answer recorded comes with it (`status_now`, "
        "`accepted_on`, `target_case_number`, `decided_on`, `decision`, `current_etag`). The "
        "decision, outcome or withdrawal recorded, sent again the same (a retry), is no conflict: it "
        "answers 200 with the handoff as it stands, whatever ETag it names.",
        "last_admin": "The change would leave the organisation without an active administrator able "
        "to sign in.",
        "materials_already_requested": "The court's earlier request for materials is still open "
        "(`request_id`, `due_on`): one is answered before another is made (民诉法解释 Art. 354, 356).",
        "mediator_changed": "The case's mediator changed since the agreement version was drafted: "
        "draft a new version.",
        "mediator_conflict": "The mediator declared a conflict with a party of the case and steps "
        "aside (特邀调解规定 Art. 16).",
        "no_materials_request": "No request of the court's for materials waits for an answer: there is "
        "nothing to supply.",
        "no_owner": "The case has no case owner (包案领导) to clear.",
        "not_extendable": "Only an accepted handoff whose law allows an extension is extended.",
        "nothing_to_redeliver": "The webhook delivery is pending or delivered (`status_now`): only a "
        "dead or cancelled one is sent again.",
        "order_already_open": "An order with the same instruction and last day to the same body is "
        "already open and unanswered on the case (`order_id`): it is not sent twice.",
        "order_answered": "The supervision order is already answered.",
        "order_lapsed": "The supervision order lapsed with its case (`lapse_reason`, `lapsed_at`); "
        "it is not answered.",
        "organisation_required": "Only a caller that belongs to an organisation subscribes to events: "
        "the subscription is the organisation's.",
        "own_account": "An administrator does not reset the password of, or deactivate, their own account.",
        "parties_fixed": "An agreement is signed or in effect, or mediation is over (`status_now`): "
        "no party is added now.",
        "party_on_agreement": "A signed or effective agreement names the party: its name and "
        "document number no longer change (`field`; 人民调解法 Art. 29).",
        "period_expired": "The handoff's period to decide has run out (`due_on`) and is not extended.",
        "revoked": "A revoked API key is not rotated.",
        "session_cancelled": "The mediation session was cancelled.",
        "session_recorded": "The mediation session is already recorded.",
        "subscriber_key_lapsed": "The webhook subscription is disabled because the API key that made "
        "it lapsed: an administrator enables it again.",
        "subscription_disabled": "The webhook subscription is disabled: enable it before sending its "
        "deliveries again.",
        "username_taken": "The username is already taken.",
        "visit_recorded": "The follow-up visit is already recorded.",
        "withdrawal_already_requested": "The parties' withdrawal was already asked for once the target "
        "accepted (`article`, `requested_on`, with `status_now` and `current_etag`), for another reason or "
        "party than this request names: it awaits the court's ruling or the commission's decision. The "
        "same request sent again (a retry) is no conflict: it answers 200 with the handoff as it stands, "
        "whatever ETag it names.",
        "wrong_kind": "The answer is for another kind of handoff: a confirmation's ruling goes to "
        "/decision, a referral's result (or withdrawal) to /outcome; the body or center asks for a "
        "referral's withdrawal only once the target accepted it; a request for more materials is a "
        "court's, on a judicial confirmation.",
    },
}


def problem_codes_text() -> str:
    """PROBLEM_CODES as the contract's description of `code` says them."""
    lines = [
        "The stable machine-readable identifier of the problem within its `type`, where a type "
        "covers several problems; branch on `type`, then `code` (never on `title` or `detail`, "
        "which are prose in the request's language). Distinct from `errors[].code` (a field's "
        "error) and `reasons[].code` (a failed guard). The codes by type:"
    ]
    for problem, codes in PROBLEM_CODES.items():
        lines.append("")
        lines.append(f"{problem.type_uri()} ({problem.status}):")
        lines.extend(f"- `{code}`: {meaning}" for code, meaning in sorted(codes.items()))
    return "\n".join(lines)


def problem_catalogue_markdown() -> str:
    """docs/errors.md: every problem type, and the codes within each."""
    out = [
        "# Problems the API answers",
        "",
        "Written by `mediation openapi` from `mediation.core.errors`; tests/test_contract.py fails when it",
        "is stale. Every error is an RFC 9457 problem (`application/problem+json`) in the request's",
        "language. A client branches on `type`, and within a type that covers several problems on",
        "`code`; never on `title` or `detail`. Members besides the RFC's are listed in the contract's",
        "`Problem` schema.",
        "",
        "| type | status | title |",
        "|---|---|---|",
    ]
    out.extend(f"| `{p.type_uri()}` | {p.status} | {p.title.en} ({p.title.zh}) |" for p in ALL_PROBLEMS)
    out.append("")
    out.append("## Codes within a type")
    for problem, codes in PROBLEM_CODES.items():
        out.extend(
            ["", f"### `{problem.type_uri()}` ({problem.status})", "", "| code | meaning |", "|---|---|"]
        )
        out.extend(f"| `{code}` | {meaning} |" for code, meaning in sorted(codes.items()))
    return "\n".join(out) + "\n"


# ---- the contract: problem schemas and per-endpoint `responses=` -----------------------------


class Reason(BaseModel):
    """One reason a guard refused an action, with the rule it encodes."""

    code: str = Field(examples=["agreement_unsigned"])
    message: str
    article: str | None = Field(default=None, description="The legal source of the rule, if any.")


class FieldError(BaseModel):
    field: str = Field(examples=["parties[0].id_number"])
    location: str = Field(examples=["body"])
    code: str
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details. `type` names the kind of problem and `code` (where present) the
    problem within it; the other members below are sent with the problems that name them, and a
    client ignores any member it does not know (RFC 9457 §3.2), as the service may add some."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(examples=["/problems/guard-failed"], description="The kind of problem; stable.")
    title: str = Field(description="The type's title, in the request's language.")
    status: int = Field(description="The HTTP status.")
    detail: str | None = Field(default=None, description="This occurrence, in the request's language.")
    instance: str | None = Field(default=None, description="The path that was requested.")
    code: str | None = Field(default=None, description=problem_codes_text())
    reasons: list[Reason] | None = Field(
        default=None, description="guard-failed: each condition the action does not meet, with its rule."
    )
    errors: list[FieldError] | None = Field(
        default=None, description="validation-error: each field refused, with its own `code`."
    )
    field: str | None = Field(
        default=None,
        description="The request field a problem other than a validation error is about "
        "(pii_read_required, party_on_agreement), named as in `errors[].field`.",
        examples=["parties[0].id_number"],
    )
    fields: list[str] | None = Field(
        default=None, description="forbidden: the fields of its profile a body may not change."
    )
    current_etag: str | None = Field(
        default=None,
        description="stale-version, precondition-required, and a handoff's `already_answered`, "
        "`handoff_settled`, `already_extended` and `withdrawal_already_requested`: the resource's "
        "current ETag. Reread the "
        "resource when it changed before sending its ETag as If-Match; a weak (`weak_etag`) or "
        "malformed (`if_match_malformed`) one is sent again as this one is written.",
        examples=['"7"'],
    )
    newest_number: int | None = Field(
        default=None,
        description="stale-version, drafting over an agreement version that is not the newest: the "
        "newest version's number.",
    )
    status_now: str | None = Field(
        default=None,
        description="invalid-transition and some conflicts: the state now of the case (or supervision "
        "order, webhook delivery, or handoff: `already_answered`, `handoff_settled`, `already_extended`, "
        "`withdrawal_already_requested`).",
        examples=["mediating"],
    )
    allowed_actions: list[str] | None = Field(
        default=None,
        description="invalid-transition: the actions the caller's role may take from the case's state, "
        "each once (`GET /v1/disputes/{id}/actions` says which pass their conditions now).",
    )
    allowed_roles: list[str] | None = Field(
        default=None, description="forbidden: the roles that may take the action."
    )
    required_permission: str | None = Field(
        default=None, description="forbidden: the permission the caller's role lacks."
    )
    kind: str | None = Field(
        default=None, description="forbidden, a mediator added to a body that mediates nothing: its kind."
    )
    article: str | None = Field(
        default=None, description="Some conflicts: the legal source of the rule that refused the request."
    )
    due_on: str | None = Field(
        default=None,
        description="conflict `period_expired`: the day the period ended; `materials_already_requested`: "
        "the open request's last day (ISO 8601 date).",
    )
    accepted_on: str | None = Field(
        default=None,
        description="a handoff's conflicts (`already_answered`, `handoff_settled`, `already_extended`, "
        "`withdrawal_already_requested`): the day the handoff was recorded "
        "accepted (ISO 8601 date); null if it never was.",
    )
    target_case_number: str | None = Field(
        default=None,
        description="a handoff's conflicts (`already_answered`, `handoff_settled`, `already_extended`, "
        "`withdrawal_already_requested`): the court's or commission's case "
        "number recorded with its acceptance.",
    )
    decided_on: str | None = Field(
        default=None,
        description="a handoff's conflicts (`already_answered`, `handoff_settled`, `already_extended`, "
        "`withdrawal_already_requested`): the day the handoff was settled "
        "(ruling, outcome, non-acceptance, withdrawal; ISO 8601 date).",
    )
    decision: dict[str, Any] | None = Field(
        default=None,
        description="a handoff's conflicts (`already_answered`, `handoff_settled`, `already_extended`, "
        "`withdrawal_already_requested`): what settled the handoff, as its "
        "`decision` reads (e.g. `ruling_number`, `ruled_on`, `ground`; `reason_code`, `notice_number`).",
    )
    extended_days: int | None = Field(
        default=None, description="conflict `already_extended`: the days the period was extended by."
    )
    extension_reason: str | None = Field(
        default=None,
        description="conflict `already_extended`: the reason the extension was recorded with (ID and "
        "phone numbers masked without `pii:read`).",
    )
    requested_on: str | None = Field(
        default=None,
        description="conflict `withdrawal_already_requested`: the day the waiting request was made "
        "(ISO 8601 date).",
    )
    lapse_reason: str | None = Field(
        default=None, description="conflict `order_lapsed`: the case's state that ended the order."
    )
    lapsed_at: str | None = Field(
        default=None, description="conflict `order_lapsed`: when it lapsed (ISO 8601)."
    )
    order_id: str | None = Field(
        default=None, description="conflict `order_already_open`: the open order it would repeat."
    )
    request_id: str | None = Field(
        default=None,
        description="conflict `materials_already_requested`: the court's open request for materials "
        "(the handoff's `materials_requests[].id`).",
    )
    missing_party_ids: list[str] | None = Field(
        default=None, description="guard-failed, a clock extension: the parties whose consent is missing."
    )
    dispute_id: str | None = Field(
        default=None,
        description="duplicate-external-reference: the case already registered (also `Location`).",
    )
    case_number: str | None = Field(
        default=None, description="duplicate-external-reference: that case's number."
    )
    oldest_cursor: str | None = Field(
        default=None, description="feed-position-expired: the feed's oldest position kept, to go on from."
    )
    newest_cursor: str | None = Field(
        default=None,
        description="feed-position-expired, a cursor ahead of the feed: its newest position, to go on from.",
    )
    retry_after_seconds: int | None = Field(
        default=None, description="rate-limited: the seconds to wait, as in `Retry-After`."
    )
    detected_media_type: str | None = Field(
        default=None, description="unsupported-media-type: the type the body was sent as, or found to be."
    )
    allowed_media_types: list[str] | None = Field(
        default=None, description="unsupported-media-type: the types taken."
    )


# The headers problems carry, as the contract declares them.
PROBLEM_HEADERS: dict[str, dict[str, Any]] = {
    "Content-Language": {
        "description": "The language of `title` and `detail`: zh or en, as negotiated from Accept-Language.",
        "schema": {"type": "string"},
    },
    "Retry-After": {
        "description": "Seconds to wait before sending the request again (RFC 9110 §10.2.3).",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    },
    "WWW-Authenticate": {
        "description": "The authentication schemes the API takes (RFC 9110 §11.6.1).",
        "schema": {"type": "string"},
    },
    "Allow": {"description": "The methods the path serves (RFC 9110 §10.2.1).", "schema": {"type": "string"}},
    "Content-Range": {
        "description": "`bytes */<length>`: the file's length (RFC 9110 §14.4).",
        "schema": {"type": "string"},
    },
}


def problem_header_component(name: str, required: bool) -> str:
    """The name under components/headers of a problem header, sent always or only sometimes."""
    return name.replace("-", "") + ("" if required else "IfSent")


def problem_header_components() -> dict[str, dict[str, Any]]:
    return {
        problem_header_component(name, required): {**definition, "required": required}
        for name, definition in PROBLEM_HEADERS.items()
        for required in (True, False)
    }


def _header_ref(name: str, required: bool) -> dict[str, str]:
    return {"$ref": f"#/components/headers/{problem_header_component(name, required)}"}


def problem_response_doc(problems: Sequence[type[ProblemError]]) -> dict[str, Any]:
    """The contract's response for problems of one status: problem+json, each type (and whether
    `code` tells apart the problems within it), and the headers they send. A header is required
    when every type the response stands for sends it; Retry-After on a 409 comes with
    idempotency-in-progress alone, so there it is optional."""
    headers: dict[str, Any] = {"Content-Language": _header_ref("Content-Language", True)}
    for name in dict.fromkeys(h for p in problems for h in p.sends):
        headers[name] = _header_ref(name, all(name in p.sends for p in problems))
    return {
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        "description": " / ".join(
            f"{p.slug}: {p.title.en}" + (" (`code` says which)" if p in PROBLEM_CODES else "")
            for p in problems
        ),
        "headers": headers,
    }


def problem_responses(*problems: type[ProblemError]) -> dict[int | str, dict[str, Any]]:
    """`responses=` for an endpoint: every listed problem, plus those any endpoint can answer."""
    by_status: dict[int, list[type[ProblemError]]] = {}
    everything: tuple[type[ProblemError], ...] = (
        *problems,
        ValidationFailed,
        TooManyRequests,
        PayloadTooLarge,
        ServiceUnavailable,
        InternalError,
    )
    for p in everything:
        if p not in by_status.setdefault(p.status, []):
            by_status[p.status].append(p)
    return {
        status: {"model": Problem, **problem_response_doc(items)}
        for status, items in sorted(by_status.items())
    }


# ---- rendering ---------------------------------------------------------------------------------

_PYDANTIC_ZH: dict[str, str] = {
    "missing": "必填项",
    "extra_forbidden": "不允许的字段 (客户端不能写入该字段)",
    "string_too_short": "内容过短 (至少 {min_length} 个字符)",
    "string_too_long": "内容过长 (最多 {max_length} 个字符)",
    "null_character": "不能含空字符 (U+0000)",
    "url_too_long": "网址过长",
    "string_pattern_mismatch": "格式不正确",
    "string_type": "应为文本",
    "int_parsing": "应为整数",
    "int_type": "应为整数",
    "decimal_parsing": "应为数字",
    "decimal_type": "应为数字",
    "greater_than": "数值过小 (应大于 {gt})",
    "greater_than_equal": "数值过小 (应不小于 {ge})",
    "less_than": "数值过大 (应小于 {lt})",
    "less_than_equal": "数值过大 (应不大于 {le})",
    "decimal_max_places": "小数不能超过 {decimal_places} 位",
    "decimal_max_digits": "数字不能超过 {max_digits} 位",
    "decimal_whole_digits": "整数部分不能超过 {whole_digits} 位",
    "finite_number": "应为有限的数字 (不能是 NaN 或无穷大)",
    "float_parsing": "应为数字",
    "float_type": "应为数字",
    "literal_error": "取值不在允许范围内",
    "enum": "取值不在允许范围内",
    "json_invalid": "JSON 格式错误",
    "uuid_parsing": "应为 UUID",
    "date_from_datetime_parsing": "日期格式不正确",
    "date_parsing": "日期格式不正确",
    "datetime_parsing": "时间格式不正确",
    "datetime_from_date_parsing": "时间格式不正确",
    "too_short": "条目过少",
    "too_long": "条目过多",
    "model_attributes_type": "应为 JSON 对象",
    "dict_type": "应为 JSON 对象",
    "list_type": "应为列表",
    "bool_parsing": "应为布尔值",
    "bool_type": "应为布尔值 (true 或 false)",
}


def _field_path(loc: Sequence[str | int]) -> tuple[str, str]:
    location = str(loc[0]) if loc else "body"
    path = ""
    for part in loc[1:]:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return location, path or location


def field_errors(errors: Sequence[Any]) -> list[dict[str, str]]:
    language = current_language()
    out = []
    for err in errors:
        location, path = _field_path(tuple(err.get("loc", ())))
        code = str(err.get("type", "invalid"))
        ctx = err.get("ctx") or {}
        message = str(err.get("msg", ""))
        if code == "json_invalid":
            # The body is not JSON at all: its "location" is the character where parsing stopped,
            # not a field, so the field is the body and the message says where and why.
            loc = tuple(err.get("loc", ()))
            at = loc[1] if len(loc) > 1 and isinstance(loc[1], int) else None
            why = str(ctx.get("error", message))
            location, path = "body", "body"
            message = Text(
                f"JSON 格式错误 (第 {at} 个字符处: {why})" if at is not None else f"JSON 格式错误: {why}",
                f"Not valid JSON at character {at}: {why}" if at is not None else f"Not valid JSON: {why}",
            ).get(language)
        elif code == "value_error" and "error" in ctx:
            # Our own validators raise ValueError(Text): keep the requested language.
            raw = ctx["error"]
            message = raw.args[0].get(language) if raw.args and isinstance(raw.args[0], Text) else str(raw)
            code = getattr(raw, "code", "invalid_value")
        elif language == "zh" and code in _PYDANTIC_ZH:
            # With the limit the check applied, as Pydantic's English names it.
            template = _PYDANTIC_ZH[code]
            try:
                message = template.format(**ctx)
            except (KeyError, IndexError):
                message = template.split(" (")[0]
        out.append({"field": path, "location": location, "code": code, "message": message})
    return out


# A better message for a refused field, from what only the database knows (the code a place's name
# stands for): by error code, given the value sent. Each app names its own (`install_handlers`).
Hint = Callable[[Request, Any], Awaitable[Text | None]]


async def hinted_messages(request: Request, errors: Sequence[Any]) -> dict[int, str]:
    """For each of the Pydantic `errors` (as `field_errors` takes them) that a hint of the app's
    words better, by its position: the better message, in the request's language."""
    hints: Mapping[str, Hint] = getattr(request.app.state, "validation_hints", None) or {}
    out: dict[int, str] = {}
    for position, (err, shown) in enumerate(zip(errors, field_errors(errors), strict=True)):
        hint = hints.get(shown["code"])
        better = await hint(request, err.get("input")) if hint is not None else None
        if better is not None:
            out[position] = better.get()
    return out


def problem_response(exc: ProblemError, request: Request | None = None) -> JSONResponse:
    instance = request.url.path if request is not None else None
    headers = {"Content-Language": current_language(), **exc.headers}
    return JSONResponse(
        exc.body(instance), status_code=exc.http_status, media_type=PROBLEM_MEDIA_TYPE, headers=headers
    )


# SQLSTATE classes that say "not now" rather than "wrong": connection exceptions (08),
# insufficient resources (53, e.g. too many connections) and operator intervention (57: a statement
# cancelled by statement_timeout, a backend terminated, a server shutting down or starting), a
# lock that could not be had in time (55P03), and a transaction the server rolled back to let
# another go on: the victim of a deadlock (40P01) or of a serialization failure (40001). The code
# takes rows in one order (the case first) so that two requests do not deadlock; if some path ever
# does, its victim has written nothing and succeeds when sent again, so it is told to retry.
_UNAVAILABLE_CLASSES = ("08", "53", "57")
_UNAVAILABLE_STATES = frozenset({"55P03", "40P01", "40001"})


def is_connection_problem(exc: BaseException) -> bool:
    """The database could not serve the request now: answer 503 with Retry-After, not 500."""
    if isinstance(exc, PoolTimeout):
        return True
    if isinstance(exc, OperationalError | ConnectionError):
        return True  # SQLite "database is locked", a server gone or refusing connections, ...
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        exc = exc.orig or exc
    # The driver's own error, e.g. asyncpg's CannotConnectNowError while a server starts up, which
    # opening a connection raises as it is.
    state = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
    return isinstance(state, str) and (state[:2] in _UNAVAILABLE_CLASSES or state in _UNAVAILABLE_STATES)


HTTP_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def allowed_methods(request: Request) -> str:
    """Every method some route serves at this path (RFC 9110 §15.5.6). The router answers 405 from
    the first route whose path matches, and one path is often served by several routes (GET and
    POST /v1/bodies), so its own Allow header names only that route's methods."""
    routes = request.app.router.routes
    return ", ".join(
        method
        for method in HTTP_METHODS
        if any(route.matches({**request.scope, "method": method})[0] == Match.FULL for route in routes)
    )


# The errors answered 503 when the database cannot serve the request, else 500 (`on_unexpected`).
DATABASE_ERRORS: tuple[type[Exception], ...] = (
    DBAPIError,
    PoolTimeout,
    ConnectionError,
    asyncpg.PostgresError,
)


def install_handlers(app: FastAPI, hints: Mapping[str, Hint] | None = None) -> None:
    app.state.validation_hints = dict(hints or {})

    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ProblemError)
        return problem_response(exc, request)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = field_errors(exc.errors())
        for position, message in (await hinted_messages(request, exc.errors())).items():
            errors[position]["message"] = message
        names = ", ".join(e["field"] for e in errors[:5])
        detail = Text(f"以下字段有误: {names}", f"Invalid fields: {names}")
        return problem_response(ValidationFailed(detail, errors=errors), request)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        mapped: ProblemError
        if exc.status_code == 404:
            mapped = NotFound(Text("没有这个地址", "No such path"))
        elif exc.status_code == 405:
            mapped = MethodNotAllowed(headers={**(exc.headers or {}), "Allow": allowed_methods(request)})
        elif exc.status_code == 413:
            mapped = payload_too_large(exc.limit) if isinstance(exc, BodyOverLimit) else PayloadTooLarge()
        elif exc.status_code == 400:
            # A body the framework could not even parse (bytes that are not UTF-8, a broken
            # multipart form): refused like malformed JSON, at the body.
            mapped = ValidationFailed.of_field(
                "body", "unparsable", Text("请求内容无法解析", "The request body could not be parsed")
            )
        else:
            mapped = ProblemError(str(exc.detail), http_status=exc.status_code)
        return problem_response(mapped, request)

    async def on_stale(request: Request, exc: Exception) -> JSONResponse:
        # A versioned row (version_id_col) changed between this request's read and its write:
        # another request's change committed first. The same answer as an out-of-date If-Match.
        detail = Text("您修改的内容已被他人修改, 请刷新后重试", "It changed meanwhile; reload and retry")
        return problem_response(StaleVersion(detail), request)

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        if is_connection_problem(exc):
            log.warning("database unavailable: %s", type(exc).__name__)
            return problem_response(ServiceUnavailable(headers={"Retry-After": "1"}), request)
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(InternalError(), request)

    # Database errors get handlers of their own: a handler for `Exception` runs in Starlette's
    # outermost middleware, which raises the error again after answering, and uvicorn then drops
    # the connection (a client saw no 503, just a closed socket).
    for database_error in DATABASE_ERRORS:
        app.add_exception_handler(database_error, on_unexpected)
    app.add_exception_handler(StaleDataError, on_stale)
    app.add_exception_handler(ProblemError, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
