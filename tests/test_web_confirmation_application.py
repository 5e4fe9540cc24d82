"""The printed 司法确认申请书 carries what the court needs of every applicant: identity, contact
telephone, and the address for service (民诉法解释 Art. 354; 法释〔2011〕5号 Art. 3), and names an
agent as such; they are printed in full once asked for (`show=numbers`), and to a reader without
pii:read they are masked as everywhere else."""

from __future__ import annotations

import httpx

from tests.support import Api, intake_body, person
from tests.test_web import signed_in


async def test_the_application_lists_each_partys_phone_and_address_for_service(
    api: Api, web: httpx.AsyncClient
) -> None:
    agent = {**person("agent", "代理人周某", 7), "address": "浙江省诸暨市暨阳街道律师事务所"}
    parties = [*intake_body()["parties"], agent]
    case = await api.drive("agreement_signed", parties=parties)
    # The copy filed with the court: the numbers asked for (`show=numbers`), as the page offers.
    page = await signed_in(web, api).get(f"/cases/{case['id']}/confirmation-application?show=numbers")
    assert page.status_code == 200
    table = page.text.split("<table>")[1].split("</table>")[0]
    assert "联系电话" in table and "<th>住所</th>" in table and "<th>送达地址</th>" in table
    for party in case["parties"]:
        assert party["name"] in table and party["phone"] in table
    assert "委托代理人" in table and "浙江省诸暨市暨阳街道律师事务所" in table

    masked = await signed_in(web, api, "supervisor").get(f"/cases/{case['id']}/confirmation-application")
    table = masked.text.split("<table>")[1].split("</table>")[0]
    assert all(p["phone"] not in table for p in case["parties"])
