"""Free text masks what the structured fields mask, in the forms people type the numbers in.

A role without `pii:read` sees a party's passport as `E******78` and a landline as `057*****4321`;
the same numbers typed into a description or a note, split into groups, after a country code or
the word for the document, are masked the same way (个人信息保护法 Art. 51; 民法典 Art. 1034). The
numbers supervisors must read (case numbers, dates, amounts, times, ids, digests, article numbers,
region and postal codes) are left as they are.
"""

from __future__ import annotations

import logging

import pytest

from mediation.core.logging import install_pii_redaction
from mediation.core.pii import mask_id_number, mask_phone, redact_text
from tests.support import person

MASKED = [
    # landlines with their area code, as intake takes them (and the mask it stores)
    ("电话0575-87654321", "电话057*****4321"),
    ("057587654321", "057*****4321"),
    ("0575 87654321", "057*****4321"),
    ("0575 8765 4321", "057*****4321"),
    ("(0575)87654321", "057*****4321"),
    ("（０５７５）８７６５４３２１", "057*****4321"),
    ("0575-8765432", "057****5432"),
    ("010-62345678", "010****5678"),
    ("020 8765 4321", "020****4321"),
    ("0575-87654321-123", "057*********-123"),
    ("0575-87654321转123", "057*********-123"),
    ("+86 575 87654321", "+86 575****4321"),
    ("0086-10-62345678", "0086-106***5678"),
    # mobiles split by spaces, dots or dashes, with a country code
    ("138.0000.0001", "138****0001"),
    ("138 0000 0001", "138****0001"),
    ("138-0000-0001", "138****0001"),
    ("+86 138-0000-0001", "+86 138****0001"),
    ("+86 138 0000 0001", "+86 138****0001"),
    ("0086 13800000001", "0086 138****0001"),
    ("(+86)13800000002", "(+86)138****0002"),
    ("(+86) 138 0000 0002", "(+86) 138****0002"),
    # ... and with different marks between the groups, as people type them
    ("138-0000 0001", "138****0001"),
    ("138 0000-0001", "138****0001"),
    ("电话138.0000-0001", "电话138****0001"),
    ("+86 138-0000 0001", "+86 138****0001"),
    # identity numbers in their groups: address code, birth date, serial and check
    ("身份证 330681 19900517 0016", "身份证 330***********0016"),
    ("330681-19900517-0016", "330***********0016"),
    ("330681 1990 0517 001X", "330***********001X"),
    ("330681 900517 001", "330********7001"),
    # passports and travel permits, alone or after the word for them
    ("护照E12345678", "护照E******78"),
    ("G12345678", "G******78"),
    ("EA1234567", "E******67"),
    ("SE1234567", "S******67"),
    ("往来港澳通行证C12345678", "往来港澳通行证C******78"),
    ("回乡证H12345678", "回乡证H******78"),
    ("M1234567890", "M********90"),
    ("L12345678", "L******78"),
    ("USA123456789012", "USA********9012"),
    ("passport No. X1234567", "passport No. X*****67"),
    ("Passport number: 123456789", "Passport number: 1******89"),
    ("护照号码：AB1234567", "护照号码：A******67"),
    ("护照号码为X1234567", "护照号码为X*****67"),
    ("护照 E20260315", "护照 E******15"),
    ("台胞证 12345678", "台胞证 1*****78"),
    ("台胞证号是12345678", "台胞证号是1*****78"),
    ("台湾居民来往大陆通行证号码:1234567890", "台湾居民来往大陆通行证号码:1*******90"),
]

UNTOUCHED = [
    "案件编号 330681-2026-000001",
    "于 2026-06-01 09:00 受理",
    "2026.06.01",
    "20260601",
    "2026年06月01日 14:30-16:00",
    "标的额 12,000.00 元",
    "120000 元",
    "13800001234.50 元",
    "依据民法典第1034条",
    "GB 11643-1999",
    "行政区划 330681, 330681105201",
    "邮编 312000",
    "(2026)浙0681民初1234号",
    "12345678-0575-8765-4321-057587654321",
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "护照已过期, 护照 2026年到期",
    "passport expired 2026-06-01",
    "E1234567",
    "X12345678",
    # A letter before a date is a reference, not a document, unless named as a passport.
    "合同编号C20260315",
    "订单号 S20260601",
    "G20260601次",
    "编号 M2026060100",
]


@pytest.mark.parametrize(("typed", "shown"), MASKED)
def test_each_number_form_is_masked(typed: str, shown: str) -> None:
    assert redact_text(typed) == shown
    assert redact_text(shown) == shown  # a mask is not masked again


@pytest.mark.parametrize("typed", UNTOUCHED)
def test_numbers_that_are_not_personal_are_left_alone(typed: str) -> None:
    assert redact_text(typed) == typed


def test_free_text_shows_the_mask_the_structured_field_shows() -> None:
    assert redact_text("电话0575-87654321") == "电话" + mask_phone("057587654321")
    assert redact_text("护照E12345678") == "护照" + mask_id_number("E12345678")
    assert redact_text("回乡证 H12345678") == "回乡证 " + mask_id_number("H12345678")


def test_a_long_blank_stretch_after_the_word_is_scanned_quickly() -> None:
    text = "passport" + " " * 50_000 + "x"
    assert redact_text(text) == text


def test_log_lines_mask_the_new_forms(caplog: pytest.LogCaptureFixture) -> None:
    install_pii_redaction()
    caplog.set_level(logging.INFO, logger="mediation.test")
    logging.getLogger("mediation.test").info(
        "called %s, passport %s, id %s, mobile %s",
        "0575-87654321",
        "E12345678",
        "330681 19900517 0016",
        "138.0000.0001",
    )
    line = caplog.records[-1].getMessage()
    assert line == "called 057*****4321, passport E******78, id 330***********0016, mobile 138****0001"


# Everything above, in one text: one paragraph of personal numbers, one of numbers that are not.
PERSONAL = "; ".join(typed for typed, _ in MASKED)
OTHER = "; ".join(UNTOUCHED)


async def test_supervisor_reads_description_and_note_masked(api) -> None:
    foreigner = {
        **person("respondent", "John Smith", 2),
        "id_type": "passport",
        "id_number": "E12345678",
        "phone": "0575-87654321",
    }
    described = f"{PERSONAL}。{OTHER}"
    dispute = await api.intake(parties=[person("applicant", "张三", 1), foreigner], description=described)
    note = f"已联系: {PERSONAL}。{OTHER}"
    dispute = await api.step(dispute, "accept", {"note": note})
    supervisor = api.auth("supervisor")

    shown = (await api.client.get(f"/v1/disputes/{dispute['id']}", headers=supervisor)).json()
    assert [p["id_number"] for p in shown["parties"]][1] == "E******78"
    assert [p["phone"] for p in shown["parties"]][1] == "057*****4321"
    timeline = await api.client.get(f"/v1/disputes/{dispute['id']}/timeline", headers=supervisor)
    assert timeline.status_code == 200
    entry = timeline.json()[-1]
    assert entry["action"] == "accept"
    for text in (shown["description"], entry["reason"], entry["payload"]["note"]):
        personal, other = text.removeprefix("已联系: ").split("。", 1)
        assert personal.split("; ") == [masked for _, masked in MASKED]
        assert other == OTHER
        for raw in ("87654321", "E12345678", "19900517", "0000 0001", "0000.0001", "1234567"):
            assert raw not in personal

    # With pii:read the clerk reads them as typed.
    seen = (await api.client.get(f"/v1/disputes/{dispute['id']}")).json()
    assert seen["description"] == described
    clerk_timeline = (await api.client.get(f"/v1/disputes/{dispute['id']}/timeline")).json()
    assert clerk_timeline[-1]["payload"]["note"] == note


async def test_confirmation_application_lists_document_names_masked(api, web) -> None:
    """The printable 司法确认申请书 lists the case's documents by name: a name holding a number
    shows it masked to a supervisor, as the case page's document list does, and to a clerk until
    the numbers are asked for."""
    case = await api.drive("agreement_signed")
    added = await api.client.post(
        f"/v1/disputes/{case['id']}/documents",
        files={"file": ("护照E12345678 电话0575-87654321.txt", b"scan", "text/plain")},
        data={"kind": "evidence"},
        headers=api.acting("body_mediator", await api.get(case)),
    )
    assert added.status_code == 201, added.text
    path = f"/cases/{case['id']}/confirmation-application"

    web.cookies.set("mediation_session", api.tokens[("supervisor", api.bodies["center"])])
    supervisor = await web.get(path)
    assert supervisor.status_code == 200
    assert "护照E******78 电话057*****4321.txt" in supervisor.text
    assert "E12345678" not in supervisor.text and "87654321" not in supervisor.text

    # The clerk, who may read them, reads them masked too until asking for them, as on the case page.
    web.cookies.set("mediation_session", api.tokens[("clerk", api.bodies["center"])])
    clerk = await web.get(path)
    assert "护照E******78 电话057*****4321.txt" in clerk.text
    clerk = await web.get(f"{path}?show=numbers")
    assert "护照E12345678 电话0575-87654321.txt" in clerk.text
