"""An alert's title in either language.

The title is written in Chinese when the alert is raised or joined (`alerts.title`, which the
timeline quotes and other readers take as it is), and the values it was written with are kept in
the alert's details (`title_values`), so a reader asking for English reads the same title in
English, rendered when it is read. A repeat's title counts the cases the alert lists, so it needs no
values. An alert written before the values were kept, or whose cluster rule has no English label,
reads its Chinese title in either language.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mediation.alerts.detect import DANGER_LABELS, AlertRules, ClusterRule, Danger
from mediation.core.i18n import Text
from mediation.core.principal import ROLE_NAMES, Role
from mediation.stats.labels import CATEGORY

if TYPE_CHECKING:
    from mediation.alerts.models import Alert

# The key in an alert's details that holds what its title says; internal, not part of the details
# the API answers.
TITLE_VALUES = "title_values"
# The kind of alert that asks the center for a new query code (`AlertService.query_codes_guessed`).
QUERY_CODE = "query_code"

# The reason a risk alert gives when the clerk registering the case marked it as dangerous.
MARKED_AT_INTAKE = Text(
    "受理员登记时标记为涉稳或有激化危险",
    "marked at intake as affecting social stability or at risk of escalation",
)


def marked() -> dict[str, Any]:
    return {"reason": "marked"}


def flagged(role: Role, danger: Danger) -> dict[str, Any]:
    return {"reason": "flagged", "role": role.value, "danger": danger.value}


def said(kinds: list[str]) -> dict[str, Any]:
    return {"reason": "words", "kinds": sorted(kinds)}


def _reason(reason: Mapping[str, Any], rules: AlertRules) -> Text:
    if reason["reason"] == "marked":
        return MARKED_AT_INTAKE
    if reason["reason"] == "flagged":
        role, danger = Role(reason["role"]), DANGER_LABELS[Danger(reason["danger"])]
        name = ROLE_NAMES[role]
        return Text(f"{name.zh}报告{danger.zh}", f"{name.en} reported: {danger.en}")
    if reason["reason"] == "words":
        dangers = [Danger(kind) for kind in reason["kinds"]]
        # The Chinese names the word lists as the rules file labels them (as the hits did).
        labels = sorted(
            {rules.risk_words[d].label if d in rules.risk_words else DANGER_LABELS[d].zh for d in dangers}
        )
        return Text(
            "含{}表述".format("、".join(labels)),
            # Each label may hold an "or" of its own: the kinds are set apart by slashes.
            "words suggesting {}".format(" / ".join(DANGER_LABELS[d].en for d in dangers)),
        )
    raise ValueError(f"unknown reason {reason['reason']!r}")


def risk(values: Mapping[str, Any], rules: AlertRules) -> Text:
    """The case (its number may come last at intake) and why it is at risk."""
    reasons = [_reason(reason, rules) for reason in values["reasons"]]
    number = values["case_number"]
    return Text(
        f"风险预警: {number} {'; '.join(r.zh for r in reasons)}",
        f"Risk alert: {number} {'; '.join(r.en for r in reasons)}",
    )


def category_about(category: str, town: str | None) -> Text:
    """A category wave's subject: the category by its name, and the town by its code (a
    county-level case's "town" is its county, which the alert's region already says)."""
    label = CATEGORY[category]
    if town is None:
        return Text(f"{label.zh}类", label.en)
    return Text(f"{label.zh}类, 乡镇代码 {town}", f"{label.en}, town code {town}")


def cluster(values: Mapping[str, Any], rule: ClusterRule) -> Text:
    """The wave as it was raised: the cases that raised it, the rule, and what they share."""
    if values.get("category") is not None:
        about = category_about(values["category"], values.get("town"))
    else:
        about = Text(values["about"], values["about"])  # a respondent's name, an address
    days, cases = values["window_days"], values["cases"]
    return Text(
        f"群体性风险预警: {days} 日内 {cases} 起纠纷 ({rule.label}): {about.zh}",
        f"Group dispute risk alert: {cases} disputes within {days} days ({rule.label_en}): {about.en}",
    )


def repeat(cases: int) -> Text:
    return Text(
        f"重复纠纷预警: 同一当事人之间第 {cases} 起纠纷",
        f"Repeat dispute alert: {_ordinal(cases)} dispute between the same parties",
    )


def query_code(values: Mapping[str, Any]) -> Text:
    """A case whose status lookup was slowed by wrong query codes, and what the center does."""
    number, failures, hours = values["case_number"], values["failures"], values["hours"]
    return Text(
        f"查询码多次输错: {number} {hours} 小时内查询码输错 {failures} 次, 查询已放慢 (每次须等待); "
        "当事人前来的, 请核实身份后重新生成查询码",
        f"Query code guessed at: {number} had {failures} wrong query codes within {hours} hours and its "
        "lookup is slowed down (a wait before each code); when the party comes, give a new code once "
        "you have checked who they are",
    )


def _ordinal(n: int) -> str:
    """2nd, 3rd, 11th, 21st."""
    suffix = "th" if n % 100 in (11, 12, 13) else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def of(alert: Alert, language: str, rules: AlertRules) -> str:
    """The alert's title in `language`: the Chinese as written, or the English rendered from what
    it says; the Chinese when the alert does not hold what the English needs."""
    if language != "en":
        return alert.title
    if alert.kind == "repeat":
        return repeat(alert.case_count).en
    values = (alert.details or {}).get(TITLE_VALUES)
    if not isinstance(values, dict):
        return alert.title  # written before the values were kept
    try:
        if alert.kind == "risk":
            return risk(values, rules).en
        if alert.kind == QUERY_CODE:
            return query_code(values).en
        if alert.kind == "cluster":
            rule = next((r for r in rules.clusters if r.id == values["rule"]), None)
            if rule is not None and rule.label_en:
                return cluster(values, rule).en
    except (KeyError, TypeError, ValueError):
        pass  # values some later version wrote differently: the title as written
    return alert.title
