"""The statistics as CSV for spreadsheets: UTF-8 with a byte-order mark, without which Excel
reads the Chinese names as GBK. Headers and names follow the request language."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from zoneinfo import ZoneInfo

from mediation.core.i18n import Text
from mediation.stats.schemas import CountOut, OverviewOut, PeriodOut, TrendOut

BOM = "\ufeff"
Cell = str | int | float | None

OVERVIEW_COLUMNS = (
    Text("维度", "section"),
    Text("代码", "key"),
    Text("名称", "label"),
    Text("数量", "count"),
    Text("分母", "denominator"),
    Text("比率", "rate"),
    Text("平均值", "average"),
    Text("P90(小时)", "p90_hours"),
)
TOTALS = {
    "cases": Text("登记案件", "Cases registered"),
    "closed": Text("已结案", "Closed"),
    "mediations_concluded": Text("调解终结", "Mediations concluded"),
    "agreements": Text("达成协议", "Agreements"),
    "confirmations_decided": Text("司法确认已决", "Confirmations decided"),
    "confirmed": Text("确认有效", "Confirmed"),
    "overdue": Text("曾经超期", "Ever overdue"),
}
RATES = {
    "success": Text("调解成功率", "Success rate"),
    "confirmation": Text("司法确认率", "Confirmation rate"),
    "overdue": Text("超期率", "Overdue rate"),
}
META = {
    "from": Text("起始日期", "From"),
    "to": Text("截止日期", "To"),
    "region": Text("地区", "Region"),
    "as_of": Text("数据截至", "As of"),
}
TREND_COLUMNS = (
    ("period", Text("期间", "period")),
    ("start", Text("起始日", "start")),
    ("end", Text("截止日", "end")),
    ("registered", Text("登记", "registered")),
    ("closed", Text("结案", "closed")),
    ("mediations_concluded", Text("调解终结", "mediations_concluded")),
    ("agreements", Text("达成协议", "agreements")),
    ("success_rate", Text("调解成功率", "success_rate")),
    ("confirmations_decided", Text("司法确认已决", "confirmations_decided")),
    ("confirmed", Text("确认有效", "confirmed")),
    ("confirmation_rate", Text("司法确认率", "confirmation_rate")),
    ("overdue", Text("曾经超期", "overdue")),
    ("overdue_rate", Text("超期率", "overdue_rate")),
    ("satisfaction_count", Text("满意度评价数", "satisfaction_count")),
    ("satisfaction_average", Text("平均满意度", "satisfaction_average")),
)
TOTAL_ROW = Text("合计", "total")
# What a spreadsheet reads as the start of a formula (OWASP "CSV injection"): a body's name such as
# =HYPERLINK(...) would otherwise run, or send data away, on the reader's machine. Tab and carriage
# return count as well, since some spreadsheets drop them and read what follows.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _text(cell: Cell) -> Cell:
    """A text cell a spreadsheet shows as the text it is: one starting like a formula is led by an
    apostrophe. Figures are numbers, never text, so a count or a rate is written as it is."""
    if isinstance(cell, str) and cell.startswith(FORMULA_STARTS):
        return "'" + cell
    return cell


def _write(header: Sequence[Text], rows: Iterable[Sequence[Cell]]) -> str:
    """Every row as wide as the header, empty cells where a figure does not apply."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([_text(column.get()) for column in header])
    for row in rows:
        cells = ["" if cell is None else _text(cell) for cell in row]
        writer.writerow(cells + [""] * (len(header) - len(cells)))
    return BOM + out.getvalue()


def _counts(section: str, counts: list[CountOut]) -> list[list[Cell]]:
    return [[section, c.key, c.label, c.count] for c in counts]


def overview_csv(overview: OverviewOut, zone: ZoneInfo) -> str:
    """One row per figure: the section it belongs to, its code and name, then the columns that apply.

    The sheet is read by people, beside `from` and `to`, which are days of the center's local time:
    the moment the figures are as of is written in that time too (with its offset), or a sheet made
    after midnight would say it was made the day before."""
    rows: list[list[Cell]] = []
    meta = {
        "from": overview.from_.isoformat(),
        "to": overview.to.isoformat(),
        "region": overview.region,
        "as_of": overview.as_of.astimezone(zone).isoformat(),
    }
    rows += [["meta", key, value] for key, value in meta.items()]
    totals = overview.totals.model_dump()
    rows += [["totals", key, name.get(), totals[key]] for key, name in TOTALS.items()]
    for section, counts in (
        ("status", overview.by_status),
        ("category", overview.by_category),
        ("channel", overview.by_channel),
        ("tier", overview.by_tier),
        ("region", overview.by_region),
        ("area", overview.by_area),
        ("body", overview.by_body),
        ("mediation_result", overview.mediation_results),
        ("confirmation_result", overview.confirmation_results),
    ):
        rows += _counts(section, counts)
    for key, name in RATES.items():
        rate = getattr(overview.rates, key)
        rows.append(["rate", key, name.get(), rate.numerator, rate.denominator, rate.rate])
    for stage in overview.stages:
        rows.append(
            ["stage", stage.stage, stage.label, stage.count, None, None, stage.average_hours, stage.p90_hours]
        )
    satisfaction = overview.satisfaction
    average = Text("平均满意度", "Average satisfaction").get()
    rows.append(["satisfaction", "average", average, satisfaction.count, None, None, satisfaction.average])
    rows += _counts("satisfaction", satisfaction.distribution)
    return _write(OVERVIEW_COLUMNS, rows)


def _period_row(period: PeriodOut, label: str | None = None) -> list[Cell]:
    values = period.model_dump()
    if label is not None:
        values["period"] = label
    return [_cell(values[field]) for field, _ in TREND_COLUMNS]


def _cell(value: object) -> Cell:
    if value is None or isinstance(value, int | float | str):
        return value
    return str(value)  # dates, as ISO 8601


def trend_csv(trend: TrendOut) -> str:
    """One row per period, then the whole range as a last row labelled total."""
    rows = [_period_row(period) for period in trend.periods]
    rows.append(_period_row(trend.total, TOTAL_ROW.get()))
    return _write([name for _, name in TREND_COLUMNS], rows)
