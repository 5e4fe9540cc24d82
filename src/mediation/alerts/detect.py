"""What early warning looks for, as data and pure functions (domain.md §4.4).

Risk words signal violence, self-harm or gathering; a mediator who learns of a danger of violence
must report it to the police promptly (人民调解法 Art. 25), so such a case is flagged at once.
Clusters are N or more disputes within D days in one county against the same respondent, at the
same place, or of the same category in the same town: a possible group dispute (群体性) forming.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from importlib import resources
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from mediation.core.i18n import Text


class ClusterBy(StrEnum):
    respondent = "respondent"  # the same respondent (ID/credit code, or an organisation's name)
    place = "place"  # the same address, e.g. one housing project
    category = "category"  # the same category in the same town


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WordList(_Strict):
    label: str
    words: Annotated[list[Annotated[str, Field(min_length=1, max_length=20)]], Field(min_length=1)]


class ClusterRule(_Strict):
    id: Annotated[str, Field(pattern=r"^[a-z_]+$")]
    by: ClusterBy
    min_cases: Annotated[int, Field(ge=2, le=1000)]
    window_days: Annotated[int, Field(ge=1, le=365)]
    label: str
    # What an English reader's alert title calls the rule; without it, they read the Chinese title.
    label_en: str | None = None


class AlertRules(_Strict):
    risk_words: dict[Danger, WordList]
    # A risk word said just after one of these is denied, not threatened ("双方均表示不会报复对方").
    negations: list[Annotated[str, Field(min_length=1, max_length=10)]] = []
    # Between a negation and a risk word, one of these makes the negation a condition and the risk
    # word what follows from it ("再没钱就跳楼", "没有钱就拿刀"): the word is threatened, not denied.
    conditionals: list[Annotated[str, Field(min_length=1, max_length=10)]] = []
    clusters: list[ClusterRule]
    repeat_within_days: Annotated[int, Field(ge=1, le=3650)] = 365


@lru_cache(maxsize=1)
def load() -> AlertRules:
    text = resources.files("mediation.alerts").joinpath("default_rules.json").read_text("utf-8")
    return AlertRules.model_validate(json.loads(text))


_SPACES = re.compile(r"[\s\u3000]+")


def normalise(text: str) -> str:
    """Full-width to half-width and no spaces, so "跳 楼" and "跳楼" match alike."""
    return _SPACES.sub("", unicodedata.normalize("NFKC", text)).lower()


class Danger(StrEnum):
    """What danger a risk alert is about: the kinds of risk words (the keys of `risk_words`), and a
    criminal or public-security matter, which staff report though no word names it (人民调解法
    Art. 25: 可能激化为刑事案件或者治安案件)."""

    violence = "violence"
    self_harm = "self_harm"
    gathering = "gathering"
    criminal = "criminal"


DANGER_LABELS: dict[Danger, Text] = {
    Danger.violence: Text("暴力威胁", "threat of violence"),
    Danger.self_harm: Text("自伤自杀", "self-harm or suicide"),
    Danger.gathering: Text("聚集滋事、集体上访", "mass gathering or petition"),
    Danger.criminal: Text(
        "可能激化为刑事或治安案件", "risk of turning into a criminal or public-security case"
    ),
}


@dataclass(frozen=True, slots=True)
class RiskHit:
    kind: str  # a Danger: violence | self_harm | gathering (criminal too, if a rules file lists words)
    label: str
    word: str


# How many characters may stand between a negation and the risk word it denies ("不会再去报复").
# Kept short: a threat missed costs more than a false alarm ("没办法就拿刀" is not denied).
NEGATION_GAP = 2


def risk_words(text: str, rules: AlertRules) -> list[RiskHit]:
    """The risk words `text` says, each once. A word counts where it is not denied: at least one
    place where no negation of the word itself stands just before it."""
    plain = normalise(text)
    negations = [normalise(n) for n in rules.negations]
    conditionals = [normalise(c) for c in rules.conditionals]
    hits = []
    for kind, words in rules.risk_words.items():
        for word in words.words:
            needle = normalise(word)
            if any(not _denied(plain, at, negations, conditionals) for at in _places(plain, needle)):
                hits.append(RiskHit(kind.value, words.label, word))
    return hits


def _places(text: str, needle: str) -> list[int]:
    places, at = [], text.find(needle)
    while at >= 0:
        places.append(at)
        at = text.find(needle, at + 1)
    return places


_CLAUSE_BREAK = re.compile(r"[^\w]")


def _denied(text: str, at: int, negations: list[str], conditionals: list[str]) -> bool:
    """Whether a negation before the word at `at` negates the word itself ("没有拿刀", "不会再去报复",
    "没有人拿刀"): within a few characters, in the same clause, and with no conditional between
    them. "再没钱就跳楼" negates the money, and threatens the jump."""
    for negation in negations:
        found = text.rfind(negation, 0, at)
        if found < 0:
            continue
        between = text[found + len(negation) : at]
        if len(between) > NEGATION_GAP or _CLAUSE_BREAK.search(between):
            continue
        if any(conditional in between for conditional in conditionals):
            continue
        return True
    return False


# What a key column holds (disputes.place_key, alerts.key and open_key).
KEY_LENGTH = 200


def bounded(key: str, limit: int = KEY_LENGTH) -> str:
    """`key` as it is if it fits in `limit` characters; otherwise its start and a digest of the
    whole, so two long keys stay as distinct as they were and each stays the same every time."""
    if len(key) <= limit:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"{key[: limit - len(digest) - 1]}~{digest}"


def place_key(address: str | None) -> str | None:
    """An address reduced to what identifies the place: no spaces or punctuation, and no unit or
    room number, so "幸福小区3栋2单元501" and "幸福小区 3栋" are the same project. Kept with the
    case at intake (`disputes.place_key`), where early warning finds the cases of one place."""
    if not address:
        return None
    plain = re.sub(r"[^\w]", "", normalise(address))
    plain = re.sub(r"\d+(栋|幢|号楼|单元|室|层).*$", "", plain)
    return bounded(plain) if plain else None
