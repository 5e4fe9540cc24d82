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
    """Pick zh or en from an Accept-Language header, honouring q-values."""
    if not accept_language:
        return default
    best, best_q = default, -1.0
    for item in accept_language.split(","):
        tag, _, params = item.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in SUPPORTED and q > best_q:
            best, best_q = primary, q
    return best


def set_language(language: str) -> None:
    _language.set(language)


def current_language() -> str:
    return _language.get()
