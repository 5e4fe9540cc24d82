"""Places by name, as the registry knows them: a region is named after the people's mediation
committee or the center there ("枫桥镇人民调解委员会" names 枫桥镇, 330681105000). The region fields
offer these names beside the codes, and a name typed where a code goes is answered with the code it
stands for, or with the places it may mean."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from fastapi import Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mediation.bodies.models import Body, BodyKind
from mediation.core.db import Database
from mediation.core.i18n import Listing, Text

PLACE_SUFFIXES = ("人民调解委员会", "矛盾纠纷调处化解中心", "调处化解中心")
PLACE_KINDS = (BodyKind.people_mediation_committee, BodyKind.mediation_center)
# The most places a message lists: a name that matches more is too short to choose by.
MOST_LISTED = 5


def place_of(name: str) -> str:
    """The place a body's name names: the name without the body's kind, when it is made of the
    place and the kind ("暂停工作的调解委员会" names none; nor does "市人民调解委员会", one
    character)."""
    place = next((name.removesuffix(s) for s in PLACE_SUFFIXES if name.endswith(s)), "")
    return place if len(place) > 1 else ""


async def named_places(session: AsyncSession, codes: Collection[str] | None = None) -> list[tuple[str, str]]:
    """(region code, place name) of every place the registry names (of `codes` only, when given),
    by code; the county's own center first among the names of its code (it names the county in
    full, where one of its committees may not: 市人民调解委员会), then by name."""
    query = select(Body.region_code, Body.name, Body.kind).where(Body.kind.in_(PLACE_KINDS))
    if codes is not None:
        query = query.where(Body.region_code.in_(set(codes)))
    # Ordered below, where the center is put first.
    rows = await session.execute(query)
    found = sorted(
        {(code, place_of(name), kind != BodyKind.mediation_center) for code, name, kind in rows.all()},
        key=lambda row: (row[0], row[2], row[1]),
    )
    out: list[tuple[str, str]] = []
    for code, place, _ in found:
        if place and (code, place) not in out:
            out.append((code, place))
    return out


async def place_named(session: AsyncSession, code: str) -> str | None:
    """The place a region code stands for, named as the registry knows it (`named_places`): the
    village itself, else the town or the county it lies in. A clerk reads "枫桥镇枫源村", not
    330681105201."""
    within = [code] if len(code) == 6 else [code, f"{code[:9]}000", f"{code[:6]}000000", code[:6]]
    names: dict[str, str] = {}
    for region, place in await named_places(session, within):
        names.setdefault(region, place)
    return next((names[c] for c in within if c in names), None)


def _typed(text: str) -> str:
    return "".join(text.split())


def matching(places: list[tuple[str, str]], text: str) -> list[tuple[str, str]]:
    """The places a name typed may mean: those of exactly that name, else those whose name holds
    it or is held in it ("枫桥" or "诸暨市枫桥镇" for 枫桥镇), by code."""
    typed = _typed(text)
    if not typed:
        return []
    exact = [(code, place) for code, place in places if place == typed]
    return exact or [(code, place) for code, place in places if typed in place or place in typed]


def code_named(places: list[tuple[str, str]], text: str) -> str | None:
    """The code of the one place of exactly that name; None when no place or several codes bear
    it: a name is never guessed into a code."""
    codes = {code for code, place in places if place == _typed(text)}
    return codes.pop() if len(codes) == 1 else None


def name_given_message(places: list[tuple[str, str]], text: str) -> Text:
    """What a region field says when a name was typed for the code: the code of the place so
    named, or the places the name may mean, to choose from."""
    typed = _typed(text)
    code = code_named(places, typed)
    if code is not None:
        return Text(
            "请填写行政区划代码, 不是地名: “{name}”为 {code}",
            "Give the region's code, not its name: {name} is {code}",
        ).format(name=typed, code=code)
    found = matching(places, typed)
    if not found:
        return Text(
            "请填写行政区划代码 (6 位或 12 位数字), 不是地名; 已登记的地方中没有“{name}”",
            "Give the region's code (6 or 12 digits, GB/T 2260), not its name; no place known is "
            "named {name}",
        ).format(name=typed)
    listed = Listing(f"{place} {code}" for code, place in found[:MOST_LISTED])
    more = len(found) > MOST_LISTED
    return Text(
        "请填写行政区划代码, 不是地名。“{name}”可能是: {listed}{more}; 请填写所指地方的代码",
        "Give the region's code, not its name. {name} may be: {listed}{more}; give the code of "
        "the place meant",
    ).format(
        name=typed,
        listed=listed,
        more=Text(f" 等 {len(found)} 处", f" and {len(found) - MOST_LISTED} more") if more else "",
    )


async def region_name_hint(request: Request, typed: Any) -> Text | None:
    """The message of a refused region code that was a place's name (`region_name_given`), with
    what the registry knows of the place."""
    if not isinstance(typed, str):
        return None
    db: Database = request.app.state.db
    async with db.reader() as session:
        places = await named_places(session)
    return name_given_message(places, typed)
