from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String, false
from sqlalchemy.orm import Mapped, mapped_column

from mediation.core.db import Base, new_id


class User(Base):
    """A staff account that signs in with a password (window clerks, supervisors, mediators, ...)."""

    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(20))
    organisation_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("bodies.id"), index=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime]
    password_changed_at: Mapped[datetime]
    last_login_at: Mapped[datetime | None]
    # Signing out everywhere: a token carries the generation it was issued in, and one of an older
    # generation is refused. A password changed or reset, or the account deactivated, moves the
    # generation on; a user who changes their own password keeps the session they did it in
    # (`kept_session_id`) and ends every other. A counter, not a time compared with the token's
    # `iat`: that is in whole seconds, and a token issued in the same second as the change would be
    # kept or refused by chance.
    session_generation: Mapped[int] = mapped_column(default=0, server_default="0")
    kept_session_id: Mapped[str | None] = mapped_column(String(32))
    # A password an administrator set (at creation or a reset) is known to someone besides its
    # user: until the user changes it themselves, the account may only read who it is, change the
    # password and sign out (等保 level 3: an initial or reset password is changed at first use).
    password_change_required: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Wrong passwords in a row since the last sign-in; enough of them lock the account until
    # `locked_until` (等保 level 3: 登录失败处理). In the database, so every process counts alike.
    failed_sign_ins: Mapped[int] = mapped_column(default=0, server_default="0")
    locked_until: Mapped[datetime | None]
    # Moved on by every change an administrator makes to the account (its role, organisation or
    # name, activation, a password reset), not by its own sign-ins: the ETag an edit names.
    version: Mapped[int] = mapped_column(default=1, server_default="1")


class RevokedSession(Base):
    """A signed-out session. Its tokens are refused (every request looks its id up, in the same
    statement that reads the account) until the last of them has expired; the row is then of no use
    and is deleted by the next sign-out."""

    __tablename__ = "revoked_sessions"

    sid: Mapped[str] = mapped_column(String(32), primary_key=True)
    # No foreign key: a sign-out is recorded from the signed token alone, and the row is gone
    # within a token's lifetime.
    user_id: Mapped[uuid.UUID]
    revoked_at: Mapped[datetime]
    # When the last token the session could hold has expired: the later of the token signing out's
    # own expiry (issued perhaps under a longer lifetime than today's) and a token issued at the
    # sign-out (renewals stop there), leeway included.
    expires_at: Mapped[datetime] = mapped_column(index=True)


class ApiKey(Base):
    """A machine client's key. Only a hash is kept; `prefix` is shown in lists to tell keys apart."""

    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(20))
    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bodies.id"), index=True)
    # Rotation: the new key names the key it replaces; both work until the old one is revoked.
    replaces_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("api_keys.id"))
    # The first key of the chain of rotations this key belongs to (its own id when it replaces none):
    # the keys of one chain are one caller, whose Idempotency-Keys a retry under a successor finds.
    lineage_id: Mapped[uuid.UUID]
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
