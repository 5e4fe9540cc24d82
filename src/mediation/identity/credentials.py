"""Passwords (Argon2id), access tokens (JWT) and API keys.

Token times use the wall clock, not the app's legal-time clock: expiry is a security property of
the token, while the app clock decides legal deadlines and may be frozen in tests.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import jwt
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from mediation.core.settings import Settings

ALGORITHM = "HS256"  # the only algorithm accepted; "none" and key-confusion tricks are refused
VERIFIED_TOKENS_KEPT = 4096  # per process: about one per signed-in staff member
API_KEY_PREFIX = "mk_"


class Passwords:
    def __init__(self, settings: Settings) -> None:
        self.hasher = PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
            type=Type.ID,
        )
        # A fixed hash to verify against when the user does not exist, so a wrong username costs
        # as much time as a wrong password (no account enumeration by timing).
        self._dummy = self.hasher.hash(secrets.token_urlsafe(16))
        # How many wrong passwords in a row lock an account (at one address; from any), and for how
        # long.
        self.max_failures = settings.sign_in_max_failures
        self.account_max_failures = settings.sign_in_account_max_failures
        self.lock_for = timedelta(minutes=settings.sign_in_lock_minutes)

    def hash(self, password: str) -> str:
        return self.hasher.hash(password)

    def verify(self, stored: str | None, password: str) -> bool:
        try:
            return self.hasher.verify(stored or self._dummy, password) and stored is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored: str) -> bool:
        return self.hasher.check_needs_rehash(stored)


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    expires_in: int
    jti: str
    session_id: str


# What a staff token names besides the standard claims: the session it belongs to (`sid`, kept by
# every renewal, so signing out ends them all) and the account's session generation it was issued
# in (`gen`, see `User.session_generation`).
SESSION_CLAIMS = ("sid", "gen")
MAX_SESSION_ID_LENGTH = 32


class InvalidToken(Exception):
    pass


class Tokens:
    def __init__(self, settings: Settings, secret: str) -> None:
        self.secret = secret
        self.issuer = settings.jwt_issuer
        self.audience = settings.jwt_audience
        self.lifetime = settings.access_token_minutes * 60
        self.leeway = settings.jwt_leeway_seconds
        self._verified: dict[str, dict[str, Any]] = {}

    def issue(
        self,
        user_id: uuid.UUID,
        role: str,
        organisation_id: uuid.UUID | None,
        *,
        session_id: str | None = None,
        generation: int = 0,
    ) -> IssuedToken:
        """A token of a new session, or of `session_id` (a renewal keeps its session)."""
        now = int(time.time())
        jti = uuid.uuid4().hex
        sid = session_id or uuid.uuid4().hex
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": str(user_id),
            "iat": now,
            "nbf": now,
            "exp": now + self.lifetime,
            "jti": jti,
            "sid": sid,
            "gen": generation,
            "role": role,
        }
        if organisation_id is not None:
            claims["org"] = str(organisation_id)
        return IssuedToken(jwt.encode(claims, self.secret, algorithm=ALGORITHM), self.lifetime, jti, sid)

    @property
    def longest_life(self) -> int:
        """Seconds a token issued now can be accepted for, leeway included."""
        return self.lifetime + self.leeway

    def verify(self, token: str) -> dict[str, Any]:
        # A token whose signature and claims were checked is remembered by its exact text, so a
        # client's next requests only need its time window checked again (PyJWT prepares the key
        # and parses the token anew on every call). An altered token is different text.
        known = self._verified.get(token)
        if known is not None:
            now = time.time()
            if known["nbf"] - self.leeway <= now < known["exp"] + self.leeway:
                return dict(known)
            del self._verified[token]
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self.secret,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                # A token without a session could not be signed out: it is not taken at all.
                options={"require": ["exp", "iat", "nbf", "iss", "aud", "sub", *SESSION_CLAIMS]},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(type(exc).__name__) from exc
        sid, generation = claims["sid"], claims["gen"]
        if not isinstance(sid, str) or not 0 < len(sid) <= MAX_SESSION_ID_LENGTH:
            raise InvalidToken("sid")
        if not isinstance(generation, int) or isinstance(generation, bool) or generation < 0:
            raise InvalidToken("gen")
        if isinstance(claims.get("nbf"), int | float) and isinstance(claims.get("exp"), int | float):
            if len(self._verified) >= VERIFIED_TOKENS_KEPT:
                self._verified.pop(next(iter(self._verified)))  # the oldest first
            self._verified[token] = dict(claims)
        return claims


@dataclass(frozen=True, slots=True)
class NewApiKey:
    secret: str  # shown once
    prefix: str
    secret_hash: str


def new_api_key(secret: str | None = None) -> NewApiKey:
    """`mk_<8 visible chars>_<43 secret chars>`: 256 random bits, so a plain SHA-256 is a safe hash."""
    if secret is None:
        secret = f"{API_KEY_PREFIX}{secrets.token_hex(4)}_{secrets.token_urlsafe(32)}"
    return NewApiKey(secret=secret, prefix=key_prefix(secret) or "", secret_hash=hash_api_key(secret))


def key_prefix(secret: str) -> str | None:
    parts = secret.split("_")
    if len(parts) < 3 or not secret.startswith(API_KEY_PREFIX) or len(parts[1]) != 8:
        return None
    return f"{API_KEY_PREFIX}{parts[1]}"


def hash_api_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
