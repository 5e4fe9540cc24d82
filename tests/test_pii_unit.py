"""Personal data protection primitives: field encryption, blind index, masking, log redaction.

Plain unit tests, no database: 个人信息保护法 Art. 51 (encryption, de-identification) and
民法典 Art. 1034 are what the primitives are for.
"""

from __future__ import annotations

import base64
import io
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from stdnum.cn import ric

from mediation.core import logging as mediation_logging
from mediation.core.logging import RedactingFilter, install_pii_redaction
from mediation.core.pii import (
    PiiCipher,
    PiiIntegrityError,
    generate_key,
    mask_id_number,
    mask_phone,
    redact_text,
    redact_value,
)


def _id_number(first17: str) -> str:
    return first17 + ric.calc_check_digit(first17 + "?")  # it ignores the last character


ID_NUMBER = _id_number("33068119900517001")
ID_NUMBER_2 = _id_number("11010519491231002")  # check digit X
OLD_ID_NUMBER = "330681900517001"  # first-generation, 15 digits
PHONE = "13800001234"
UUID_ALL_DIGIT_TAIL = "123e4567-e89b-12d3-a456-131234567890"
CASE_NUMBER = "330681-2026-000042"
TIMESTAMP = "2026-05-17T09:30:00.123456+08:00"

RAW_ID = re.compile(r"\d{17}[\dXx]")
RAW_PHONE = re.compile(r"1[3-9]\d{9}")

KEY_1, KEY_2, INDEX_KEY = b"\x01" * 32, b"\x02" * 32, b"\x03" * 32
WHERE = {"table": "parties", "column": "id_number", "row_id": "row-1"}


@pytest.fixture
def cipher() -> PiiCipher:
    return PiiCipher({"k1": KEY_1}, "k1", INDEX_KEY)


def test_id_numbers_used_here_are_valid() -> None:
    assert (ID_NUMBER, ID_NUMBER_2) == ("330681199005170016", "11010519491231002X")
    assert ric.is_valid(ID_NUMBER) and ric.is_valid(ID_NUMBER_2)


# ---- encryption


def test_round_trip(cipher: PiiCipher) -> None:
    token = cipher.encrypt(ID_NUMBER, **WHERE)
    assert token.startswith("k1.")
    assert ID_NUMBER not in token and "=" not in token
    assert cipher.decrypt(token, **WHERE) == ID_NUMBER
    assert cipher.decrypt(cipher.encrypt("张三 +86 138", **WHERE), **WHERE) == "张三 +86 138"


def test_same_value_encrypts_differently_each_time(cipher: PiiCipher) -> None:
    assert cipher.encrypt(PHONE, **WHERE) != cipher.encrypt(PHONE, **WHERE)


def test_swapping_ciphertexts_between_rows_fails(cipher: PiiCipher) -> None:
    a = cipher.encrypt(ID_NUMBER, table="parties", column="id_number", row_id="row-a")
    b = cipher.encrypt(ID_NUMBER_2, table="parties", column="id_number", row_id="row-b")
    with pytest.raises(PiiIntegrityError):
        cipher.decrypt(a, table="parties", column="id_number", row_id="row-b")
    with pytest.raises(PiiIntegrityError):
        cipher.decrypt(b, table="parties", column="id_number", row_id="row-a")


def test_moving_a_ciphertext_to_another_column_or_table_fails(cipher: PiiCipher) -> None:
    token = cipher.encrypt(PHONE, table="parties", column="phone", row_id="row-1")
    with pytest.raises(PiiIntegrityError):
        cipher.decrypt(token, table="parties", column="id_number", row_id="row-1")
    with pytest.raises(PiiIntegrityError):
        cipher.decrypt(token, table="agents", column="phone", row_id="row-1")


def test_tampered_byte_fails_without_leaking(cipher: PiiCipher) -> None:
    token = cipher.encrypt(ID_NUMBER, **WHERE)
    key_id, body = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    for position in (0, 12, len(raw) - 1):  # nonce, ciphertext, tag
        flipped = bytearray(raw)
        flipped[position] ^= 0x01
        tampered = f"{key_id}.{base64.urlsafe_b64encode(bytes(flipped)).rstrip(b'=').decode()}"
        with pytest.raises(PiiIntegrityError) as caught:
            cipher.decrypt(tampered, **WHERE)
        assert ID_NUMBER not in str(caught.value)
        assert caught.value.__cause__ is None and caught.value.__suppress_context__


@pytest.mark.parametrize(
    "token",
    ["", "k1", "k1.", "k1.!!!!", "k1.AAAA", "k1.a+b/", ID_NUMBER, f"{ID_NUMBER}.AAAA"],
)
def test_malformed_tokens_fail(cipher: PiiCipher, token: str) -> None:
    with pytest.raises(PiiIntegrityError) as caught:
        cipher.decrypt(token, **WHERE)
    assert ID_NUMBER not in str(caught.value)


def test_unknown_key_id_fails(cipher: PiiCipher) -> None:
    other = PiiCipher({"k9": KEY_1}, "k9", INDEX_KEY)
    with pytest.raises(PiiIntegrityError):
        cipher.decrypt(other.encrypt(PHONE, **WHERE), **WHERE)


def test_wrong_key_under_the_same_id_fails(cipher: PiiCipher) -> None:
    impostor = PiiCipher({"k1": KEY_2}, "k1", INDEX_KEY)
    with pytest.raises(PiiIntegrityError):
        cipher.decrypt(impostor.encrypt(PHONE, **WHERE), **WHERE)


def test_rotation_old_key_decrypts_new_key_encrypts(cipher: PiiCipher) -> None:
    old_token = cipher.encrypt(ID_NUMBER, **WHERE)
    rotated = PiiCipher({"k2": KEY_2, "k1": KEY_1}, "k2", INDEX_KEY)
    assert rotated.decrypt(old_token, **WHERE) == ID_NUMBER
    new_token = rotated.encrypt(ID_NUMBER, **WHERE)
    assert new_token.startswith("k2.")
    assert rotated.decrypt(new_token, **WHERE) == ID_NUMBER
    with pytest.raises(PiiIntegrityError):  # the old configuration does not know k2
        cipher.decrypt(new_token, **WHERE)


# ---- blind index


def test_index_matches_across_case_and_whitespace(cipher: PiiCipher) -> None:
    lower = ID_NUMBER_2.lower()
    assert lower != ID_NUMBER_2
    assert cipher.index(ID_NUMBER_2, kind="id_number") == cipher.index(f"  {lower}\n", kind="id_number")
    assert re.fullmatch(r"[0-9a-f]{64}", cipher.index(PHONE, kind="phone"))


def test_index_differs_across_kinds_values_and_keys(cipher: PiiCipher) -> None:
    digits = "13800001234"
    assert cipher.index(digits, kind="phone") != cipher.index(digits, kind="id_number")
    assert cipher.index(ID_NUMBER, kind="id_number") != cipher.index(ID_NUMBER_2, kind="id_number")
    other = PiiCipher({"k1": KEY_1}, "k1", b"\x04" * 32)
    assert cipher.index(PHONE, kind="phone") != other.index(PHONE, kind="phone")


def test_index_does_not_depend_on_the_encryption_keys(cipher: PiiCipher) -> None:
    rotated = PiiCipher({"k2": KEY_2, "k1": KEY_1}, "k2", INDEX_KEY)
    assert rotated.index(PHONE, kind="phone") == cipher.index(PHONE, kind="phone")


# ---- configuration


def test_from_secrets_first_key_is_active() -> None:
    k1, k2, index_key = generate_key(), generate_key(), generate_key()
    assert len(base64.urlsafe_b64decode(k1 + "=" * (-len(k1) % 4))) == 32
    old = PiiCipher.from_secrets(f"k1:{k1}", index_key)
    token = old.encrypt(PHONE, **WHERE)
    rotated = PiiCipher.from_secrets(f" k2:{k2} , k1:{k1}= ", index_key)  # padding and spaces tolerated
    assert rotated.active_key_id == "k2"
    assert rotated.decrypt(token, **WHERE) == PHONE
    assert rotated.encrypt(PHONE, **WHERE).startswith("k2.")
    assert rotated.index(PHONE, kind="phone") == old.index(PHONE, kind="phone")


@pytest.mark.parametrize(
    ("encryption_keys", "index_key", "message"),
    [
        ("k1:" + base64.urlsafe_b64encode(b"x" * 16).decode(), None, "32 bytes"),
        ("k1:{k}", base64.urlsafe_b64encode(b"x" * 31).decode(), "index key must decode to 32 bytes"),
        ("k1:{k}", "not base64!", "index key is not valid base64url"),
        ("k1:not base64!", None, "not valid base64url"),
        ("k1:{k},k1:{k}", None, "appears twice"),
        ("{k}", None, "id:base64url"),
        ("", None, "id:base64url"),
        (",", None, "id:base64url"),
        ("k1:{k},", None, "id:base64url"),
        ("k.1:{k}", None, "id:base64url"),
    ],
)
def test_from_secrets_rejects_bad_configuration(
    encryption_keys: str, index_key: str | None, message: str
) -> None:
    key = generate_key()
    with pytest.raises(ValueError, match=message) as caught:
        PiiCipher.from_secrets(encryption_keys.format(k=key), index_key or generate_key())
    assert key not in str(caught.value)


def test_constructor_rejects_wrong_lengths_and_unknown_active_key() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        PiiCipher({"k1": b"short"}, "k1", INDEX_KEY)
    with pytest.raises(ValueError, match="32 bytes"):
        PiiCipher({"k1": KEY_1}, "k1", b"short")
    with pytest.raises(ValueError, match="not among"):
        PiiCipher({"k1": KEY_1}, "k2", INDEX_KEY)


# ---- masking and redaction


def test_masks() -> None:
    assert mask_id_number(ID_NUMBER) == "330***********0016"
    assert mask_id_number(ID_NUMBER_2) == "110***********002X"
    assert mask_id_number(OLD_ID_NUMBER) == "330********7001"
    assert mask_phone(PHONE) == "138****1234"
    assert mask_phone("13800000000") == "138****0000"
    assert mask_phone("1234567") == "*******"
    assert mask_id_number("12345") == "*****"
    assert mask_phone("") == ""


def test_redact_text_masks_personal_data_and_keeps_identifiers() -> None:
    text = (
        f"当事人张三(身份证号{ID_NUMBER}, 旧证 {OLD_ID_NUMBER}), 电话{PHONE}, "
        f"备用 +8613912345678 / 86 13700001111 / 136-0000-2222 / 135 0000 3333。"
        f"案件 {CASE_NUMBER} ({UUID_ALL_DIGIT_TAIL}) 于 {TIMESTAMP} 受理, "
        f"标的额 12800000000.50 元, 调解费 1380.00 元。"
    )
    assert redact_text(text) == (
        "当事人张三(身份证号330***********0016, 旧证 330********7001), 电话138****1234, "
        "备用 +86139****5678 / 86 137****1111 / 136****2222 / 135****3333。"
        f"案件 {CASE_NUMBER} ({UUID_ALL_DIGIT_TAIL}) 于 {TIMESTAMP} 受理, "
        "标的额 12800000000.50 元, 调解费 1380.00 元。"
    )


def test_redact_text_lowercase_x_and_edges() -> None:
    assert redact_text(f"证号{ID_NUMBER_2.lower()}") == "证号110***********002x"
    assert redact_text(f"{PHONE}.") == "138****1234."
    # Longer digit runs are not an ID number or a phone with extra digits around them.
    assert redact_text("1" + ID_NUMBER) == "1" + ID_NUMBER
    assert redact_text("13800001234567") == "13800001234567"
    assert redact_text(redact_text(ID_NUMBER)) == redact_text(ID_NUMBER)  # idempotent
    # Full-width digits from a Chinese input method; other full-width text is kept.
    assert redact_text("２０２６年 电话：１３８００００１２３４") == "２０２６年 电话：138****1234"


def test_redact_value_recurses_into_new_containers() -> None:
    payload: dict[str, Any] = {
        "party": {"phone": PHONE, "ids": [ID_NUMBER, 42, None]},
        "pair": (PHONE,),
        "case": CASE_NUMBER,
    }
    redacted = redact_value(payload)
    assert redacted == {
        "party": {"phone": "138****1234", "ids": ["330***********0016", 42, None]},
        "pair": ("138****1234",),
        "case": CASE_NUMBER,
    }
    assert payload["party"]["phone"] == PHONE  # the input is untouched


# ---- logging


@pytest.fixture
def captured_log() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    original_factory = logging.getLogRecordFactory()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    logger = logging.getLogger("mediation.test")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield logger, stream
    finally:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)
        logging.setLogRecordFactory(original_factory)


def _assert_clean(output: str) -> None:
    assert not RAW_ID.search(output), output
    assert not RAW_PHONE.search(output), output


def test_log_messages_and_exceptions_are_redacted(
    captured_log: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured_log
    install_pii_redaction()
    install_pii_redaction()  # idempotent: one wrapper, not two

    logger.info("party %s registered with phone %s", ID_NUMBER, PHONE)
    try:
        raise ValueError(f"duplicate party {ID_NUMBER} / {PHONE}")
    except ValueError:
        logger.exception("intake failed for %s", PHONE)

    output = stream.getvalue()
    _assert_clean(output)
    assert "party 330***********0016 registered with phone 138****1234" in output
    assert "intake failed for 138****1234" in output
    assert "ValueError: duplicate party 330***********0016 / 138****1234" in output
    assert "Traceback" in output


def test_install_is_idempotent() -> None:
    original = logging.getLogRecordFactory()
    try:
        install_pii_redaction()
        installed = logging.getLogRecordFactory()
        install_pii_redaction()
        # The app may have installed it already; either way a second call wraps nothing more.
        assert logging.getLogRecordFactory() is installed
        assert getattr(installed, mediation_logging._MARKER)
    finally:
        logging.setLogRecordFactory(original)


def test_odd_records_do_not_break_logging(captured_log: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured_log
    install_pii_redaction()
    logger.info({"phone": PHONE})  # not a string
    logger.info("only one placeholder %s", ID_NUMBER, PHONE)  # arguments do not match
    logger.info("mapping %(phone)s", {"phone": PHONE})
    logger.info("literal 100%")
    output = stream.getvalue()
    _assert_clean(output)
    assert "{'phone': '138****1234'}" in output
    assert "only one placeholder" in output and "330***********0016" in output
    assert "mapping 138****1234" in output
    assert "literal 100%" in output


def test_redacting_filter_on_a_handler(captured_log: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured_log  # no factory installed: the filter alone does the work
    handler = logger.handlers[-1]
    redacting = RedactingFilter()
    handler.addFilter(redacting)
    try:
        logger.warning("phone %s", PHONE)
        try:
            raise RuntimeError(ID_NUMBER)
        except RuntimeError:
            logger.exception("failed")
        record = logging.makeLogRecord({"msg": "rebuilt %s", "args": (ID_NUMBER,)})
        assert redacting.filter(record) is True
        assert record.getMessage() == "rebuilt 330***********0016"
    finally:
        handler.removeFilter(redacting)
    output = stream.getvalue()
    _assert_clean(output)
    assert "phone 138****1234" in output
    assert "RuntimeError: 330***********0016" in output
