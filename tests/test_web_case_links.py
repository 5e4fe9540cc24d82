"""The case page shows the cases sharing a party with this one (the same ID or phone number, the
same respondent unit) and lets the center link them, as one dispute reported twice or as related
ones, through the service the API uses; linked cases are listed on both pages."""

from __future__ import annotations

import uuid

import httpx

from tests.support import Api, person
from tests.test_web import signed_in
from tests.test_web_confirm_and_errors import _confirm_of


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


async def test_the_clerk_unlinks_a_case_linked_by_mistake(api: Api, web: httpx.AsyncClient) -> None:
    earlier = await api.intake(parties=[person("applicant", "钱一", 61), person("respondent", "孙二", 62)])
    later = await api.intake(parties=[person("applicant", "钱一", 61), person("respondent", "李三", 63)])
    made = await api.client.post(f"/v1/disputes/{later['id']}/links", json={"dispute_id": earlier["id"]})
    assert made.status_code == 201, made.text
    later, earlier = await api.get(later), await api.get(earlier)
    clerk = signed_in(web, api)

    page = (await clerk.get(f"/cases/{later['id']}")).text
    listed = page.split('id="linked-cases"')[1].split("</ul>")[0]
    url = f"/cases/{later['id']}/links/{earlier['id']}/removal"
    assert f'action="{url}"' in listed and "解除理由" in listed
    assert "两案时间线仍记录关联与解除" in _confirm_of(listed, "解除关联")

    # Refused without a reason: the page again, the form open with the message, nothing changed.
    form = {"version": f'"{later["version"]}"', "idempotency_key": "u1", "reason": ""}
    refused = await clerk.post(url, form)
    assert refused.status_code == 422, refused.text[:2000]
    # The form's own list of errors is a list too: the row ends with its form.
    shown = refused.text.split('id="linked-cases"')[1].split("</details>")[0]
    assert '<details class="task unlink-case" open>' in shown
    assert 'id="f-unlink-1-reason-error"' in shown
    assert (await api.get(later))["version"] == later["version"]

    done = await clerk.post(url, {**form, "idempotency_key": "u2", "reason": "并非同一纠纷, 误关联"})
    assert done.status_code == 303, done.text[:2000]
    assert done.headers["location"] == f"/cases/{later['id']}?done=unlinked#links"
    for case, other in ((later, earlier), (earlier, later)):
        page = (await clerk.get(f"/cases/{case['id']}")).text
        assert 'id="linked-cases"' not in page
        # Sharing a party still, the other case is offered to be linked again.
        assert other["case_number"] in page.split('id="related-cases"')[1].split("</ul>")[0]
        entry = page.split('data-action="unlink"')[1].split("</li>")[0]
        assert f'解除关联: <span class="named">{other["case_number"]}</span>' in entry
        assert "并非同一纠纷, 误关联" in entry
        assert (await api.get(case))["version"] == case["version"] + 1
    assert "已解除关联" in (await clerk.get(f"/cases/{later['id']}?done=unlinked")).text

    # The same form sent again (a double click) replays; a new one finds the link gone, and says so.
    again = await clerk.post(url, {**form, "idempotency_key": "u2", "reason": "并非同一纠纷, 误关联"})
    assert again.status_code == 303
    gone = await clerk.post(url, {**form, "version": f'"{later["version"] + 1}"', "reason": "再次解除"})
    assert gone.status_code == 404, gone.text[:2000]
    assert "两案未关联" in gone.text.split('id="links"')[1].split("</section>")[0]
    assert (await api.get(later))["version"] == later["version"] + 1


async def test_only_staff_who_link_are_offered_to_unlink(api: Api, web: httpx.AsyncClient) -> None:
    parties = [person("applicant", "郑六", 66), person("respondent", "王七", 67)]
    first = await api.drive("mediating", parties=parties)
    # Both at the same body, which sees the link but does not make or remove links.
    second = await api.drive(
        "mediating", parties=[person("applicant", "郑六", 66), person("respondent", "冯八", 68)]
    )
    assert second["body_id"] == first["body_id"]
    made = await api.client.post(f"/v1/disputes/{second['id']}/links", json={"dispute_id": first["id"]})
    assert made.status_code == 201, made.text
    body = next(name for name, id_ in api.bodies.items() if str(id_) == first["body_id"])
    await api.signed_in("body_mediator", body)
    web.cookies.set("mediation_session", api.tokens[("body_mediator", uuid.UUID(first["body_id"]))])
    page = await web.get(f"/cases/{first['id']}")
    assert page.status_code == 200
    assert second["case_number"] in page.text.split('id="linked-cases"')[1].split("</ul>")[0]
    assert "/removal" not in page.text and "解除关联</button>" not in page.text
