"""Bilingual texts: the center works in Chinese, integrators often read English."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

SUPPORTED = ("zh", "en")
_language: ContextVar[str] = ContextVar("language", default="zh")


@dataclass(frozen=True, slots=True)
class Text:
    zh: str
    en: str

    def get(self, language: str | None = None) -> str:
        return self.en if (language or _language.get()) == "en" else self.zh

    def __str__(self) -> str:
        return self.get()

    def format(self, **values: object) -> Text:
        return Text(self.zh.format(**values), self.en.format(**values))


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
