from __future__ import annotations

import difflib
import ipaddress
import json
import os
import re
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values
from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from mediation.core.pii import parse_encryption_keys, parse_index_key

# RFC 7518 §3.2: an HMAC-SHA256 key at least as long as the hash.
MIN_JWT_SECRET_BYTES = 32

# The database drivers the service speaks.
DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")
# What providers and `psql` hand out: the asyncpg driver is meant (the service has no other).
_PLAIN_POSTGRES = re.compile(r"^postgres(?:ql)?://", re.IGNORECASE)

# MEDIATION_* variables read outside these settings, by the tools that come with the service.
OTHER_VARIABLES = frozenset(
    {
        "MEDIATION_MIGRATIONS_DIR",  # migrate.py: the Alembic scripts away from the source tree
        "MEDIATION_API_KEY",  # examples/: a court's or body's client
        "MEDIATION_BASE_URL",  # examples/: where the client finds the service
        "MEDIATION_TEST_PG_DSN",  # tests: the PostgreSQL server they make databases on
    }
)
OTHER_PREFIXES = ("MEDIATION_BENCH_",)  # bench/


class ConfigurationError(Exception):
    """A configuration the service cannot run with, told to the operator line by line (the
    variables named, their values not repeated: they may be secrets)."""

    def __init__(self, *lines: str) -> None:
        super().__init__("; ".join(lines))
        self.lines = lines


class Settings(BaseSettings):
    """Runtime configuration, read from `MEDIATION_*` environment variables (or a `.env` file)."""

    model_config = SettingsConfigDict(env_prefix="MEDIATION_", env_file=".env", extra="ignore")

    database_url: str = Field(
        default_factory=lambda: f"sqlite+aiosqlite:///{Path.cwd() / 'mediation.db'}",
        description="SQLAlchemy URL; sqlite+aiosqlite (embedded default) or postgresql+asyncpg "
        "(postgresql:// and postgres:// are read as postgresql+asyncpg://).",
    )
    db_pool_size: int = Field(default=10, ge=1)
    db_max_overflow: int = Field(default=20, ge=0)
    db_pool_timeout_seconds: float = Field(default=10.0, gt=0)
    sqlite_busy_timeout_ms: int = Field(default=30_000, ge=0)

    max_body_bytes: int = Field(default=1_048_576, ge=1)

    idempotency_ttl_hours: int = Field(default=24, ge=1)
    idempotency_lock_seconds: int = Field(default=60, ge=1)

    # Legal periods (domain.md §4); the law's numbers are defaults, a center may configure them.
    confirmation_window_days: int = Field(default=30, ge=1)  # 民诉法 Art. 205; 人民调解法 Art. 33
    labour_mediation_days: int = Field(default=15, ge=1)  # 劳动争议调解仲裁法 Art. 14
    # How long before its registration a referred case may say the resident applied (申请日): a
    # petition office routes within 15 days (信访工作条例), a court decides on filing within 7
    # (民诉法 Art. 126) before it delegates, a 12345 work order is sent on within a working day.
    # A day further back is most likely a slip of the year, and it would move the limitation period
    # (民法典 Art. 195) and the labour arbitration year (劳动争议调解仲裁法 Art. 27).
    referred_application_max_days: int = Field(default=90, ge=0, le=365)
    # ---- clocks: deadline rules (default: the shipped rule file) and the scheduler, which runs
    # inside the API process unless `clock_in_app` is off (then run `mediation scheduler`).
    clock_rules_file: Path | None = Field(default=None, description="A center's own clock rule file (JSON).")
    clock_in_app: bool = Field(default=True, description="Run the scheduler inside the API process.")
    clock_interval_seconds: float = Field(default=60.0, gt=0)
    # How often each process reads the loaded holiday schedules again (clocks.calendar).
    calendar_refresh_seconds: float = Field(default=60.0, gt=0)
    supervision_response_days: int = Field(
        default=3, ge=1, le=60, description="Default days to answer a 督办 order."
    )
    visit_max_attempts: int = Field(
        default=3, ge=1, le=10, description="Unreachable tries before a visit is impossible."
    )

    # ---- identity and access
    # Secrets come from the environment in production, all three. With none set, an embedded SQLite
    # database keeps them in a file next to it (generated once, mode 0600) so a fresh checkout
    # runs with nothing set; PostgreSQL only in a file named here (core.secrets).
    secrets_file: Path | None = Field(
        default=None, description="Where the secrets are kept when the environment sets none."
    )
    jwt_secret: str | None = Field(default=None, description="HMAC key for staff access tokens.")
    jwt_issuer: str = "mediation"
    jwt_audience: str = "mediation-api"
    access_token_minutes: int = Field(default=15, ge=1, le=24 * 60)
    jwt_leeway_seconds: int = Field(default=10, ge=0, le=300)
    # RFC 9106 §4 second recommended option (t=3, 64 MiB, p=4); hashes made with other parameters
    # are upgraded at the next successful sign-in. The bounds are RFC 9106 §3.1's: at least one
    # pass, 1 to 2^24-1 lanes, and at least 8 KiB of memory per lane (checked below).
    argon2_time_cost: int = Field(default=3, ge=1, le=2**32 - 1)
    argon2_memory_kib: int = Field(default=65_536, ge=8, le=2**32 - 1)
    argon2_parallelism: int = Field(default=4, ge=1, le=2**24 - 1)
    # Fewer than 8 characters is below any current guidance (NIST SP 800-63B §3.1.1.2).
    min_password_length: int = Field(default=12, ge=8, le=256)
    # 等保 level 3 (GB/T 22239-2019 8.1.4.1 b, 登录失败处理): wrong passwords in a row lock the
    # account for a while, at the address they came from (identity/throttle.py); a longer run from
    # any addresses locks it everywhere but where it signed in from before.
    sign_in_max_failures: int = Field(
        default=5,
        ge=1,
        le=1000,
        description="Wrong passwords in a row from one address that lock an account at that address.",
    )
    sign_in_account_max_failures: int = Field(
        default=50,
        ge=1,
        le=100_000,
        description="Wrong passwords in a row, from any addresses, that lock an account at every "
        "address it has not signed in from in the last 30 days.",
    )
    sign_in_lock_minutes: int = Field(
        default=15, ge=1, le=24 * 60, description="How long a locked account is refused."
    )

    # ---- personal data (个人信息保护法 Art. 51: encryption and de-identification)
    pii_encryption_keys: str | None = Field(
        default=None, description='AES-256 keys "id:base64url,...", the first one encrypts.'
    )
    pii_index_key: str | None = Field(default=None, description="HMAC key of the party lookup index.")

    # ---- audit (网络安全法 Art. 21: at least six months; 个人信息保护法 Art. 55-56 records: 3 years)
    audit_retention_days: int = Field(default=3 * 365, ge=184)
    # Keyed seals of the chain's head (audit/seal.py), so a rewrite by someone with full rights over
    # the database shows. "key,older key": the first seals, all verify; unset, a key derived from
    # the personal-data index key.
    audit_seal_keys: str | None = Field(
        default=None,
        description="HMAC keys sealing the audit chain, at least 32 bytes each; the first seals.",
    )
    audit_seal_seconds: float = Field(default=300.0, gt=0, description="How often the audit chain is sealed.")
    # `GET /metrics` (Prometheus) answers only a scraper that sends this as a bearer token; unset,
    # the address answers 404. The figures tell how busy the center is and how many cases are at
    # risk, which is nobody's business but the operators'.
    metrics_token: str | None = Field(
        default=None, description="Bearer token of the Prometheus scraper, at least 32 bytes."
    )

    # ---- limits
    rate_limit_per_minute: int = Field(default=600, ge=1, description="Per signed-in principal.")
    anonymous_rate_limit_per_minute: int = Field(
        default=20,
        ge=1,
        description="Per client address, for sign-in and the party status lookup (there, wrong answers only).",
    )
    # Per case, in the database, so that every process counts alike: a guesser spreading attempts
    # over many addresses is slowed down at the case, and the center is asked to give a new code.
    lookup_max_failures: int = Field(
        default=10,
        ge=1,
        le=1000,
        description="Wrong query codes for one case, within `lookup_failure_window_hours` and since the "
        "last right one or the last new code, after which each further code is examined only once a "
        "wait has passed since the last wrong one: 1 s, doubling with every further wrong code, up to "
        "`lookup_max_wait_seconds` (a stranger guessing can slow anyone's lookup, so the wait is short "
        "and the right code gets in once it has passed). A code given during the wait is refused "
        "unexamined and lengthens nothing.",
    )
    lookup_failure_window_hours: int = Field(
        default=24,
        ge=1,
        le=24 * 30,
        description="How far back wrong query codes count towards the waits: once they are older than "
        "this, a case's lookup answers without a wait again.",
    )
    lookup_max_wait_seconds: int = Field(
        default=300,
        ge=1,
        le=3600,
        description="The longest wait between two examined query codes of one case once "
        "`lookup_max_failures` wrong ones were given (disputes/lookup.py: with 8 characters of 32, "
        "one code a wait keeps guessing out of reach).",
    )
    # The reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (uvicorn's
    # forwarded_allow_ips: addresses or networks, comma-separated, or "*"). The client address is
    # what the per-address limits above count and what the audit trail records: behind a proxy on
    # another host (another container) that is not listed, every resident and clerk would be that
    # proxy's one address, and share its 20 sign-ins a minute.
    forwarded_allow_ips: str = Field(default="127.0.0.1", min_length=1)
    request_timeout_seconds: float = Field(default=30.0, gt=0)
    write_concurrency: int = Field(
        default=2,
        ge=1,
        description=(
            "Write transactions one process runs at once on PostgreSQL; more wait their turn (up to "
            "the pool timeout, then 503) before they begin. "
            "Every write ends in the same journal lock, so more at once only lengthens the time each "
            "holds it (see docs/benchmarks.md)."
        ),
    )
    db_statement_timeout_ms: int = Field(default=30_000, ge=0)

    # ---- events and webhooks
    relay_in_app: bool = Field(default=True, description="Run the event relay inside the API process.")
    relay_poll_seconds: float = Field(default=1.0, gt=0)
    relay_batch_size: int = Field(default=50, ge=1, le=1000)
    relay_lease_seconds: float = Field(default=60.0, gt=0, description="A claimed delivery's lease.")
    # A relay sends this many deliveries at once, to one subscription at most the second number:
    # a receiver that answers slowly or not at all holds up its own deliveries only.
    relay_max_in_flight: int = Field(default=100, ge=1, le=10_000)
    relay_max_in_flight_per_subscription: int = Field(default=20, ge=1, le=10_000)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    # Standard Webhooks' example schedule after the first attempt: 5 s, 5 min, 30 min, 2 h, 5 h,
    # 10 h, 10 h; each wait gets +-20 % jitter so endpoints that fail together don't retry together.
    # Given as JSON (`[5, 300]`) or comma-separated (`5,300`).
    webhook_retry_schedule_seconds: Annotated[list[float], NoDecode] = [
        5,
        300,
        1800,
        7200,
        18000,
        36000,
        36000,
    ]
    webhook_secret_overlap_hours: float = Field(default=24, ge=0)
    # Delivered, dead and cancelled deliveries, with their attempts, are deleted this long after
    # their last attempt (by the relay, a batch at a time); pending ones never.
    webhook_retention_days: float = Field(default=30, gt=0)
    # The event feed's events are deleted this long after they happened (by the relay, oldest
    # first; the timeline and the audit trail keep the history); 0 keeps them for ever. At least
    # 30 days, so a reader offline over a long holiday (春节) still finds its place.
    event_retention_days: int = Field(default=365, ge=0)
    # A subscription whose deliveries have failed this long without one success is disabled when
    # the next of them goes dead (Standard Webhooks and Svix: 5 days).
    webhook_disable_after_failing_days: float = Field(default=5, gt=0)
    webhook_allow_private_targets: bool = Field(
        default=False, description="Allow loopback, private and link-local webhook URLs (testing only)."
    )
    # Test-only fault injection for the relay's crash-safety tests: "after_claim" or "after_send"
    # makes the relay process kill itself (SIGKILL) at that point.
    relay_fault: str | None = None
    # Shorter than the request time limit, which also covers authentication and the final read.
    feed_max_wait_seconds: float = Field(default=25.0, ge=0)

    # ---- documents
    documents_dir: Path = Field(
        default_factory=lambda: Path.cwd() / "mediation-documents",
        description="Content-addressed document store on the local filesystem.",
    )
    document_max_bytes: int = Field(default=20 * 1024 * 1024, ge=1)
    case_document_max_bytes: int = Field(default=200 * 1024 * 1024, ge=1)

    timezone: str = "Asia/Shanghai"
    # The languages the service speaks (core.i18n): any other would be announced in
    # Content-Language while the text stays Chinese.
    default_language: Literal["zh", "en"] = "zh"

    @field_validator("database_url")
    @classmethod
    def _database_driver(cls, value: str) -> str:
        # Checked here: another driver fails at the first connection, after `/readyz` has said the
        # process started. The URL is not repeated in the refusal: it may hold a password.
        value = _PLAIN_POSTGRES.sub("postgresql+asyncpg://", value.strip(), count=1)
        try:
            driver = make_url(value).drivername
        except ArgumentError:
            raise ValueError("is not a database URL") from None
        if driver not in DRIVERS:
            raise ValueError(
                f"the driver {driver!r} is not one the service speaks: use "
                "sqlite+aiosqlite:///path/to/file.db or postgresql+asyncpg://user:password@host/database"
            )
        url = make_url(value)
        if driver == "postgresql+asyncpg" and "sslmode" in url.query:
            # libpq's `sslmode=require`, as providers hand URLs out, is asyncpg's `ssl=require`
            # (the same modes); asyncpg takes no `sslmode` and would fail at the first connection.
            mode = url.query["sslmode"]
            mode = mode[-1] if isinstance(mode, tuple) else mode
            if mode not in SSL_MODES:
                raise ValueError(f"sslmode must be one of {', '.join(SSL_MODES)}")
            url = url.difference_update_query(["sslmode"]).update_query_dict({"ssl": mode})
            return url.render_as_string(hide_password=False)
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        # Every legal period and case number is counted in it: an unknown zone fails every request.
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone (such as Asia/Shanghai)") from None
        return value

    @field_validator("clock_rules_file")
    @classmethod
    def _rules_readable(cls, value: Path | None) -> Path | None:
        # Read at every intake: a file missing or malformed would fail each one while `/readyz`
        # says ready.
        if value is None:
            return value
        from mediation.clocks import rules

        try:
            rules.parse(value.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ValueError(f"cannot read {value}: {exc.strerror or exc}") from None
        except (ValidationError, ValueError) as exc:
            first = str(exc).strip().splitlines()
            raise ValueError(f"{value} is not a clock rule file: {' '.join(first[:3])}") from None
        return value

    @field_validator("webhook_retry_schedule_seconds", mode="before")
    @classmethod
    def _schedule_list(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                try:
                    return json.loads(text)
                except ValueError:
                    raise ValueError("is neither a JSON list nor comma-separated seconds") from None
            return [part.strip() for part in text.split(",")] if text else []
        return value

    @field_validator("webhook_retry_schedule_seconds")
    @classmethod
    def _schedule_usable(cls, value: list[float]) -> list[float]:
        # Empty, a failed delivery would never be tried again; a negative wait is no wait.
        if not value:
            raise ValueError("must name at least one wait (seconds after a failed attempt)")
        if any(wait < 0 for wait in value):
            raise ValueError("a wait cannot be negative")
        return value

    @field_validator("default_language", mode="before")
    @classmethod
    def _language_tag(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("jwt_secret", "metrics_token")
    @classmethod
    def _secret_long_enough(cls, value: str | None) -> str | None:
        # RFC 7518 §3.2: an HS256 key of at least 256 bits; a short one can be guessed offline
        # from any token, and a guessed key forges every role's token. The metrics token is held
        # to the same length: it is a password a scraper sends on every scrape.
        if value is not None and len(value.encode()) < MIN_JWT_SECRET_BYTES:
            raise ValueError(
                f"must be at least {MIN_JWT_SECRET_BYTES} bytes "
                f"(got {len(value.encode())}); generate one with "
                '`python -c "import secrets; print(secrets.token_urlsafe(32))"`'
            )
        return value

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _proxy_addresses(cls, value: str) -> str:
        entries = [entry.strip() for entry in value.split(",")]
        for entry in entries:
            if entry == "*":
                continue
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"{entry!r} is not an address, a network or *") from None
        return ",".join(entries)

    @field_validator("event_retention_days")
    @classmethod
    def _retention_zero_or_a_month(cls, value: int) -> int:
        if 0 < value < 30:
            raise ValueError("must be 0 (keep every event) or at least 30 days")
        return value

    @field_validator("pii_encryption_keys")
    @classmethod
    def _encryption_keys_usable(cls, value: str | None) -> str | None:
        # Checked here, as the other keys are: a malformed one stops every command and the
        # service at start with the variable named, not with a traceback where it is first used.
        if value:  # empty is unset: generated for development (core.secrets)
            parse_encryption_keys(value)
        return value

    @field_validator("pii_index_key")
    @classmethod
    def _index_key_usable(cls, value: str | None) -> str | None:
        if value:
            parse_index_key(value)
        return value

    @field_validator("audit_seal_keys")
    @classmethod
    def _seal_keys_long_enough(cls, value: str | None) -> str | None:
        # RFC 2104 §3: a key shorter than the hash's output weakens the MAC. Checked here so a bad
        # key stops the service at start with the variable named, not the first seal.
        if value is not None:
            for position, entry in enumerate(value.split(","), start=1):
                if len(entry.strip().encode()) < MIN_JWT_SECRET_BYTES:
                    raise ValueError(f"key #{position} must be at least {MIN_JWT_SECRET_BYTES} bytes")
        return value

    @model_validator(mode="after")
    def _argon2_memory_per_lane(self) -> Settings:
        if self.argon2_memory_kib < 8 * self.argon2_parallelism:
            raise ValueError(
                "MEDIATION_ARGON2_MEMORY_KIB must be at least 8 KiB per lane "
                f"(8 x MEDIATION_ARGON2_PARALLELISM = {8 * self.argon2_parallelism}; RFC 9106 §3.1)"
            )
        return self

    @model_validator(mode="after")
    def _long_poll_within_the_time_limit(self) -> Settings:
        # A long poll that waits as long as a request may take is cut off by the time limit (503)
        # instead of answering its empty page.
        if self.feed_max_wait_seconds >= self.request_timeout_seconds:
            raise ValueError(
                "MEDIATION_FEED_MAX_WAIT_SECONDS must be shorter than MEDIATION_REQUEST_TIMEOUT_SECONDS "
                f"(got {self.feed_max_wait_seconds:g} and {self.request_timeout_seconds:g})"
            )
        return self

    @model_validator(mode="after")
    def _lease_outlasts_a_send(self) -> Settings:
        # A claim must outlive the longest send, or a second relay could send the same delivery
        # while the first is still waiting for the receiver.
        if self.relay_lease_seconds <= self.webhook_timeout_seconds:
            raise ValueError("relay_lease_seconds must be longer than webhook_timeout_seconds")
        return self


SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")

# What Kubernetes sets in every pod for each Service of the namespace (a Service named `mediation`
# or `mediation-db` gives MEDIATION_SERVICE_HOST, MEDIATION_DB_PORT_5432_TCP_ADDR, ...): not the
# operator's, so never taken for a misspelt setting.
_SERVICE_LINK = re.compile(
    r"^MEDIATION(_[A-Z0-9]+)*_(SERVICE_HOST|SERVICE_PORT(_[A-Z0-9_]+)?|PORT(_\d+_(TCP|UDP|SCTP)(_PROTO|_PORT|_ADDR)?)?)$"
)


@lru_cache
def get_settings() -> Settings:
    return Settings()


def unknown_variables(environ: Mapping[str, str] | None = None, env_file: Path = Path(".env")) -> list[str]:
    """The MEDIATION_* variables set (in the environment or the `.env` file) that nothing reads,
    each with the setting most likely meant: a misspelt one is otherwise ignored, and a misspelt
    database URL runs the service on a fresh SQLite file."""
    names = set(os.environ if environ is None else environ)
    if env_file.is_file():
        names.update(dotenv_values(env_file))
    known = {f"MEDIATION_{name.upper()}" for name in Settings.model_fields} | OTHER_VARIABLES
    lines = []
    for name in sorted(n for n in names if n.upper().startswith("MEDIATION_")):
        upper = name.upper()
        if upper in known or upper.startswith(OTHER_PREFIXES) or _SERVICE_LINK.match(upper):
            continue
        close = difflib.get_close_matches(upper, sorted(known), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        lines.append(f"{name} is not a setting{hint}")
    return lines
