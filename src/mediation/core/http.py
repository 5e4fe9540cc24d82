"""HTTP conventions shared by every endpoint: ETags, cursors, body limits, language, request ids."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import re
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import date, datetime
from html import escape
from typing import Annotated, Any, TypeVar
from urllib.parse import parse_qsl, unquote_plus, urlsplit

from fastapi import Query
from fastapi.routing import APIRoute
from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mediation.core import metrics
from mediation.core.errors import BodyOverLimit, PreconditionRequired, StaleVersion, ValidationFailed
from mediation.core.i18n import Text, negotiate, set_language

K = TypeVar("K", date, datetime)

log = logging.getLogger(__name__)
access_log = logging.getLogger("mediation.access")
# Document uploads: the API's, and the case page's form (the same upload, from a browser).
UPLOAD_PATH = re.compile(r"^(?:/v1/disputes|/cases)/[^/]+/documents$")


def etag_for(version: int) -> str:
    return f'"{version}"'


class HeadServingRoute(APIRoute):
    """A route that serves GET serves HEAD too, as a Starlette route does and FastAPI's does not
    (RFC 9110 §9.3.2): the same status and headers, no body. Download managers and proxies ask a
    file's length and ETag with it before a ranged download. The handler runs as for GET and sees
    the method HEAD: a stored file is not read (Starlette's FileResponse sends its headers alone),
    and the audit trail records no download and no disclosure of personal data (audit/recorder.py).
    Any other body is dropped on its way out (HttpConventionsMiddleware).

    The operation keeps the id FastAPI gave it for GET alone: named from both methods, it would
    take whichever a set lists first, which varies from one process to the next. The contract
    leaves the HEAD operations out (app.py): each would repeat its GET word for word."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.methods and "GET" in self.methods:
            self.operation_id = self.operation_id or self.unique_id
            self.methods.add("HEAD")


# The headers of successful answers, as the contract declares them (under components/headers, by
# these names) on the operations that send them (`sends`); the problems' headers are declared the
# same way (core/errors.py).
RESPONSE_HEADERS: dict[str, dict[str, Any]] = {
    "ETag": {
        "description": "The resource's current version (RFC 9110 §8.8.3): send it as If-Match to "
        "change the resource (412 when it has changed since, 428 without). A read that declares a 304 "
        "takes it as If-None-Match too, answering 304 without a body while it is current.",
        "required": True,
        "schema": {"type": "string"},
    },
    # A handoff's dossier embeds its case: its validator names both versions, and who reads it.
    "DossierETag": {
        "description": 'The dossier\'s validator, `"h<handoff version>-c<case version>-<digest>"`: it '
        "changes with the handoff, with its case (the case's version moves with every change to its "
        "parties, timeline, sittings, documents and agreement) and with what this caller is shown of "
        "them (who reads, whether the numbers are shown, the language; the digest). Send it as "
        "If-None-Match to be answered 304 while none of that changed. As If-Match on the handoff's "
        'steps it stands for the handoff\'s own ETag `"<handoff version>"` its answers carry, compared '
        "strongly by that part: a weak one is refused (412 `weak_etag`), a stale one is 412, and a "
        "change to the case alone does not make it stale.",
        "required": True,
        "schema": {"type": "string"},
    },
    "Location": {
        "description": "The path of the resource created (RFC 9110 §10.2.2).",
        "required": True,
        "schema": {"type": "string"},
    },
    # A download's ETag is its content, not a version: it is no If-Match for anything.
    "FileETag": {
        "description": 'The file\'s SHA-256 (`"<sha256>"`; `W/"<sha256>-masked"` for a generated page '
        "served masked).",
        "required": True,
        "schema": {"type": "string"},
    },
    "Link": {
        "description": 'The next page of a list answered as a bare array (RFC 8288): `<path?query>; rel="next"`, '
        "the same request with the next page's `cursor`; absent on the last page.",
        "required": False,
        "schema": {"type": "string"},
    },
}


# A query value that is a number once its separators are gone: an ID or phone number typed into a
# search in groups the log's redaction does not know ("3306 8119 9001 0112 37", "+86 (138) 0013-8000").
_GROUPED_NUMBER = re.compile(r"(?<==)[\d\s+()（）-]{7,}[\dXx](?=&|$)")


_CASE_NUMBER = re.compile(r"\d{6}-\d{4}-\d+")


def _grouped_numbers_hidden(query: str) -> str:
    """The query with each value that reads as a phone or ID number (ten digits or more once the
    separators are gone; a date has eight) masked; a case number (330681-2026-000056) stays."""

    def hide(match: re.Match[str]) -> str:
        value = match.group()
        digits = re.sub(r"[^\dXx]", "", value)
        if len(digits) < 10 or digits == value or _CASE_NUMBER.fullmatch(value.strip()):
            return value  # ungrouped, the log's redaction masks it as everywhere (138****0001)
        return "*" * len(digits)

    return _GROUPED_NUMBER.sub(hide, query)


def header_ref(component: str) -> dict[str, str]:
    return {"$ref": f"#/components/headers/{component}"}


def sends(status: int, *headers: str) -> dict[int | str, dict[str, Any]]:
    """`responses=` entry: the answer `status` carries `headers` (RESPONSE_HEADERS' names; FastAPI
    merges it into the response the route's model describes). Merge with `|` into the route's
    problem responses."""
    return {status: {"headers": {name: header_ref(name) for name in headers}}}


# RFC 9110 §8.8.3: entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE.
_ENTITY_TAG = re.compile(r'(?:W/)?"[\x21\x23-\x7e\x80-\xff]*"')


def entity_tags(value: str) -> list[str] | None:
    """The entity tags a list of them holds (If-Match, RFC 9110 §13.1.1: `#entity-tag`, empty
    elements allowed, §5.6.1), or None when the value is not such a list: a tag without its
    quotes (`7`), or anything else."""
    tags: list[str] = []
    at = 0
    while True:
        while at < len(value) and value[at] in " \t,":
            at += 1
        if at == len(value):
            return tags
        found = _ENTITY_TAG.match(value, at)
        if found is None:
            return None
        tags.append(found.group())
        at = found.end()
        while at < len(value) and value[at] in " \t":
            at += 1
        if at < len(value) and value[at] != ",":
            return None  # `"7"x`: the tag runs on


def check_if_match(if_match: str | None, version: int) -> None:
    """Optimistic concurrency (RFC 9110 §13.1.1, strong comparison): the client must name the version it saw.

    The ETag is the resource's version number, and a weak `W/"7"` would name the same version as
    `"7"`. It is refused all the same, as the RFC has an origin server do for If-Match: a proxy
    that compresses responses (nginx's gzip) weakens the ETags it passes, and a client would act
    on a version through a proxy that changed what it read. Refused as weak, not as stale, so that
    the client, told the current ETag is the one it sent, does not reread it in a loop; a tag
    without its quotes is told apart the same way, as a header to fix (428), not a version."""
    current = etag_for(version)
    if if_match is None or not if_match.strip(" \t,"):  # no entity tag in it: none sent
        raise PreconditionRequired(
            # Said of whatever carries the version: a case, a sitting, an agreement's draft, a
            # handoff, a body; each answers with its own ETag.
            Text(
                "修改须携带 If-Match: 所修改对象的当前 ETag",
                "Send If-Match with the current ETag of what you change",
            ),
            current_etag=current,
        )
    if "*" in (t.strip() for t in if_match.split(",")):
        raise PreconditionRequired(
            Text("If-Match 须为具体的 ETag, 不能为 *", "If-Match must name a specific ETag, not *"),
            current_etag=current,
        )
    tags = entity_tags(if_match)
    if tags is None:
        raise PreconditionRequired(
            Text(
                'If-Match 格式有误: 应为带双引号的 ETag, 形如 "<版本号>", 当前为 {v}',
                'If-Match is malformed: send the ETag with its double quotes, as "<version>"; current is {v}',
            ).format(v=current),
            current_etag=current,
            code="if_match_malformed",
        )
    if current in tags:
        return
    if all(t.startswith("W/") for t in tags):
        raise StaleVersion(
            Text(
                "If-Match 不能使用弱 ETag (W/...): 修改须按强比较核对版本 (RFC 9110 §13.1.1), "
                "请发送服务返回的 ETag, 当前为 {v}; 压缩响应的代理 (如 nginx gzip) 可能把它改成了弱 ETag",
                "A weak ETag (W/...) cannot be used in If-Match: a change is checked by strong comparison "
                "(RFC 9110 §13.1.1). Send the ETag as the service sent it, current is {v}; a proxy "
                "compressing responses (nginx gzip) may have weakened it",
            ).format(v=current),
            current_etag=current,
            code="weak_etag",
        )
    raise StaleVersion(
        Text("您看到的版本已过期, 当前版本为 {v}", "Your version is out of date; current is {v}").format(
            v=current
        ),
        current_etag=current,
    )


def check_if_match_given(if_match: str | None, version: int) -> None:
    """For a request that creates (a sitting, an agreement's draft, a link): it need not name the
    case's version, its Idempotency-Key makes a retry safe; but one that names it asked to act only
    on that version, and is refused (412) when the case has moved on since, as any change is. An
    empty header names no version (RFC 9110 §5.6.1: an empty list), so it is no condition, as if
    it were not sent; where the header is required it stays a 428."""
    if if_match is None or not if_match.strip(" \t,"):
        return
    check_if_match(if_match, version)


def weakly_equal(one: str, other: str) -> bool:
    """RFC 9110 §8.8.3.2, weak comparison: the same opaque tag, whether either is marked weak."""
    return one.removeprefix("W/") == other.removeprefix("W/")


def not_modified(request: Request, etag: str, headers: Mapping[str, str] | None = None) -> Response | None:
    """A conditional read (RFC 9110 §13.1.2): 304 Not Modified when the request's If-None-Match
    names the representation it would be answered, else None and the handler answers in full.

    `etag` is the validator of the representation this request would get, `headers` what else the
    200 would carry that a 304 must repeat (§15.4.5: Cache-Control, Vary; the middleware adds its
    own Cache-Control and `Vary: Accept-Language`). The tags are compared weakly (§13.1.2), so the
    `W/"7"` a compressing proxy passes on still validates `"7"`; `*` matches, since the handler
    only asks once it found the resource. GET and HEAD only: other methods are no reads, and
    their preconditions are If-Match's (`check_if_match`). A field that is no list of entity tags
    (`7` without its quotes, `*` beside tags) is ignored, as if absent: the full answer is always
    a correct one, while refusing the read for a validator nobody can use would only stop a
    poller. Several If-None-Match lines are one list (§5.3).

    A 304 shows nothing: the handler asks before it builds its answer, and so notes no disclosure
    of personal data for the audit trail (个人信息保护法 Art. 55 records what is shown)."""
    if request.method not in ("GET", "HEAD"):
        return None
    fields = request.headers.getlist("if-none-match")
    if not fields:
        return None
    value = ", ".join(fields)
    if value.strip(" \t") == "*":
        matched = True
    else:
        tags = entity_tags(value)
        matched = tags is not None and any(weakly_equal(tag, etag) for tag in tags)
    if not matched:
        return None
    return Response(status_code=304, headers={"ETag": etag, **(headers or {})})


# The `Vary` of a read whose body depends on who asks (numbers masked or shown, parts withheld):
# a cache keeps one per credential (RFC 9110 §12.5.5), besides the middleware's Accept-Language.
BY_CREDENTIAL = "Authorization, X-API-Key"

# The 304 a conditional read answers, as the contract declares it beside the 200 (`sends`).
NOT_MODIFIED_DESCRIPTION = (
    "Not Modified (RFC 9110 §15.4.5): the request's If-None-Match names the representation this "
    "read would answer (weak comparison; `*` matches). No body; the ETag, Cache-Control and Vary "
    "the 200 would carry. Nothing shown, so no `pii.read` is recorded."
)


def not_modified_response(etag_header: str = "ETag") -> dict[int | str, dict[str, Any]]:
    """`responses=` entry of a read that answers conditional requests: its 304, with the ETag
    (declared under `etag_header`, a RESPONSE_HEADERS name) the 200 carries."""
    return {304: {"description": NOT_MODIFIED_DESCRIPTION, "headers": {"ETag": header_ref(etag_header)}}}


def keyset_cursor(key: date | datetime, row_id: uuid.UUID) -> str:
    """The cursor after a row of a list ordered by (key, id)."""
    return encode_cursor({"k": key.isoformat(), "id": str(row_id)})


def keyset_position(cursor: str, parse: Callable[[str], K]) -> tuple[K, uuid.UUID]:
    """The (key, id) a `keyset_cursor` holds; anything else is a 422 naming the cursor."""
    position = decode_cursor(cursor)
    try:
        return parse(str(position["k"])), uuid.UUID(str(position["id"]))
    except (KeyError, ValueError) as exc:
        raise ValidationFailed.of_field(
            "cursor", "invalid_cursor", Text("分页游标无效", "Invalid pagination cursor"), location="query"
        ) from exc


def next_link(request: Request, cursor: str) -> str:
    """The `Link` header value (RFC 8288) naming the next page: the same path and query with the
    next `cursor`. A relative reference, resolved against the request's URL (§3.2), so it holds
    behind a proxy that rewrites the host."""
    url = request.url.include_query_params(cursor=cursor)
    return f'<{url.path}?{url.query}>; rel="next"'


# The lists answered as bare JSON arrays (they did before they paged) take these parameters, name
# the next page in a `Link` header (`link_next_page`), and say so in their description.
PageLimit = Annotated[int, Query(ge=1, le=500)]
PageCursor = Annotated[str | None, Query(max_length=500)]
PAGED_ARRAY = (
    ' The answer is a JSON array; when more follow, it carries `Link: <...>; rel="next"` (RFC 8288), '
    "the same request with the `cursor` of the next page. A cursor not handed out here is 422 "
    "`invalid_cursor`."
)


def link_next_page(request: Request, response: Response, cursor: str | None) -> None:
    """Names the next page of a list answered as a bare JSON array in a `Link` header (`next_link`);
    nothing on the last page. Such a list answered an array before it paged: a body of
    `{items, next_cursor}`, as the other lists answer, would break the clients that read it."""
    if cursor is not None:
        response.headers["Link"] = next_link(request, cursor)


def encode_cursor(values: dict[str, Any]) -> str:
    raw = json.dumps(values, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, field: str = "cursor") -> dict[str, Any]:
    """The position a page's cursor holds; refused naming the query parameter it came in."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(value, dict):
            raise ValueError
        return value
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise ValidationFailed(
            Text("分页游标无效", "Invalid pagination cursor"),
            errors=[
                {
                    "field": field,
                    "location": "query",
                    "code": "invalid_cursor",
                    "message": Text("分页游标无效", "Invalid pagination cursor").get(),
                }
            ],
        ) from exc


def new_request_id() -> str:
    """26 characters of RFC 4648 base32 (a-z, 2-7): no run of digits a log scanner could take for
    an ID or phone number, unlike hex."""
    return base64.b32encode(secrets.token_bytes(16)).decode().rstrip("=").lower()


class HttpConventionsMiddleware:
    """Pure ASGI: request language, request id, and the request body ceiling (413 before reading it)."""

    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int,
        default_language: str = "zh",
        upload_max_bytes: int | None = None,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.default_language = default_language
        # Document uploads carry files: their ceiling is the file limit plus multipart framing.
        self.upload_max_bytes = upload_max_bytes or max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        set_language(negotiate(headers.get("accept-language"), self.default_language))
        request_id = headers.get("x-request-id") or new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        limit = self.max_body_bytes
        if scope["method"] == "POST" and UPLOAD_PATH.match(scope["path"]):
            limit = self.upload_max_bytes

        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                sent = MutableHeaders(scope=message)
                sent["X-Request-ID"] = request_id
                # Messages and labels follow the request's language: a cache keeps one per language.
                sent.add_vary_header("Accept-Language")
                # The API's answers hold personal data whatever the credential (a cache does not
                # know X-API-Key as it knows Authorization): kept by no cache unless a route says so.
                if scope["path"].startswith("/v1/") and "cache-control" not in sent:
                    sent["Cache-Control"] = "no-store"
                # The access log: the query string can hold search text, so the log's redaction
                # (mediation.core.logging) masks any ID or phone number in it. It is logged decoded:
                # percent-encoded, "电话13800000001" ends "...%9D13800000001", and a number run on
                # from a letter is no number to the redaction.
                query = _grouped_numbers_hidden(
                    unquote_plus(scope.get("query_string", b"").decode("latin-1"), errors="replace")
                )
                elapsed = time.perf_counter() - started
                access_log.info(
                    "%s %s%s %s %.1fms id=%s",
                    scope["method"],
                    scope["path"],
                    f"?{query}" if query else "",
                    message["status"],
                    elapsed * 1000,
                    request_id,
                )
                metrics.observe_request(scope, message["status"], elapsed)
            elif (
                message["type"] == "http.response.body" and scope["method"] == "HEAD" and message.get("body")
            ):
                # RFC 9110 §9.3.2: HEAD is answered with GET's headers (Content-Length included),
                # never its body; ASGI servers do not all drop it themselves.
                message = {**message, "body": b""}
            await send(message)

        query = scope.get("query_string", b"")
        if b"%00" in query or b"\x00" in query:
            await self._nul_in_query(query, scope, receive, send_with_id)
            return

        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            await self._too_large(scope, receive, send_with_id, limit)
            return

        received = 0
        overflowed = False

        async def limited_receive() -> Message:
            nonlocal received, overflowed
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    overflowed = True
                    raise BodyOverLimit(limit)
            return message

        if not is_page(scope):
            await self.app(scope, limited_receive, send_with_id)
            return
        replaced = False

        async def send_page_for_overflow(message: Message) -> None:
            # A body sent without its length (chunked) overflows while the app reads it, and the
            # app answers the API's 413: for a page, that answer is replaced by the page's.
            nonlocal replaced
            if replaced:
                return
            if overflowed and message["type"] == "http.response.start" and message["status"] == 413:
                replaced = True
                await self._too_large(scope, receive, send_with_id, limit)
                return
            await send_with_id(message)

        await self.app(scope, limited_receive, send_page_for_overflow)

    async def _nul_in_query(self, query: bytes, scope: Scope, receive: Receive, send: Send) -> None:
        """A query parameter holding U+0000, which PostgreSQL cannot compare or store: refused (422,
        the parameter named) before any route reads it, as a body's text is by its schema."""
        from starlette.requests import Request

        from mediation.core.errors import ValidationFailed, problem_response

        if is_page(scope):
            said = "页面地址中含有不能处理的空字符 (U+0000), 页面没有打开。"
            page = plain_page(scope, 422, "页面地址有误", said, "请从页面上的链接或菜单重新打开。")
            await page(scope, receive, send)
            return
        pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True, encoding="utf-8", errors="replace")
        name = next((k for k, v in pairs if "\x00" in k or "\x00" in v), "query").replace("\x00", "")
        message = Text("不能含空字符 (U+0000)", "Text may not contain the NUL character (U+0000)")
        error = {"field": name, "location": "query", "code": "null_character", "message": message.get()}
        problem = ValidationFailed(Text(f"以下字段有误: {name}", f"Invalid fields: {name}"), errors=[error])
        await problem_response(problem, Request(scope))(scope, receive, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        from starlette.requests import Request

        from mediation.core.errors import payload_too_large, problem_response

        if is_page(scope):
            await too_large_page(scope, limit)(scope, receive, send)
            return
        # As the same body sent chunked is answered, refused while it is read (BodyOverLimit).
        await problem_response(payload_too_large(limit), Request(scope))(scope, receive, send)


def is_page(scope: Scope) -> bool:
    """An address of the pages, not of the API under /v1: what is sent there is a browser's form,
    and its refusals are pages in Chinese, not problem documents."""
    return not scope["path"].startswith("/v1/")


def size_text(size: int) -> str:
    """A byte count the way a clerk reads it: 1 MB, 64 KB, 500 字节."""
    for unit, name in ((1024 * 1024, "MB"), (1024, "KB")):
        if size >= unit:
            return f"{size / unit:.1f}".removesuffix(".0") + f" {name}"
    return f"{size} 字节"


# The pages answering what is refused before any route (or the pages' templates and session) is
# reached: a form too large, an address holding a NUL, a page that took too long. Written here,
# beside the checks that refuse them; they look like the pages' other error pages
# (web/templates/error.html) and hold nothing but what they say.
PLAIN_PAGE = """<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · 矛盾纠纷调处化解中心</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/static/app.css">
</head>
<body>
<main id="main">
<section class="card narrow">
<h1>{title}</h1>
<p class="error banner" role="alert">{said}</p>
<p>{advice}</p>
<p>{back}<a class="button" href="/">回到首页</a></p>
</section>
</main>
</body>
</html>
"""
# Nothing to run and nothing to frame: the page is its text and the pages' stylesheet.
PLAIN_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src data:; "
    "frame-ancestors 'none'; form-action 'none'; base-uri 'none'",
}


def plain_page(
    scope: Scope, status: int, title: str, said: str, advice: str, headers: Mapping[str, str] | None = None
) -> HTMLResponse:
    request_headers = Headers(scope=scope)
    back = ""
    # The page the request came from, when it is one of ours: a way back besides the browser's.
    # Only a path on this site: "//host/x" links to another site, and so does "/\host/x", since
    # browsers read a backslash in a link as a slash.
    referer = urlsplit(request_headers.get("referer", ""))
    path = referer.path
    if (
        referer.netloc
        and referer.netloc == request_headers.get("host")
        and path.startswith("/")
        and not path.startswith("//")
        and "\\" not in path
    ):
        target = path + (f"?{referer.query}" if referer.query else "")
        back = f'<a class="button primary" href="{escape(target)}">返回原页面</a> '
    page = PLAIN_PAGE.format(title=escape(title), said=escape(said), advice=escape(advice), back=back)
    return HTMLResponse(page, status_code=status, headers={**PLAIN_PAGE_HEADERS, **(headers or {})})


def too_large_page(scope: Scope, limit: int) -> HTMLResponse:
    return plain_page(
        scope,
        413,
        "提交的内容过大",
        f"本次提交的内容超过 {size_text(limit)} 的上限, 未被接收, 也没有保存任何内容。",
        '请使用浏览器的"后退"回到原页面 (已填写的内容一般仍在), 删减过长的文字后重新提交。',
    )


class TimeoutMiddleware:
    """Pure ASGI: a handler that runs longer than `seconds` is cancelled (rolling back its
    transaction) and answered 503 with Retry-After, instead of holding a worker and its locks.

    The limit is on the handler's own work. It stops once the response has started: the handler's
    transaction is over by then, and a client reading a large download slowly only takes the time
    of the sending (cut off there, a court would keep a truncated file). An upload's waits for the
    client's bytes do not count either (a 20 MB scan on a slow line would otherwise fail on every
    retry); instead an upload whose body sends nothing for `seconds` is refused (408)."""

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False
        body_read = False
        limit: asyncio.Timeout | None = None
        loop = asyncio.get_running_loop()

        def deadline() -> float | None:
            """When the handler's time runs out; None once it has, or once the clock stopped."""
            return None if limit is None or limit.expired() else limit.when()

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if limit is not None and deadline() is not None:
                    limit.reschedule(None)
            await send(message)

        async def upload_receive() -> Message:
            nonlocal body_read
            until = deadline()
            if body_read or limit is None or until is None:
                return await receive()
            left = until - loop.time()
            limit.reschedule(None)  # the handler's clock stops while the client sends
            try:
                async with asyncio.timeout(self.seconds):
                    message = await receive()
            except TimeoutError:
                from mediation.core.errors import RequestBodyTimeout

                raise RequestBodyTimeout(
                    Text("上传已连续 {s} 秒未收到任何数据", "The upload sent nothing for {s} s").format(
                        s=self.seconds
                    ),
                    headers={"Connection": "close"},  # the rest of the body is never read
                ) from None
            finally:
                limit.reschedule(loop.time() + left)
            body_read = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        uploading = scope["method"] == "POST" and UPLOAD_PATH.match(scope["path"]) is not None
        try:
            async with asyncio.timeout(self.seconds) as limit:
                await self.app(scope, upload_receive if uploading else receive, tracking_send)
        except TimeoutError:
            log.warning("request timed out after %.1f s: %s %s", self.seconds, scope["method"], scope["path"])
            if started:
                return  # the status line is out; the client sees a truncated response
            from mediation.core.errors import RequestTimeout, problem_response

            if getattr(scope.get("route"), "is_page", False):
                said = f"系统处理这次请求超过 {self.seconds:g} 秒, 已取消, 本次提交的内容 (如有) 没有保存。"
                page = plain_page(
                    scope, 503, "处理超时", said, "请稍候片刻后刷新或重新提交。", {"Retry-After": "1"}
                )
                await page(scope, receive, send)
                return
            response = problem_response(
                RequestTimeout(
                    Text("请求处理超过 {s} 秒", "The request took longer than {s} s").format(s=self.seconds),
                    headers={"Retry-After": "1"},
                )
            )
            await response(scope, receive, send)


# request.state: what the request does once its answer is sent (`after_response`).
_AFTER_RESPONSE = "after_response"


def after_response(request: Request) -> list[Callable[[], Awaitable[None]]]:
    """What the request does in transactions of its own once its answer has been sent, so that the
    answer's time does not tell whether it had anything to do: the alert a refused status lookup
    asks for, which only a case guessed at asks for (disputes.lookup). Each runs once, in order,
    within the request timeout; one that fails is logged and the rest still run."""
    steps: list[Callable[[], Awaitable[None]]] | None = getattr(request.state, _AFTER_RESPONSE, None)
    if steps is None:
        steps = []
        setattr(request.state, _AFTER_RESPONSE, steps)
    return steps


class AfterResponseMiddleware:
    """Pure ASGI: runs the request's `after_response` steps once the application has sent its
    answer (the server has it; the client may be reading it already), or given up with an error."""

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        except Exception:
            await self._steps(scope)
            raise
        await self._steps(scope)  # not when cancelled: the server is going, or the request timed out

    async def _steps(self, scope: Scope) -> None:
        steps = scope.get("state", {}).pop(_AFTER_RESPONSE, None) or []
        for step in steps:
            try:
                async with asyncio.timeout(self.seconds):
                    await step()
            except Exception:
                log.warning("a step after the response failed", exc_info=True)
