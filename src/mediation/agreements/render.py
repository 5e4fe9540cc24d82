"""The printable agreement (人民调解协议书), rendered from the stored data alone.

The page carries every party, every obligation and every signature; ID numbers appear masked
(the full number stays encrypted in the case record), and a print stylesheet lays it out on A4.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import escape
from zoneinfo import ZoneInfo

from mediation.agreements.models import Agreement
from mediation.agreements.rules import awaiting, principals
from mediation.core.i18n import cn_date
from mediation.core.pii import redact_text
from mediation.disputes.enums import PARTY_ROLE_LABELS, AgreementForm
from mediation.disputes.models import Dispute

BEIJING = ZoneInfo("Asia/Shanghai")
METHOD_LABELS = {
    "in_person": "本人签名",
    "fingerprint": "按指印",
    "electronic": "电子签名",
    "seal": "盖章",
    "recorded": "调解员记录",
}
STATUS_LABELS = {"draft": "草稿 (未生效)", "effective": "已生效", "superseded": "已被取代, 不具效力"}

STYLE = """
body { font-family: "Noto Serif CJK SC", "Songti SC", SimSun, serif; max-width: 46em; margin: 2em auto;
       line-height: 1.7; color: #111; }
h1 { text-align: center; letter-spacing: .3em; }
.meta { text-align: right; }
table { border-collapse: collapse; width: 100%; margin: .5em 0 1em; }
th, td { border: 1px solid #444; padding: .25em .5em; text-align: left; vertical-align: top; }
.hash { font-family: monospace; font-size: .8em; word-break: break-all; }
.draft { color: #a00; font-weight: bold; }
@media print { body { margin: 0; max-width: none; } @page { size: A4; margin: 2cm; } .noprint { display: none; } }
"""


def _party_name(dispute: Dispute, party_id: object) -> str:
    for p in dispute.parties:
        if p.id == party_id:
            return p.name
    return "—"


# Where the page holds a text typed about the case (`AgreementPage`), and where its control goes.
_SLOT = re.compile("\x00(\\d+|c)\x00")
_CONTROL = "\x00c\x00"


@dataclass(frozen=True)
class AgreementPage:
    """The printable agreement laid out once, the text typed about the case (names, facts, terms,
    addresses) kept apart from it: whether masking would hide a number in that text is known
    before the page is filled in, masked or as written, once."""

    layout: str
    texts: tuple[str, ...]

    @property
    def hides_numbers(self) -> bool:
        """Whether an ID or phone number is written into its text, which masking hides."""
        return any(redact_text(t) != t for t in self.texts)

    def html(self, *, masked: bool, control: str = "") -> str:
        """The page: `masked`, for a reader without `pii:read` (or until the numbers are asked
        for), any identity or mobile number in its text masked, as in the case's own free text
        (个人信息保护法 Art. 51). `control`: markup the page puts above it and the print leaves out
        (class `noprint`)."""

        def fill(slot: re.Match[str]) -> str:
            if slot.group(1) == "c":
                return control
            text = self.texts[int(slot.group(1))]
            return escape(redact_text(text) if masked else text)

        # One pass: a text filled in is not read again, whatever it holds.
        return _SLOT.sub(fill, self.layout)


def agreement_html(agreement: Agreement, dispute: Dispute, *, masked: bool = False, control: str = "") -> str:
    """The printable agreement (`AgreementPage.html`)."""
    return agreement_page(agreement, dispute).html(masked=masked, control=control)


def agreement_page(agreement: Agreement, dispute: Dispute) -> AgreementPage:
    """The printable agreement, to be filled in masked or as written (`AgreementPage`)."""
    texts: list[str] = []

    def e(text: str) -> str:
        texts.append(text)
        return f"\x00{len(texts) - 1}\x00"

    rows = []
    for p in principals(dispute):
        rows.append(
            f"<tr><td>{e(PARTY_ROLE_LABELS.get(p.role, p.role))}</td><td>{e(p.name)}</td>"
            f"<td>{e(p.id_number_masked or '')}</td><td>{e(p.address or '')}</td></tr>"
        )
    agents = [p for p in dispute.parties if p.role == "agent"]
    for p in agents:
        rows.append(
            f"<tr><td>代理人</td><td>{e(p.name)}</td><td>{e(p.id_number_masked or '')}</td><td></td></tr>"
        )
    obligations = []
    for o in agreement.obligations:
        what = f"支付人民币 {o.amount:.2f} 元" if o.kind == "payment" and o.amount is not None else ""
        obligee = f"向{e(_party_name(dispute, o.obligee_party_id))}" if o.obligee_party_id else ""
        place = f", 履行地点: {e(o.place)}" if o.place else ""
        obligations.append(
            f"<li data-obligation='{o.id}'>{e(_party_name(dispute, o.obligor_party_id))}于"
            f"{cn_date(o.due_on)}前{obligee}{e(what)} {e(o.description)}"
            f" (履行方式: {e(o.manner)}{place})</li>"
        )
    terms = "".join(f"<li>{e(t)}</li>" for t in agreement.terms if t.strip())
    signatures = []
    for s in agreement.signatures:
        who = {"party": "当事人", "mediator": "调解员", "body_seal": "调解组织印章"}.get(s.signer, s.signer)
        at = s.signed_at.astimezone(BEIJING)
        signed = f"{cn_date(at.date())} {at:%H:%M}"
        digest = f"<span class='hash'>{escape(s.document_hash)}</span>" if s.document_hash else ""
        signatures.append(
            f"<tr><td>{who}</td><td>{e(s.name)}</td><td>{METHOD_LABELS.get(s.method, s.method)}</td>"
            f"<td>{signed}</td><td>{digest}</td></tr>"
        )
    for w in awaiting(agreement, dispute):
        signatures.append(f"<tr><td colspan='5' class='draft'>待签署: {e(w.name)}</td></tr>")
    oral = agreement.form == AgreementForm.oral
    title = "口头调解协议记录" if oral else "人民调解协议书"
    effective = (
        f"本协议于{cn_date(agreement.effective_on)}生效。" if agreement.effective_on else "本协议尚未生效。"
    )
    # What binds the parties and when: a written agreement on the last signature and the body's seal
    # (人民调解法 Art. 29), and it may be confirmed by a court (Art. 33); an oral one when reached, as the
    # mediator records it (Art. 28, 30), and a court confirms only a written agreement (民诉法解释
    # Art. 354): the service refuses to apply for confirmation of an oral one.
    legal = (
        "本口头调解协议自各方当事人达成之日起生效, 由调解员记录 (人民调解法第二十八条、第三十条), 具有法律约束力,"
        "\n当事人应当按照约定履行 (人民调解法第三十一条)。口头调解协议不能申请司法确认; 需要司法确认的,"
        "\n应当制作书面调解协议 (民诉法解释第三百五十四条)。"
        if oral
        else "本协议经各方当事人签名、盖章或者按指印, 调解员签名并加盖调解组织印章后生效, 具有法律约束力,"
        "\n当事人应当按照约定履行 (人民调解法第二十九条、第三十一条)。双方当事人可以自协议生效之日起三十日内共同向"
        "\n人民法院申请司法确认 (人民调解法第三十三条)。"
    )
    layout = f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>{title} {e(dispute.case_number)}</title>
<style>{STYLE}</style></head>
<body>
{_CONTROL}<h1>{title}</h1>
<p class="meta">编号: {e(dispute.case_number)}-{agreement.number} · {STATUS_LABELS.get(agreement.status, agreement.status)}</p>
<p>调解组织: {e(agreement.body_name)} · 调解员: {e(agreement.mediator_name or "")}</p>
<h2>当事人</h2>
<table><tr><th>身份</th><th>姓名/名称</th><th>证件号码</th><th>住所</th></tr>{"".join(rows)}</table>
<h2>纠纷主要事实</h2><p>{e(agreement.facts)}</p>
<h2>争议事项</h2><p>{e(agreement.disputed_matters)}</p>
<h2>各方责任</h2><p>{e(agreement.responsibility)}</p>
<h2>协议内容</h2>
<ol class="obligations">{"".join(obligations)}</ol>
{f'<ol class="terms">{terms}</ol>' if terms else ""}
<p>{effective}{legal}</p>
<h2>签署</h2>
<table><tr><th>签署人</th><th>姓名/名称</th><th>方式</th><th>时间</th><th>电子签名所签内容哈希</th></tr>{"".join(signatures)}</table>
<p class="hash">内容哈希 (SHA-256): {agreement.content_hash}</p>
</body></html>
"""
    return AgreementPage(layout, tuple(texts))
