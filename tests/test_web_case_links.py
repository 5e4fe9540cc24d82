"""The case page shows the cases sharing a party with this one (the same ID or phone number, the
same respondent unit) and lets the center link them, as one dispute reported twice or as related
ones, through the service the API uses; linked cases are listed on both pages."""

from __future__ import annotations

import uuid

import httpx

from tests.support import Api, person
from tests.test_web import signed_in


async def test_the_clerk_links_a_case_sharing_a_party(api: Api, web: httpx.AsyncClient) -> None:
    earlier = await api.drive(
        "closed", parties=[person("applicant", "钱一", 61), person("respondent", "孙二", 62)]
    )
    later = await api.intake(parties=[person("applicant", "钱一", 61), person("respondent", "李三", 63)])
    unrelated = await api.intake(parties=[person("applicant", "周四", 64), person("respondent", "吴五", 65)])
    clerk = signed_in(web, api)

    page = await clerk.get(f"/cases/{later['id']}")
    related = page.text.split('id="related-cases"')[1].split("</ul>")[0]
    assert earlier["case_number"] in related and unrelated["case_number"] not in related
    assert "证件号码相同" in related

    later = await api.get(later)
    linked = await clerk.post(
        f"/cases/{later['id']}/links",
        {
            "version": f'"{later["version"]}"',
            "idempotency_key": "l1",
            "dispute_id": earlier["id"],
            "kind": "related",
        },
    )
    assert linked.status_code == 303, linked.text[:2000]
    page = await clerk.get(f"/cases/{later['id']}")
    listed = page.text.split('id="linked-cases"')[1].split("</ul>")[0]
    assert earlier["case_number"] in listed and "关联纠纷" in listed
    assert 'id="related-cases"' not in page.text
    other = await clerk.get(f"/cases/{earlier['id']}")
    assert later["case_number"] in other.text.split('id="linked-cases"')[1].split("</ul>")[0]
    assert (await api.timeline(later))[-1]["action"] == "link"


async def test_a_body_is_offered_no_link(api: Api, web: httpx.AsyncClient) -> None:
    parties = [person("applicant", "郑六", 66), person("respondent", "王七", 67)]
    first = await api.drive("mediating", parties=parties)
    await api.intake(parties=[person("applicant", "郑六", 66), person("respondent", "冯八", 68)])
    body = next(name for name, id_ in api.bodies.items() if str(id_) == first["body_id"])
    await api.signed_in("body_mediator", body)
    web.cookies.set("mediation_session", api.tokens[("body_mediator", uuid.UUID(first["body_id"]))])
    page = await web.get(f"/cases/{first['id']}")
    assert page.status_code == 200 and 'id="related-cases"' not in page.text
