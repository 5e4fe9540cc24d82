"""Bilingual texts: the center works in Chinese, integrators often read English."""

from __future__ import annotations

from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date

SUPPORTED = ("zh", "en")
_language: ContextVar[str] = ContextVar("language", default="zh")


def cn_date(day: date) -> str:
    """A day as a formal paper writes it: 2026年12月3日, in Arabic numerals with 年月日 and no
    leading zeros, as Chinese official documents date themselves (GB/T 9704-2012 公文格式, 成文日期).
    The screens keep ISO 8601, which sorts and is typed back into forms."""
    return f"{day.year}年{day.month}月{day.day}日"


@dataclass(frozen=True, slots=True)
class Text:
    zh: str
    en: str

    def get(self, language: str | None = None) -> str:
        return self.en if (language or _language.get()) == "en" else self.zh

    def __str__(self) -> str:
        return self.get()

    def format(self, **values: object) -> Text:
        """Each language filled in with the values as that language says them: a Text or a
        Listing among the values is put in the message's own language."""
        return Text(self.zh.format(**_said_in("zh", values)), self.en.format(**_said_in("en", values)))


@dataclass(frozen=True, slots=True)
class Listing:
    """Names listed in a message, as each language lists them: 甲、乙 in Chinese, "A, B" in
    English; with none, 无 or "none"."""

    items: tuple[str, ...]

    def __init__(self, items: Iterable[str]) -> None:
        object.__setattr__(self, "items", tuple(items))

    def get(self, language: str | None = None) -> str:
        if (language or _language.get()) == "en":
            return ", ".join(self.items) or "none"
        return "、".join(self.items) or "无"


def _said_in(language: str, values: dict[str, object]) -> dict[str, object]:
    return {k: v.get(language) if isinstance(v, Text | Listing) else v for k, v in values.items()}


def negotiate(accept_language: str | None, default: str = "zh") -> str:
    """Pick zh or en from an Accept-Language header, honouring q-values.

    A language given q=0 is "not acceptable" (RFC 9110 §12.4.2), never a choice, however low the
    others are; with nothing acceptable left, the default."""
    if not accept_language:
        return default
    best, best_q = default, 0.0
    for item in accept_language.split(","):
        tag, *params = item.split(";")
        q = 1.0
        for param in params:
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = 0.0  # an unreadable weight accepts nothing
        primary = tag.strip().lower().split("-")[0]
        if primary in SUPPORTED and q > best_q:
            best, best_q = primary, q
    return best


def set_language(language: str) -> None:
    _language.set(language)


def current_language() -> str:
    return _language.get()
