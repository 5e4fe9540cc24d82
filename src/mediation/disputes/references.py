"""The number a referring system gave a case (`external_reference`): how it is written, and whose
numbering it belongs to.

A 12345 platform's work order, a court's 诉前调 case number, a petition office's 信访 number and a
police report's number are each issued by one side in its own sequence; another county's platform
or another court may issue the same number for another dispute. One issuer's number registers one
case (a platform's retried push, or the same referral typed in twice), another issuer's never
collides with it.
"""

from __future__ import annotations

import re
import unicodedata
import uuid

from mediation.core.i18n import Text
from mediation.core.schemas import DomainValueError
from mediation.disputes.enums import Channel

# As long as the column (disputes.external_reference, String(64)). The longest references seen are
# court case numbers, "（2026）浙0681民诉前调12345号", about twenty characters; a platform's id
# beyond 64 is not a number someone can type or read out at the window.
MAX_LENGTH = 64

# Brackets and dashes, folded to one form each. NFKC has already made full-width （）［］－ half-width.
# 〔〕 is how a 公文 number writes its year (GB/T 9704-2012 §7.2.4, 发文字号: "年份应标全称, 用六角括号
# 〔〕括入"); without 〔 on the keyboard it is typed as [ ] or 【】, so those are the same number.
# Round brackets stay round: a court's case number uses them (最高人民法院关于人民法院案件案号的若干
# 规定 Art. 3), written （） or ().
_FOLDED = str.maketrans(
    {
        "[": "〔",
        "]": "〕",
        "【": "〔",
        "】": "〕",
        "〖": "〔",
        "〗": "〕",
        "〘": "〔",
        "〙": "〕",
        # hyphen, figure dash, en and em dash, horizontal bar, minus, two- and three-em dash
        **dict.fromkeys("\u2010\u2012\u2013\u2014\u2015\u2212\u2e3a\u2e3b", "-"),
    }
)
# Between the letters and digits of a reference, only the separators institutions write.
SEPARATORS = frozenset("-_./:#()〔〕")
_DASHES = re.compile(r"-{2,}")


def canonical_reference(value: str) -> str:
    """A reference in the one form it is stored and compared in, so the same number typed another
    way is found as the same number and cannot register a second case:
    - full-width letters, digits and punctuation as their ASCII forms (NFKC): （２０２６） is (2026);
    - 〔〕, [ ], 【】 all as 〔〕; every dash as "-", and a run of them (——, typed for a dash on a
      Chinese keyboard) as one;
    - spaces inside dropped (any width: the ideographic space too): an issuer's number has none, and
      one copied from a paper or a PDF often does ("浙信转 〔2026〕 12号"). Leading and trailing
      ones are trimmed like any text sent. A line break or tab is a control character, refused.
    Then only letters and digits of any script and the separators above remain: a control or
    invisible character (a zero-width space, a direction override), markup or punctuation of another
    kind is refused, as is a reference longer than the column once folded (one character may fold
    to several: ㈱ is (株))."""
    folded = unicodedata.normalize("NFKC", value).translate(_FOLDED)
    folded = _DASHES.sub("-", "".join(c for c in folded if unicodedata.category(c) != "Zs"))
    for character in folded:
        if character not in SEPARATORS and unicodedata.category(character)[0] not in "LN":
            raise DomainValueError(
                "external_reference_characters",
                Text(
                    "外部编号只能由文字、数字和 - _ . / : # ( ) 〔〕 组成, 不能含 U+{c:04X}",
                    "A reference is letters, digits and - _ . / : # ( ) 〔〕; it may not hold U+{c:04X}",
                ).format(c=ord(character)),
            )
    if not folded:
        raise DomainValueError("external_reference_empty", Text("外部编号不能为空", "The reference is empty"))
    if len(folded) > MAX_LENGTH:
        raise DomainValueError(
            "external_reference_too_long",
            Text("外部编号最多 {n} 个字符", "A reference has at most {n} characters").format(n=MAX_LENGTH),
        )
    return folded


def reference_scope(channel: str, region_code: str, inviting_court_id: uuid.UUID | None) -> str:
    """Whose numbering a case's reference belongs to, as far as the case records it: the court that
    delegated it (特邀调解: its own case number, 诉前调), else the county the case is registered in
    (the first six digits of its GB/T 2260 code, as its case number's). A county's 12345 platform,
    petition office and police bureau number their own cases; two counties' may issue the same
    number, and a city- or province-wide deployment registers both."""
    if channel == Channel.court_delegated and inviting_court_id is not None:
        return str(inviting_court_id)
    return region_code[:6]
