"""Typed errors, each mapped to one HTTP status and one RFC 9457 problem `type`.

The `type` values are stable relative URIs (`/problems/<slug>`); the app serves a short page for
each, so they dereference on any deployment while comparing equal everywhere.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
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
    title = Text("案件已被他人修改, 请刷新后重试", "The case has changed; reload and retry")


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


def json_body_required(content_type: str | None) -> UnsupportedMediaType:
    """A body was sent labelled as something other than JSON, or not labelled at all."""
    given = content_type or "-"
    return UnsupportedMediaType(
        Text(
            "请求体应为 JSON (Content-Type: application/json)，收到的是 {t}",
            "The request body must be JSON (Content-Type: application/json); it was sent as {t}",
        ).format(t=given),
        detected_media_type=content_type,
        allowed_media_types=["application/json"],
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


class PayloadTooLarge(ProblemError):
    status = 413
    slug = "payload-too-large"
    title = Text("请求体过大", "Request body too large")


class RangeNotSatisfiable(ProblemError):
    status = 416
    slug = "range-not-satisfiable"
    title = Text("请求的范围超出文件长度", "The requested range lies beyond the file")


class UnsupportedMediaType(ProblemError):
    status = 415
    slug = "unsupported-media-type"
    title = Text("不支持的请求格式", "Unsupported media type")


class MethodNotAllowed(ProblemError):
    status = 405
    slug = "method-not-allowed"
    title = Text("不支持该请求方法", "Method not allowed")


class ServiceUnavailable(ProblemError):
    status = 503
    slug = "service-unavailable"
    title = Text("服务暂时不可用, 请稍后重试", "Service temporarily unavailable; retry shortly")


class InternalError(ProblemError):
    pass


class Unauthenticated(ProblemError):
    status = 401
    slug = "unauthenticated"
    title = Text("未登录或凭证无效", "Missing or invalid credentials")

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


class RequestTimeout(ProblemError):
    status = 503
    slug = "request-timeout"
    title = Text("请求处理超时, 请稍后重试", "The request took too long; retry shortly")


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
    """RFC 9457 problem details."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(examples=["/problems/guard-failed"])
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    reasons: list[Reason] | None = Field(default=None, description="Guard failures, for guard-failed.")
    errors: list[FieldError] | None = Field(default=None, description="Field errors, for validation-error.")


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
        status: {
            "model": Problem,
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
            "description": " / ".join(f"{p.slug}: {p.title.en}" for p in items),
        }
        for status, items in sorted(by_status.items())
    }


# ---- rendering ---------------------------------------------------------------------------------

_PYDANTIC_ZH: dict[str, str] = {
    "missing": "必填项",
    "extra_forbidden": "不允许的字段 (客户端不能写入该字段)",
    "string_too_short": "内容过短",
    "string_too_long": "内容过长",
    "null_character": "不能含空字符 (U+0000)",
    "url_too_long": "网址过长",
    "string_pattern_mismatch": "格式不正确",
    "string_type": "应为文本",
    "int_parsing": "应为整数",
    "int_type": "应为整数",
    "decimal_parsing": "应为数字",
    "decimal_type": "应为数字",
    "greater_than": "数值过小",
    "greater_than_equal": "数值过小",
    "less_than": "数值过大",
    "less_than_equal": "数值过大",
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
        if code == "value_error" and "error" in ctx:
            # Our own validators raise ValueError(Text): keep the requested language.
            raw = ctx["error"]
            message = raw.args[0].get(language) if raw.args and isinstance(raw.args[0], Text) else str(raw)
            code = getattr(raw, "code", "invalid_value")
        elif language == "zh" and code in _PYDANTIC_ZH:
            message = _PYDANTIC_ZH[code]
        out.append({"field": path, "location": location, "code": code, "message": message})
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


def install_handlers(app: FastAPI) -> None:
    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ProblemError)
        return problem_response(exc, request)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = field_errors(exc.errors())
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
            mapped = PayloadTooLarge()
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
