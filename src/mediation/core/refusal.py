"""A rule's refusal: a stable code, the message in both languages, and the article it applies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mediation.core.i18n import Text


@dataclass(frozen=True, slots=True)
class Refusal:
    code: str
    message: Text
    article: str | None = None

    def as_dict(self, language: str | None = None) -> dict[str, Any]:
        return {"code": self.code, "message": self.message.get(language), "article": self.article}


def summary(refusals: list[Refusal]) -> Text:
    return Text("; ".join(r.message.zh for r in refusals), "; ".join(r.message.en for r in refusals))
