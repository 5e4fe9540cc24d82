"""`mediation users ...` and `mediation keys ...`: account and key administration from a shell."""

from __future__ import annotations

import argparse
import getpass
import os
import secrets
import sys
import uuid
from datetime import datetime

from sqlalchemy import select

from mediation.audit.chain import AuditEntry, append
from mediation.core.db import Database, utcnow
from mediation.core.errors import ProblemError, ValidationFailed
from mediation.core.i18n import Text
from mediation.core.principal import Principal, Role
from mediation.core.settings import Settings
from mediation.identity.credentials import Passwords
from mediation.identity.models import ApiKey
from mediation.identity.service import UNCHANGED, IdentityService, account_change_facts

OPERATOR = Principal(Role.system, f"cli:{getpass.getuser()}", kind="system")


def add_parsers(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    users = commands.add_parser("users", help="staff accounts").add_subparsers(dest="action", required=True)
    create = users.add_parser("create", help="create a staff account")
    create.add_argument("--username", required=True)
    create.add_argument("--name", required=True, help="display name")
    create.add_argument("--role", required=True, choices=[r.value for r in Role])
    create.add_argument("--organisation", type=uuid.UUID, help="center or body id")
    create.add_argument(
        "--password-env",
        metavar="VAR",
        help="read the password from this environment variable (default: prompt, or generate one)",
    )
    users.add_parser("list", help="list accounts")
    deactivate = users.add_parser("deactivate", help="disable an account at once")
    deactivate.add_argument("user", help="username, or the id `users list` shows")
    activate = users.add_parser("activate", help="let a deactivated or locked account sign in again")
    activate.add_argument("username")
    change = users.add_parser(
        "update",
        help="change an account's role, organisation or display name (a new role or organisation "
        "ends every session of it)",
    )
    change.add_argument("user", help="username, or the id `users list` shows")
    change.add_argument("--role", choices=[r.value for r in Role])
    change.add_argument(
        "--body",
        "--organisation",
        dest="body",
        type=_organisation_ref,
        default=UNCHANGED,
        metavar="ID",
        help="center or body id; `none` for no organisation (admin and auditor only)",
    )
    change.add_argument("--display-name")
    reset = users.add_parser(
        "reset-password",
        help="set a temporary password (prompted for, or read from the first line of stdin) and "
        "end every session of the account",
    )
    reset.add_argument("username")

    keys = commands.add_parser("keys", help="machine clients' API keys").add_subparsers(
        dest="action", required=True
    )
    kcreate = keys.add_parser("create", help="create a key (shown once)")
    kcreate.add_argument("--organisation", type=uuid.UUID, required=True)
    kcreate.add_argument(
        "--role", required=True, choices=["body_mediator", "body_admin", "court", "arbitration"]
    )
    kcreate.add_argument("--name", required=True)
    kcreate.add_argument("--expires", type=datetime.fromisoformat, help="ISO time with offset")
    klist = keys.add_parser("list", help="list keys (prefixes only)")
    klist.add_argument("--organisation", type=uuid.UUID)
    revoke = keys.add_parser("revoke", help="revoke a key by id or prefix")
    revoke.add_argument("key")
    rotate = keys.add_parser("rotate", help="issue a successor; the old key works until revoked")
    rotate.add_argument("key")


async def run(settings: Settings, args: argparse.Namespace) -> int:
    try:
        typed = _typed_password(args)
    except ProblemError as exc:
        print(f"error: {exc.body().get('detail') or exc.body()['title']}", file=sys.stderr)
        return 2
    db = Database(settings)
    try:
        async with db.writer() as session, session.begin():
            svc = IdentityService(session, Passwords(settings) if args.command == "users" else None)
            try:
                code, audit = await _dispatch(svc, settings, args, typed)
            except ProblemError as exc:
                print(f"error: {exc.body().get('detail') or exc.body()['title']}", file=sys.stderr)
                return 2
            if audit is not None:
                await append(session, [audit], utcnow())
            return code
    finally:
        await db.dispose()


def key_state(key: ApiKey, now: datetime) -> str:
    """What authentication makes of the key now: an expired key is refused like a revoked one."""
    if key.revoked_at is not None:
        return "revoked"
    if key.expires_at is not None and key.expires_at <= now:
        return "expired"
    return "active"


def _new_password() -> str:
    """A new password from the terminal (typed twice, not shown) or the first line of stdin, never
    from the command line, which other users of the machine can read (`ps`) and the shell keeps.
    Taken exactly as typed: only the line's end is dropped."""
    if sys.stdin.isatty():
        password = getpass.getpass("new password: ")
        if getpass.getpass("new password again: ") != password:
            raise ValidationFailed.of_field(
                "password", "mismatch", Text("两次输入的密码不一致", "The two passwords differ")
            )
        return password
    return sys.stdin.readline().removesuffix("\n").removesuffix("\r")


def _typed_password(args: argparse.Namespace) -> str | None:
    """The password the command sets, when it is typed or given rather than generated: read before
    the database is opened. The command's transaction is a writer, on SQLite holding the write lock
    from its first statement, and every write of the service would wait while the operator types."""
    if args.command != "users":
        return None
    if args.action == "reset-password":
        return _new_password()
    if args.action == "create":
        if args.password_env:
            password = os.environ.get(args.password_env)
            if not password:
                # Said as it is: "too short" would send the operator to the password, not the name.
                raise ValidationFailed.of_field(
                    "password_env",
                    "unset",
                    Text(
                        "环境变量 {name} 未设置或为空",
                        "The environment variable {name} is not set, or empty",
                    ).format(name=args.password_env),
                )
            return password
        if sys.stdin.isatty():
            return getpass.getpass("password: ")
    return None


async def _find_key(svc: IdentityService, ref: str) -> ApiKey | None:
    try:
        return await svc.session.get(ApiKey, uuid.UUID(ref))
    except ValueError:
        return await svc.session.scalar(select(ApiKey).where(ApiKey.prefix == ref))


async def _dispatch(
    svc: IdentityService, settings: Settings, args: argparse.Namespace, typed: str | None
) -> tuple[int, AuditEntry | None]:
    """`typed`: the password read for the command (`_typed_password`)."""
    if args.command == "users" and args.action == "create":
        generated = typed is None
        password = secrets.token_urlsafe(15) if typed is None else typed
        user = await svc.create_user(
            args.username,
            args.name,
            Role(args.role),
            args.organisation,
            password,
            settings.min_password_length,
            # The operator typed or was shown it: the user changes it at first use (等保).
            temporary_password=True,
        )
        print(f"created user {user.username} ({user.role}) id {user.id}")
        if generated:
            print(f"generated password (shown once): {password}")
        return 0, AuditEntry.by(OPERATOR, "users.create", object_type="user", object_id=str(user.id))
    if args.command == "users" and args.action == "list":
        for u in await svc.users():
            state = "active" if u.active else "disabled"
            temporary = "  password=temporary" if u.password_change_required else ""
            print(
                f"{u.id}  {u.username:<20} {u.role:<14} {state:<8} org={u.organisation_id or '-'}{temporary}"
            )
        return 0, None
    if args.command == "users" and args.action == "deactivate":
        user = await svc.set_active(await _user_id(svc, args.user), False)
        print(f"deactivated {user.username}")
        return 0, AuditEntry.by(OPERATOR, "users.deactivate", object_type="user", object_id=str(user.id))
    if args.command == "users" and args.action == "activate":
        user = await svc.set_active((await svc.user_named(args.username)).id, True)
        print(f"activated {user.username}")
        return 0, AuditEntry.by(OPERATOR, "users.activate", object_type="user", object_id=str(user.id))
    if args.command == "users" and args.action == "update":
        user, changes = await svc.update_user(
            await _user_id(svc, args.user),
            role=Role(args.role) if args.role else None,
            organisation_id=args.body,
            display_name=args.display_name,
        )
        if not changes:
            print(f"{user.username} unchanged")
            return 0, None
        print(
            f"updated {user.username}: "
            + ", ".join(f"{k} {v['from']} -> {v['to']}" for k, v in changes.items())
        )
        facts = account_change_facts(changes)
        if "sessions_ended" in facts:
            print(f"every session of {user.username} ended: it signs in again")
        return 0, AuditEntry.by(
            OPERATOR, "users.update", object_type="user", object_id=str(user.id), details=facts
        )
    if args.command == "users" and args.action == "reset-password":
        assert typed is not None
        user = await svc.user_named(args.username)
        user = await svc.reset_password(user.id, typed, settings.min_password_length, None)
        print(f"password of {user.username} reset; every session of it ended")
        print("the password is temporary: it must be changed at the next sign-in before anything else")
        if not user.active:
            print(f"{user.username} is deactivated: activate it to let it sign in")
        return 0, AuditEntry.by(
            OPERATOR,
            "users.reset_password",
            object_type="user",
            object_id=str(user.id),
            details={"sessions_ended": "all"},
        )
    if args.command == "keys" and args.action == "create":
        created = await svc.create_key(
            args.organisation, Role(args.role), args.name, OPERATOR.id, args.expires
        )
        print(f"created key {created.key.prefix} id {created.key.id}")
        print(f"secret (shown once, store it now): {created.secret}")
        return 0, AuditEntry.by(OPERATOR, "keys.create", object_type="api_key", object_id=str(created.key.id))
    if args.command == "keys" and args.action == "list":
        now = utcnow()
        for k in await svc.keys(OPERATOR, args.organisation):
            state = key_state(k, now)
            # The expiry is what an operator plans a rotation by: shown before the key stops working.
            expires = k.expires_at.isoformat(timespec="seconds") if k.expires_at is not None else "never"
            print(
                f"{k.id}  {k.prefix}  {k.role:<14} {state:<8} expires={expires} "
                f"org={k.organisation_id} name={k.name}"
            )
        return 0, None
    key = await _find_key(svc, args.key)
    if key is None:
        print("error: no such key", file=sys.stderr)
        return 2, None
    if args.action == "revoke":
        stopped = await svc.revoke(key, OPERATOR)
        print(f"revoked {key.prefix}")
        for sub_id in stopped:
            print(f"stopped webhook subscription {sub_id} (made with this key)")
        return 0, AuditEntry.by(OPERATOR, "keys.revoke", object_type="api_key", object_id=str(key.id))
    created = await svc.rotate(key, OPERATOR.id)
    print(
        f"created successor {created.key.prefix} id {created.key.id}; {key.prefix} stays valid until revoked"
    )
    print(f"secret (shown once, store it now): {created.secret}")
    return 0, AuditEntry.by(
        OPERATOR,
        "keys.rotate",
        object_type="api_key",
        object_id=str(created.key.id),
        details={"replaces": str(key.id)},
    )


def _organisation_ref(typed: str) -> uuid.UUID | None:
    """`--body`: an organisation's id, or `none` for no organisation (left out: unchanged)."""
    return None if typed.strip().lower() == "none" else uuid.UUID(typed)


async def _user_id(svc: IdentityService, named: str) -> uuid.UUID:
    """An account named by its id (as `users list` shows it) or by its username."""
    try:
        return uuid.UUID(named)
    except ValueError:
        return (await svc.user_named(named)).id
