"""The papers the center prints name each party by its role and the matter in words.

The intake receipt lists a third party as 第三人 and an agent as 代理人, not as a respondent; a
judicial confirmation is applied for by the parties together (民事诉讼法 Art. 205; 人民调解法 Art. 33),
so the application names each of them an applicant. Category and handoff are printed as the
center names them, not as API codes. These pages are hashed into the dossier a court receives:
what they say cannot be corrected afterwards.
"""

from __future__ import annotations

import uuid
from typing import Any

from mediation.disputes.models import Dispute, Party
from mediation.disputes.paperwork import handoff_lines
from tests.support import Api, person
from tests.test_documents import docs_url, walk


async def page_of(api: Api, dispute: dict[str, Any], kind: str) -> str:
    listed = (await api.client.get(docs_url(dispute))).json()
    [document] = [d for d in listed if d["kind"] == kind and d["status"] == "active"]
    content = await api.client.get(docs_url(dispute, document["id"], "/content"))
    assert content.status_code == 200, content.text
    return content.content.decode()


async def test_the_receipt_names_each_party_by_its_role_and_the_category_in_words(api: Api) -> None:
    parties = [
        person("applicant", "张三", 1),
        person("respondent", "李四", 2),
        person("third_party", "王五", 3),
        person("agent", "赵律师", 4),
    ]
    dispute = await api.intake(parties=parties, category="neighbour")
    receipt = await page_of(api, dispute, "receipt")
    for line in ("申请人: 张三", "被申请人: 李四", "第三人: 王五", "代理人: 赵律师", "纠纷类别: 邻里"):
        assert line in receipt
    assert "被申请人: 王五" not in receipt and "被申请人: 赵律师" not in receipt
    assert "neighbour" not in receipt


async def test_the_confirmation_application_names_every_party_an_applicant(api: Api) -> None:
    dispute = await api.intake()
    dispute = await walk(api, dispute, "accept", "assign", "sign_for", "agree", "request_confirmation")
    application = await page_of(api, dispute, "application")
    assert "申请人: 张三 (调解中为申请人)" in application
    assert "申请人: 李四 (调解中为被申请人)" in application
    assert "被申请人: 李四" not in application
    assert "移交事项: 司法确认申请" in application and "judicial_confirmation" not in application


async def test_a_referral_letter_names_the_matter_in_words(api: Api) -> None:
    dispute = await api.intake(category="contract")
    dispute = await walk(api, dispute, "accept", "assign", "sign_for", "fail", "refer_litigation")
    letter = await page_of(api, dispute, "filing_pack")
    assert "移交事项: 移送诉讼" in letter and "移交类型" not in letter
    assert "被申请人: 李四" in letter


def test_a_party_who_did_not_apply_is_not_named_an_applicant() -> None:
    """A third party bound by nothing it applied for stays a third party on the court's paper."""
    parties = [
        Party(id=uuid.uuid4(), role=role, name=name)
        for role, name in (
            ("applicant", "张三"),
            ("respondent", "李四"),
            ("third_party", "王五"),
            ("agent", "赵律师"),
        )
    ]
    dispute = Dispute(
        case_number="330681-2026-000001", parties=parties, handoff={"kind": "judicial_confirmation"}
    )
    lines = handoff_lines(dispute, {str(parties[0].id), str(parties[1].id)})
    assert lines[1:5] == [
        "申请人: 张三 (调解中为申请人)",
        "申请人: 李四 (调解中为被申请人)",
        "第三人: 王五",
        "代理人: 赵律师",
    ]
