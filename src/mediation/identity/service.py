"""Accounts and API keys: create, sign in and out, change passwords, rotate, revoke. Services flush;
the caller commits."""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import Select, delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mediation.audit.models import AuditRecord
from mediation.bodies.models import ARBITRATION_KINDS, MEDIATING_KINDS, Body, BodyKind
from mediation.core.db import insert_of, keyset_page, utcnow
from mediation.core.errors import Conflict, NotFound, Unauthenticated, ValidationFailed
from mediation.core.i18n import Text
from mediation.core.principal import (
    BODY_ROLES,
    CENTER_ROLES,
    MACHINE_ROLES,
    STAFF_ROLES,
    Permission,
    Principal,
    Role,
)
from mediation.identity.auth import ORGANISATION_SUSPENDED, organisation_suspended, session_ended
from mediation.identity.credentials import IssuedToken, Passwords, Tokens, new_api_key
from mediation.identity.models import ApiKey, RevokedSession, User

# The audit trail's actions of a sign-in (the API's and the sign-in page's), and how long a sign-in
# from an address makes it one the account is known at (`IdentityService.signed_in_from`).
SIGN_IN_ACTIONS = ("sign_in", "login")
FAMILIAR_FOR = timedelta(days=30)

# Refusals of account changes that would leave the center without a way in (409, `code`).
OWN_ACCOUNT = "own_account"
ACCOUNT_LOCKED = "account_locked"
LAST_ADMIN = "last_admin"
# What the refusal says of a deactivation, and of a new role or organisation.
LAST_ADMIN_DEACTIVATED = Text(
    "这是最后一个在用的管理员账号 (所属机构已暂停工作的管理员不能登录), 停用后将无人能管理账号; "
    "请先启用或创建另一个管理员",
    "This is the last active administrator (one of a suspended organisation cannot sign in); "
    "deactivating it would leave no one to manage accounts. Activate or create another "
    "administrator first",
)
LAST_ADMIN_MOVED = Text(
    "这是最后一个在用的管理员账号 (所属机构已暂停工作的管理员不能登录), 改变其角色或所属机构后将无人能管理账号; "
    "请先启用或创建另一个管理员",
    "This is the last active administrator (one of a suspended organisation cannot sign in); "
    "with another role or organisation no one could manage accounts. Activate or create another "
    "administrator first",
)


class _Inherit:
    """The successor of a rotated key expires when the key it replaces does (the default)."""


INHERIT: Final = _Inherit()


class _Unchanged:
    """An account's organisation not given in a change stays as it is (None would clear it)."""


UNCHANGED: Final = _Unchanged()


# Which kind of organisation each role belongs to (None: no organisation).
def organisation_fits(role: Role, organisation: Body | None) -> bool:
    kind = organisation.kind if organisation else None
    if role in CENTER_ROLES:
        return kind == BodyKind.mediation_center
    if role in BODY_ROLES:
        return kind in MEDIATING_KINDS
    if role == Role.court:
        return kind == BodyKind.court
    if role == Role.arbitration:
        return kind in ARBITRATION_KINDS
    if role in (Role.admin, Role.auditor):
        return organisation is None or kind == BodyKind.mediation_center
    return False


# What a username may be, wherever an account is made (the API's schema states the same limits):
# plain characters only, so no two names look alike and every name can be typed at a sign-in.
USERNAME_PATTERN: Final = r"^[A-Za-z0-9_.\-]+$"
USERNAME_MIN_LENGTH: Final = 3
USERNAME_MAX_LENGTH: Final = 64
DISPLAY_NAME_MAX_LENGTH: Final = 100


def normalised_username(typed: str) -> str:
    """The account a typed username names: surrounding spaces are not part of it. Every sign-in
    path, and its guessing limit, keys on this form, so padding cannot make a fresh name."""
    return typed.strip()


def _invalid(field: str, code: str, text: Text) -> ValidationFailed:
    return ValidationFailed.of_field(field, code, text)


def new_username(typed: str, field: str = "username") -> str:
    """The username a new account gets, normalised as a sign-in normalises what is typed: an
    account whose stored name kept its padding could never be signed in to, and a command naming it
    would act on the account without the padding."""
    username = normalised_username(typed)
    if not USERNAME_MIN_LENGTH <= len(username) <= USERNAME_MAX_LENGTH:
        raise _invalid(
            field,
            "length",
            Text("用户名须为 {lo} 至 {hi} 个字符", "A username has {lo} to {hi} characters").format(
                lo=USERNAME_MIN_LENGTH, hi=USERNAME_MAX_LENGTH
            ),
        )
    if re.fullmatch(USERNAME_PATTERN, username) is None:
        raise _invalid(
            field,
            "pattern",
            Text(
                "用户名只能包含英文字母、数字及 _ . -",
                "A username holds only Latin letters, digits and _ . -",
            ),
        )
    return username


def new_display_name(typed: str, field: str = "display_name") -> str:
    """The display name a new account gets: trimmed, as every request body's text is."""
    name = typed.strip()
    if not 1 <= len(name) <= DISPLAY_NAME_MAX_LENGTH:
        raise _invalid(
            field,
            "length",
            Text("显示名须为 1 至 {hi} 个字符", "A display name has 1 to {hi} characters").format(
                hi=DISPLAY_NAME_MAX_LENGTH
            ),
        )
    return name


def check_staff_role(role: Role) -> None:
    """A role an account may have, at creation or changed: a staff role, never a machine client's
    or the service's own."""
    if role in MACHINE_ROLES - STAFF_ROLES:
        raise _invalid("role", "not_staff", Text("该角色使用 API 密钥", "This role uses API keys"))
    if role not in STAFF_ROLES:
        # `system` stands for the service's own jobs and the command line; nobody signs in as it.
        raise _invalid(
            "role",
            "not_staff",
            Text(
                "该角色仅供系统内部使用, 不能创建账号",
                "This role is the service's own and cannot have accounts",
            ),
        )


def check_new_password(password: str, min_length: int, field: str = "password") -> None:
    """The policy every new password meets, whichever path sets it (creation, change, reset)."""
    if len(password) < min_length:
        raise _invalid(
            field,
            "too_short",
            Text("密码至少 {n} 位", "Password needs at least {n} characters").format(n=min_length),
        )


class SignInRefused(Unauthenticated):
    """A refused sign-in. When the username named an account that can no longer sign in (deactivated,
    or its organisation suspended), `account_id` names it for the audit trail only: the answer is
    the same as for any other refusal, so it tells a stranger nothing."""

    def __init__(
        self,
        detail: Text | str | None = None,
        *,
        account_id: uuid.UUID | None = None,
        account_state: str | None = None,
        password_matched: bool = False,
        count_against: uuid.UUID | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(detail, **kwargs)
        self.account_id = account_id
        self.account_state = account_state
        self.password_matched = password_matched
        # The account a wrong password was typed for: counted against it once the request has
        # rolled back (`count_failed_sign_in`), towards locking it.
        self.count_against = count_against

    def audit_facts(self) -> dict[str, Any]:
        if self.account_id is None:
            return {}
        return {"account": self.account_state, "password_matched": self.password_matched}


def locked_out(until: datetime, now: datetime) -> Text:
    minutes = max(1, math.ceil((until - now).total_seconds() / 60))
    return Text(
        "连续输错密码次数过多, 账号已暂时锁定, 请 {m} 分钟后再试或请管理员解锁",
        "Too many wrong passwords in a row: the account is locked; try again in {m} min "
        "or ask an administrator to unlock it",
    ).format(m=minutes)


async def count_failed_sign_in(
    writer: Callable[[], AsyncSession], user_id: uuid.UUID, passwords: Passwords
) -> datetime | None:
    """One more wrong password for the account, from any address, in a transaction of its own (the
    sign-in's own rolls back); the one that reaches the account-wide limit locks the account (at
    every address it has not signed in from lately) and starts the count afresh. Returns
    when the lock ends, if this one locked it. The row is locked: of many wrong passwords at once,
    each is counted, and one locks."""
    async with writer() as session:
        user = await session.get(User, user_id, with_for_update=True)
        now = utcnow()
        if user is None or (user.locked_until is not None and user.locked_until > now):
            return None
        user.failed_sign_ins += 1
        locked = None
        if user.failed_sign_ins >= passwords.account_max_failures:
            user.failed_sign_ins, user.locked_until = 0, now + passwords.lock_for
            locked = user.locked_until
        await session.commit()
        return locked


@dataclass(frozen=True, slots=True)
class CreatedKey:
    key: ApiKey
    secret: str


class IdentityService:
    def __init__(self, session: AsyncSession, passwords: Passwords | None = None) -> None:
        self.session = session
        self.passwords = passwords

    async def _organisation(
        self, role: Role, organisation_id: uuid.UUID | None, *, fresh: bool = False
    ) -> Body | None:
        """`fresh`: read again from the row (held by the caller), not as the session saw it before."""
        organisation = (
            await self.session.get(Body, organisation_id, populate_existing=fresh)
            if organisation_id
            else None
        )
        if organisation_id and organisation is None:
            raise _invalid("organisation_id", "unknown", Text("机构不存在", "No such organisation"))
        if organisation is None and not organisation_fits(role, None):
            raise _invalid(
                "organisation_id",
                "organisation_required",
                Text("角色 {r} 须指定所属机构", "Role {r} needs the organisation it belongs to").format(
                    r=role.value
                ),
            )
        if not organisation_fits(role, organisation):
            raise _invalid(
                "organisation_id",
                "organisation_mismatch",
                Text(
                    "角色 {r} 不能属于该类机构", "Role {r} cannot belong to this kind of organisation"
                ).format(r=role.value),
            )
        return organisation

    # ---- users ----------------------------------------------------------------------------------

    async def create_user(
        self,
        username: str,
        display_name: str,
        role: Role,
        organisation_id: uuid.UUID | None,
        password: str,
        min_length: int,
        *,
        temporary_password: bool = False,
    ) -> User:
        """`temporary_password`: the password is one an administrator chose or was shown, which
        the user must change at first use (see `User.password_change_required`)."""
        assert self.passwords is not None
        check_staff_role(role)
        username, display_name = new_username(username), new_display_name(display_name)
        check_new_password(password, min_length)
        await self._organisation(role, organisation_id)
        now = utcnow()
        user = User(
            id=uuid.uuid4(),
            username=username,
            display_name=display_name,
            role=role.value,
            organisation_id=organisation_id,
            password_hash=self.passwords.hash(password),
            active=True,
            created_at=now,
            password_changed_at=now,
            password_change_required=temporary_password,
        )
        self.session.add(user)
        try:
            await self.session.flush()
        except IntegrityError as exc:
            raise Conflict(Text("用户名已存在", "Username already taken"), code="username_taken") from exc
        return user

    async def sign_in(
        self,
        username: str,
        password: str,
        tokens: Tokens,
        *,
        address: str,
        locked_here_until: datetime | None = None,
    ) -> tuple[User, IssuedToken]:
        """`username` as `normalised_username` gives it; the password exactly as typed. `address`:
        the client's, as the trusted proxies tell it; `locked_here_until`: the end of a lock of the
        account at that address (`SignInThrottle`)."""
        assert self.passwords is not None
        # The account with its organisation's standing, in one read whatever the password: the
        # suspension is known for the audit trail without a second read only some attempts make.
        row = (
            await self.session.execute(
                select(User, Body.active)
                .outerjoin(Body, Body.id == User.organisation_id)
                .where(User.username == username)
            )
        ).first()
        user, organisation_active = (row[0], row[1]) if row is not None else (None, None)
        # Verify even for an unknown user, so timing does not tell which usernames exist.
        valid = self.passwords.verify(user.password_hash if user else None, password)
        wrong = Text("用户名或密码错误", "Wrong username or password")
        if user is not None and not user.active:
            raise SignInRefused(
                wrong, account_id=user.id, account_state="deactivated", password_matched=valid
            )
        now = utcnow()
        lock = await self._lock(user, address, locked_here_until, now) if user is not None else None
        if user is not None and lock is not None:
            # Whatever was typed, and without counting it: a guesser learns nothing more while the
            # lock lasts, and the clerk who typed the right password is told why it is refused.
            raise SignInRefused(
                locked_out(lock, now),
                code=ACCOUNT_LOCKED,
                account_id=user.id,
                account_state="locked",
                password_matched=valid,
            )
        if user is None or not valid:
            if user is not None and organisation_active is False:
                raise SignInRefused(
                    wrong,
                    account_id=user.id,
                    account_state=ORGANISATION_SUSPENDED,
                    password_matched=False,
                    count_against=user.id,
                )
            raise SignInRefused(wrong, count_against=user.id if user is not None else None)
        if organisation_active is False:
            # Said only after the password checked out, so it tells a stranger nothing.
            raise SignInRefused(
                organisation_suspended().detail,
                code=ORGANISATION_SUSPENDED,
                account_id=user.id,
                account_state=ORGANISATION_SUSPENDED,
                password_matched=True,
            )
        if self.passwords.needs_rehash(user.password_hash):
            # Only over the hash just verified: the row was read unlocked, and a password reset or
            # changed since must not be undone by writing back the one typed here.
            await self.session.execute(
                update(User)
                .where(User.id == user.id, User.password_hash == user.password_hash)
                .values(password_hash=self.passwords.hash(password))
                .execution_options(synchronize_session=False)
            )
        user.last_login_at = now
        # The wrong passwords before this one no longer count towards a lock; but a lock everywhere
        # that this address is spared (the account signed in from it lately) stays for the others.
        if user.locked_until is None or user.locked_until <= now:
            user.failed_sign_ins, user.locked_until = 0, None
        await self.session.flush()
        return user, tokens.issue(
            user.id, user.role, user.organisation_id, generation=user.session_generation
        )

    async def _lock(
        self, user: User, address: str, locked_here_until: datetime | None, now: datetime
    ) -> datetime | None:
        """Until when the account is locked to a sign-in from `address`, if it is: locked at that
        address, or locked everywhere (wrong passwords from many addresses) and the address is not
        one the account signed in from lately. A run of guesses from elsewhere so does not keep the
        clerk out at the center's own address."""
        here = locked_here_until if locked_here_until is not None and locked_here_until > now else None
        everywhere = user.locked_until if user.locked_until is not None and user.locked_until > now else None
        if everywhere is not None and await self.signed_in_from(user.id, address, now):
            everywhere = None
        if here is None or everywhere is None:
            return here or everywhere
        return max(here, everywhere)

    async def signed_in_from(self, user_id: uuid.UUID, address: str, now: datetime) -> bool:
        """Whether the account signed in from `address` in the last `FAMILIAR_FOR`, as the audit
        trail recorded it (a sign-in's record names the account and the client address)."""
        found = await self.session.scalar(
            select(AuditRecord.seq)
            .where(
                AuditRecord.object_id == str(user_id),
                AuditRecord.object_type == "user",
                AuditRecord.action.in_(SIGN_IN_ACTIONS),
                AuditRecord.outcome == "success",
                AuditRecord.client_address == address,
                AuditRecord.occurred_at >= now - FAMILIAR_FOR,
            )
            .limit(1)
        )
        return found is not None

    async def sign_out(
        self, user_id: uuid.UUID, session_id: str, tokens: Tokens, *, token_expires: float
    ) -> None:
        """End one session: its tokens are refused from now on. Signing out again changes nothing.
        `token_expires`: the `exp` of the token signing out (seconds since the epoch)."""
        now = utcnow()
        # Kept until the last token of the session has expired. Renewals stop at the sign-out, so a
        # token issued now is the longest-lived the session can still get; but the token signing out
        # was issued under the lifetime of its day, which may have been longer than today's (the
        # lifetime shortened since): it is refused until its own expiry, not only until ours.
        own_expiry = datetime.fromtimestamp(token_expires, UTC) + timedelta(seconds=tokens.leeway)
        expires_at = max(now + timedelta(seconds=tokens.longest_life), own_expiry)
        insert = insert_of(self.session)
        await self.session.execute(
            insert(RevokedSession)
            .values(sid=session_id, user_id=user_id, revoked_at=now, expires_at=expires_at)
            .on_conflict_do_nothing(index_elements=["sid"])
        )
        # The sessions whose every token has expired need no row any more: the table holds at most
        # a token lifetime's sign-outs.
        await self.session.execute(delete(RevokedSession).where(RevokedSession.expires_at < now))

    @staticmethod
    def end_sessions(user: User, keep: str | None = None) -> None:
        """End every session of the account (but `keep`, the one a user changed their password in)."""
        user.session_generation += 1
        user.kept_session_id = keep

    async def sign_out_everywhere(self, user_id: uuid.UUID) -> User:
        """The user ends every session of their account, the one asking included: a browser left
        signed in elsewhere, a token that may have been copied."""
        user = await self._user(user_id, for_update=True)
        self.end_sessions(user)
        await self.session.flush()
        return user

    async def _user(self, user_id: uuid.UUID, *, for_update: bool = False) -> User:
        user = await self.session.get(User, user_id, with_for_update=for_update)
        if user is None:
            raise NotFound(Text("用户不存在", "No such user"))
        return user

    async def change_password(
        self,
        user_id: uuid.UUID,
        current: str,
        new: str,
        min_length: int,
        *,
        session_id: str,
        generation: int,
        before_check: Callable[[User], None] = lambda _user: None,
    ) -> User:
        """The user's own change: the current password proves it is them, not someone at a screen
        they left signed in. Their other sessions end; this one (`session_id`, its token of
        `generation`) goes on. `before_check` runs before the current password is tried (the
        guessing limit)."""
        assert self.passwords is not None
        user = await self._user(user_id, for_update=True)
        # The session was checked when the request was authenticated, before this lock: since then
        # the account may have been deactivated, or every session of it ended (signed out
        # everywhere, a reset). Checked again under the lock, or keeping this session would bring
        # back a token already refused, and one an activation promises stays refused.
        if not user.active or (generation != user.session_generation and session_id != user.kept_session_id):
            raise session_ended()
        before_check(user)
        if not self.passwords.verify(user.password_hash, current):
            raise _invalid(
                "current_password",
                "wrong_password",
                Text("当前密码不正确", "The current password is wrong"),
            )
        check_new_password(new, min_length, "new_password")
        if self.passwords.verify(user.password_hash, new):
            raise _invalid(
                "new_password",
                "same_as_current",
                Text("新密码不能与当前密码相同", "The new password must differ from the current one"),
            )
        self._set_password(user, new)
        # Now only the user knows it: a password an administrator set is temporary no more.
        user.password_change_required = False
        self.end_sessions(user, keep=session_id)
        await self.session.flush()
        return user

    async def reset_password(
        self, user_id: uuid.UUID, new: str, min_length: int, by: Principal | None
    ) -> User:
        """An administrator sets another user's password (forgotten, or known to someone else): every
        session of that user ends, and the password is temporary: the administrator knows it, so the
        user must change it before doing anything else (等保: a reset password is changed at first
        use). `by`: who asks; None for the command line."""
        assert self.passwords is not None
        if _is_self(by, user_id):
            # Without the current password a taken-over admin session could lock its owner out.
            raise Conflict(
                Text(
                    "不能重置自己的密码, 请使用修改密码 (需输入当前密码)",
                    "You cannot reset your own password; change it, giving the current one",
                ),
                code=OWN_ACCOUNT,
            )
        user = await self._user(user_id, for_update=True)
        check_new_password(new, min_length)
        self._set_password(user, new)
        user.password_change_required = True
        user.failed_sign_ins, user.locked_until = 0, None  # its user signs in with the new one
        user.version += 1
        self.end_sessions(user)
        await self.session.flush()
        return user

    def _set_password(self, user: User, password: str) -> None:
        assert self.passwords is not None
        user.password_hash = self.passwords.hash(password)
        user.password_changed_at = utcnow()

    async def users(self) -> list[User]:
        return list((await self.session.scalars(select(User).order_by(User.username))).all())

    async def user(self, user_id: uuid.UUID) -> User:
        return await self._user(user_id)

    async def user_named(self, username: str) -> User:
        """The account a typed username names (trimmed, as at sign-in)."""
        user = await self.session.scalar(select(User).where(User.username == normalised_username(username)))
        if user is None:
            raise NotFound(Text("用户不存在", "No such user"))
        return user

    async def set_active(self, user_id: uuid.UUID, active: bool, by: Principal | None = None) -> User:
        """Activate or deactivate an account (`by`: who asks; None for the command line). Neither
        is refused when already done. A deactivation ends every session of the account, so tokens
        from before it stay refused if the account is activated again."""
        if active:
            user = await self._user(user_id, for_update=True)
            if not user.active or user.locked_until is not None:
                user.version += 1
            user.active = True
            # Also how an administrator unlocks an account locked by wrong passwords.
            user.failed_sign_ins, user.locked_until = 0, None
            await self.session.flush()
            return user
        if _is_self(by, user_id):
            raise Conflict(
                Text("不能停用自己的账号", "You cannot deactivate your own account"), code=OWN_ACCOUNT
            )
        locked = await self._lock_with_admins(user_id)
        target = locked[user_id][0]
        if not target.active:
            return target
        _keep_a_working_admin(locked, user_id, LAST_ADMIN_DEACTIVATED)
        target.active = False
        target.version += 1
        self.end_sessions(target)
        await self.session.flush()
        return target

    async def _lock_with_admins(
        self, user_id: uuid.UUID, joining: uuid.UUID | None = None
    ) -> dict[uuid.UUID, tuple[User, bool | None]]:
        """The account and every active administrator, locked, each with its organisation's
        standing (None: it has none), before a change that may leave no administrator able to
        sign in. `joining`: an organisation the account is moving to, held as well."""
        admins = or_(User.id == user_id, (User.role == Role.admin.value) & User.active.is_(True))
        held = select(User.organisation_id).where(admins)
        bodies = or_(Body.id.in_(held), Body.id == joining) if joining is not None else Body.id.in_(held)
        # First the bodies they belong to, shared, in one order: suspending a body holds it before
        # it locks the administrators (bodies.service), so a suspension and this change take
        # turns, and the second reads the body's standing as the first left it. (Read along with
        # the locked accounts alone, a body suspended meanwhile still looked at work, and both
        # could go through, leaving no administrator able to sign in.)
        await self.session.execute(select(Body.id).where(bodies).order_by(Body.id).with_for_update(read=True))
        # The account and every active administrator, locked in one order: two administrators
        # deactivating (or demoting) each other at once take turns, and the second finds itself
        # the last one. Each comes with its organisation's standing: an administrator of a
        # suspended center cannot sign in (401 organisation_suspended), so keeps no one able to
        # manage accounts.
        rows = await self.session.execute(
            select(User, Body.active)
            .outerjoin(Body, Body.id == User.organisation_id)
            .where(admins)
            .order_by(User.id)
            .with_for_update(of=User)
            .execution_options(populate_existing=True)
        )
        locked: dict[uuid.UUID, tuple[User, bool | None]] = {
            user.id: (user, organisation_active) for user, organisation_active in rows
        }
        if user_id not in locked:
            raise NotFound(Text("用户不存在", "No such user"))
        return locked

    async def update_user(
        self,
        user_id: uuid.UUID,
        *,
        role: Role | None = None,
        organisation_id: uuid.UUID | _Unchanged | None = UNCHANGED,
        display_name: str | None = None,
        before_change: Callable[[User], None] = lambda _user: None,
    ) -> tuple[User, dict[str, dict[str, str | None]]]:
        """A member of staff moves post: their account takes a new role, organisation or display
        name, and keeps its history (what is not given stays). Checked as at creation. A new role
        or organisation ends every session of the account at once: the tokens it holds were issued
        for the old post. Refused when it would leave no administrator able to sign in. A mediator
        who moves leaves the body's roster and cases as they are: a case names a roster entry, not
        an account, and the body names another mediator for it (`choose_mediator`).
        `before_change` runs on the locked account first (If-Match).
        Returns the account and what changed (from, to); nothing changed, nothing is written."""
        moves = role is not None or not isinstance(organisation_id, _Unchanged)
        locked: dict[uuid.UUID, tuple[User, bool | None]] = {}
        if moves:
            joining = organisation_id if isinstance(organisation_id, uuid.UUID) else None
            locked = await self._lock_with_admins(user_id, joining)
            user = locked[user_id][0]
        else:
            # A new name alone changes nobody's access: only the account is held.
            user = await self._user(user_id, for_update=True)
        before_change(user)
        new_role = role if role is not None else Role(user.role)
        new_organisation_id = (
            user.organisation_id if isinstance(organisation_id, _Unchanged) else organisation_id
        )
        new_name = new_display_name(display_name) if display_name is not None else user.display_name
        changes: dict[str, dict[str, str | None]] = {}
        for name, before, after in (
            ("role", user.role, new_role.value),
            ("organisation_id", _text(user.organisation_id), _text(new_organisation_id)),
            ("display_name", user.display_name, new_name),
        ):
            if before != after:
                changes[name] = {"from": before, "to": after}
        if not changes:
            return user, changes
        if "role" in changes:
            check_staff_role(new_role)
        moved = "role" in changes or "organisation_id" in changes
        if moved:
            organisation = await self._organisation(new_role, new_organisation_id, fresh=True)
            still_working = (
                new_role == Role.admin and user.active and (organisation is None or organisation.active)
            )
            if not still_working:
                _keep_a_working_admin(locked, user_id, LAST_ADMIN_MOVED)
        user.role, user.organisation_id, user.display_name = new_role.value, new_organisation_id, new_name
        user.version += 1
        if moved:
            self.end_sessions(user)
        await self.session.flush()
        return user, changes

    # ---- API keys -------------------------------------------------------------------------------

    async def create_key(
        self,
        organisation_id: uuid.UUID,
        role: Role,
        name: str,
        created_by: str,
        expires_at: datetime | None = None,
        replaces: ApiKey | None = None,
        secret: str | None = None,
    ) -> CreatedKey:
        if role not in MACHINE_ROLES:
            raise _invalid(
                "role", "not_machine", Text("该角色不能使用 API 密钥", "This role cannot have API keys")
            )
        now = utcnow()
        if expires_at is not None and expires_at.tzinfo is None:
            raise _invalid(
                "expires_at",
                "timezone_missing",
                Text("时间须带时区", "Give the time with its time zone offset"),
            )
        if expires_at is not None and expires_at <= now:
            raise _invalid(
                "expires_at", "in_past", Text("过期时间须晚于现在", "expires_at must lie in the future")
            )
        await self._organisation(role, organisation_id)
        issued = new_api_key(secret)
        key_id = uuid.uuid4()
        key = ApiKey(
            id=key_id,
            lineage_id=replaces.lineage_id if replaces else key_id,
            name=name,
            prefix=issued.prefix,
            secret_hash=issued.secret_hash,
            role=role.value,
            organisation_id=organisation_id,
            replaces_id=replaces.id if replaces else None,
            created_by=created_by,
            created_at=now,
            expires_at=expires_at,
        )
        self.session.add(key)
        await self.session.flush()
        return CreatedKey(key, issued.secret)

    def _may_manage(self, principal: Principal, key: ApiKey) -> bool:
        if principal.can(Permission.keys_manage):
            return True
        return principal.can(Permission.keys_manage_own) and key.organisation_id == principal.organisation_id

    async def key(self, key_id: uuid.UUID, principal: Principal, *, for_update: bool = False) -> ApiKey:
        key = await self.session.get(ApiKey, key_id, with_for_update=for_update)
        if key is None or not self._may_manage(principal, key):
            raise NotFound(Text("API 密钥不存在", "No such API key"))
        return key

    async def keys(self, principal: Principal, organisation_id: uuid.UUID | None = None) -> list[ApiKey]:
        """Every key the principal manages (of `organisation_id`, if given), oldest first."""
        stmt = self._keys(principal, organisation_id).order_by(ApiKey.created_at, ApiKey.id)
        return list((await self.session.scalars(stmt)).all())

    async def key_page(
        self, principal: Principal, organisation_id: uuid.UUID | None, limit: int, cursor: str | None
    ) -> tuple[list[ApiKey], str | None]:
        """A page of `keys`, and the cursor after it (`keyset_page`). Revoked and expired keys are
        kept, and every rotation adds one: an organisation's keys grow without bound."""
        return await keyset_page(
            self.session, self._keys(principal, organisation_id), ApiKey.created_at, ApiKey.id, limit, cursor
        )

    @staticmethod
    def _keys(principal: Principal, organisation_id: uuid.UUID | None) -> Select[ApiKey]:
        stmt = select(ApiKey)
        if not principal.can(Permission.keys_manage):
            stmt = stmt.where(ApiKey.organisation_id == principal.organisation_id)
        if organisation_id:
            stmt = stmt.where(ApiKey.organisation_id == organisation_id)
        return stmt

    async def revoke(self, key: ApiKey, by: Principal) -> list[uuid.UUID]:
        """Revokes `key`; returns the webhook subscriptions it had made, stopped with it, in the
        same transaction: their pending deliveries are cancelled before the revocation commits
        (`stop_subscriptions_of_lapsed_keys`). A second revocation stops what the first did not
        (one made with the key while the first was under way)."""
        from mediation.events.webhooks import stop_subscriptions_of_lapsed_keys  # events builds on identity

        now = utcnow()
        if key.revoked_at is None:
            key.revoked_at = now
            await self.session.flush()
        return await stop_subscriptions_of_lapsed_keys(self.session, by, now, by_key=key.id)

    async def rotate(
        self, key: ApiKey, created_by: str, expires_at: datetime | _Inherit | None = INHERIT
    ) -> CreatedKey:
        """A successor with the same organisation and role; the old key keeps working until revoked,
        so the client can switch over without downtime. The successor expires when the old key does,
        unless `expires_at` says otherwise (None: never), checked as at creation."""
        if key.revoked_at is not None:
            raise Conflict(Text("已吊销的密钥不能轮换", "A revoked key cannot be rotated"), code="revoked")
        now = utcnow()
        if key.expires_at is not None and key.expires_at <= now:
            raise Conflict(Text("已过期的密钥不能轮换", "An expired key cannot be rotated"), code="expired")
        # One live successor at a time: a second would leave two keys the client never switched to.
        # The caller holds the key's row (`key(..., for_update=True)`), so two rotations at once
        # take turns and the second finds the first's successor.
        successor = await self.session.scalar(
            select(ApiKey.prefix).where(
                ApiKey.replaces_id == key.id,
                ApiKey.revoked_at.is_(None),
                (ApiKey.expires_at.is_(None)) | (ApiKey.expires_at > now),
            )
        )
        if successor is not None:
            raise Conflict(
                Text(
                    "该密钥已轮换, 新密钥为 {p}", "This key was rotated already; its successor is {p}"
                ).format(p=successor),
                code="already_rotated",
            )
        expiry = key.expires_at if isinstance(expires_at, _Inherit) else expires_at
        return await self.create_key(
            key.organisation_id, Role(key.role), key.name, created_by, expiry, replaces=key
        )


def _is_self(principal: Principal | None, user_id: uuid.UUID) -> bool:
    return principal is not None and principal.kind == "user" and principal.id == str(user_id)


def account_change_facts(changes: dict[str, dict[str, str | None]]) -> dict[str, Any]:
    """What the audit trail keeps of a change of an account (`IdentityService.update_user`): the
    role and organisation from and to; of a new name only that it changed. A name is personal data,
    which the append-only journal keeps none of (audit.models): it could be neither corrected nor
    erased there before the records' retention ends."""
    facts: dict[str, Any] = {
        "changes": {
            field: ("changed" if field == "display_name" else values) for field, values in changes.items()
        }
    }
    if "role" in changes or "organisation_id" in changes:
        facts["sessions_ended"] = "all"
    return facts


def _text(value: uuid.UUID | None) -> str | None:
    return str(value) if value is not None else None


def _working_admin(user: User, organisation_active: bool | None) -> bool:
    return user.role == Role.admin.value and user.active and organisation_active is not False


def _keep_a_working_admin(
    locked: dict[uuid.UUID, tuple[User, bool | None]], user_id: uuid.UUID, refusal: Text
) -> None:
    """Refuses (409 last_admin, saying `refusal`) to take the account out of work as an
    administrator when it is the last one able to sign in: no one could then manage accounts.
    `locked`: what `_lock_with_admins` holds."""
    if _working_admin(*locked[user_id]) and not any(
        _working_admin(u, organisation_active)
        for u, organisation_active in locked.values()
        if u.id != user_id
    ):
        raise Conflict(refusal, code=LAST_ADMIN)
