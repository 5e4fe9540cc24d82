"""Checks for identity numbers, phone numbers and region codes, with bilingual messages."""

from __future__ import annotations

import re
import unicodedata
from datetime import date

from pydantic import ValidationError
from pydantic_core import InitErrorDetails
from stdnum.cn import ric, uscc
from stdnum.exceptions import ValidationError as StdnumError

from mediation.core.clock import Clock
from mediation.core.i18n import Text
from mediation.core.schemas import DomainValueError
from mediation.disputes.enums import IdType


def at_field(field: str | tuple[str | int, ...], code: str, message: Text) -> ValidationError:
    """A check across a model's fields, refused at the one field it asks to fill in or leave out.
    A model's own check would otherwise refuse the whole body, and the problem would name `body`:
    a client could not show it beside the field (an in-person sitting's `place`, a rejection's
    `ground`). Raised from a model validator, the field is named where the model sits
    (`parties[1].id_type`); a path (`("parties", 1, "represents")`) names a field of a list's item
    from the model holding the list."""
    error = DomainValueError(code, message)
    loc = field if isinstance(field, tuple) else (field,)
    return ValidationError.from_exception_data(
        "request", [InitErrorDetails(type="value_error", loc=loc, input=None, ctx={"error": error})]
    )


_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_LANDLINE = re.compile(r"^0[0-9]{2,3}[0-9]{7,8}$")
_REGION = re.compile(r"^\d{6}(\d{6})?$")
# GB/T 2260 province-level codes (first two digits).
_PROVINCES = frozenset(
    [
        "11",
        "12",
        "13",
        "14",
        "15",
        "21",
        "22",
        "23",
        "31",
        "32",
        "33",
        "34",
        "35",
        "36",
        "37",
        "41",
        "42",
        "43",
        "44",
        "45",
        "46",
        "50",
        "51",
        "52",
        "53",
        "54",
        "61",
        "62",
        "63",
        "64",
        "65",
        "71",
        "81",
        "82",
    ]
)

_PROVINCE_CODES = "|".join(sorted(_PROVINCES))
# The contract's patterns state the rule normalise_region_code applies, so an integrator (and a
# request generator) sees that the first two digits name a province. ASCII digits only.
REGION_CODE_PATTERN = rf"^({_PROVINCE_CODES})[0-9]{{4}}([0-9]{{6}})?$"
# A region prefix of any level: province 2 digits, city 4, county 6, town 9, village 12.
REGION_PREFIX_PATTERN = rf"^({_PROVINCE_CODES})([0-9]{{2}}|[0-9]{{4}}|[0-9]{{7}}|[0-9]{{10}})?$"


# The 18-digit number came in 1999 (GB 11643-1999): nobody alive then was born before this.
EARLIEST_BIRTH = date(1880, 1, 1)

_INVALID_RESIDENT_ID = Text(
    "居民身份证号码无效 (位数、出生日期或校验位不正确)",
    "Invalid resident ID number (length, birth date or check digit)",
)


def normalise_id_number(id_type: IdType | None, value: str, today: date | None = None) -> str:
    compact = re.sub(r"[\s-]", "", value).upper()
    if id_type == IdType.resident_id:
        return _resident_id(compact, today or Clock().today())
    if id_type == IdType.uscc:
        try:
            return str(uscc.validate(compact))
        except StdnumError as exc:
            raise DomainValueError(
                "invalid_id_number", Text("统一社会信用代码无效", "Invalid unified social credit code")
            ) from exc
    if id_type == IdType.hk_macao_permit:
        return _permit(compact, _HK_MACAO_PERMIT, _INVALID_HK_MACAO_PERMIT)
    if id_type == IdType.taiwan_permit:
        return _permit(compact, _TAIWAN_PERMIT, _INVALID_TAIWAN_PERMIT)
    if id_type == IdType.hmt_residence_permit:
        return _residence_permit(compact, today or Clock().today())
    if id_type == IdType.foreign_permanent_residence:
        return _foreign_permanent_residence(compact, today or Clock().today())
    if id_type == IdType.passport:
        return _permit(compact, _PASSPORT, _INVALID_PASSPORT)
    if not re.fullmatch(r"[0-9A-Z()（）]{5,30}", compact):
        raise DomainValueError("invalid_id_number", Text("证件号码格式不正确", "Invalid document number"))
    return compact


# 港澳居民来往内地通行证 (回乡证): H (Hong Kong) or M (Macao) and 8 digits since the card of 2013;
# the booklets issued before it carry 10 digits after the letter, and are still held.
_HK_MACAO_PERMIT = re.compile(r"^[HM][0-9]{8}([0-9]{2})?$")
_INVALID_HK_MACAO_PERMIT = Text(
    "港澳居民来往内地通行证号码应为 H 或 M 加 8 位数字 (2013 年前签发的为 10 位数字)",
    "Mainland travel permit for Hong Kong and Macao residents: H or M followed by 8 digits "
    "(10 digits if issued before 2013)",
)
# 台湾居民来往大陆通行证 (台胞证): 8 digits since the card of 2015, kept for life.
_TAIWAN_PERMIT = re.compile(r"^[0-9]{8}$")
_INVALID_TAIWAN_PERMIT = Text(
    "台湾居民来往大陆通行证号码应为 8 位数字",
    "Mainland travel permit for Taiwan residents: 8 digits",
)
# 港澳台居民居住证 (2018): a number built like the resident ID (GB 11643-1999), whose address code
# names Hong Kong (810000), Macao (820000) or Taiwan (830000) as a whole.
_RESIDENCE_PERMIT_REGIONS = frozenset({"810000", "820000", "830000"})
_INVALID_RESIDENCE_PERMIT = Text(
    "港澳台居民居住证号码应为 18 位, 以 810000 (香港)、820000 (澳门) 或 830000 (台湾) 开头, "
    "后接出生日期、顺序码和校验位",
    "Residence permit for Hong Kong, Macao and Taiwan residents: 18 characters starting with "
    "810000 (Hong Kong), 820000 (Macao) or 830000 (Taiwan), then the birth date, a serial and "
    "the check character",
)


# 外国人永久居留身份证. The card of 2023 carries 18 characters built like the resident ID (GB 11643):
# 9 (the card's own mark, which no resident ID's province code has), the code of the province that
# took the application, the holder's nationality (3 digits, GB/T 2659), the birth date, a serial and
# the ISO 7064 MOD 11-2 check character. The cards of 2004 and 2017, still held, carry 15: the
# nationality in three letters (GB/T 2659, after ISO 3166-1 alpha-3) and 12 digits; their check
# character is not published, so their form is all there is to check.
_FOREIGN_PERMANENT_RESIDENCE_15 = re.compile(r"^[A-Z]{3}[0-9]{12}$")
# Applications are taken by the mainland's provincial offices only.
_MAINLAND_PROVINCES = _PROVINCES - {"71", "81", "82"}
_INVALID_FOREIGN_PERMANENT_RESIDENCE = Text(
    "外国人永久居留身份证号码应为 18 位 (2023 年版: 以 9 开头, 后接受理地省级代码、国籍代码、出生日期、"
    "顺序码和校验位) 或 15 位 (2023 年前版: 3 位国籍字母代码加 12 位数字)",
    "Foreign permanent resident ID card: 18 characters (2023 card: 9, then the province code, the "
    "nationality code, the birth date, a serial and the check character) or 15 (earlier cards: a "
    "three-letter nationality code and 12 digits)",
)
# Passports of other countries follow no one numbering: letters and digits, of a length any issuer uses.
_PASSPORT = re.compile(r"^[0-9A-Z]{5,20}$")
_INVALID_PASSPORT = Text("护照号码应为 5 至 20 位字母或数字", "Passport number: 5 to 20 letters or digits")


def _foreign_permanent_residence(number: str, today: date) -> str:
    if _FOREIGN_PERMANENT_RESIDENCE_15.match(number):
        return number
    if len(number) != 18 or number[0] != "9" or number[1:3] not in _MAINLAND_PROVINCES:
        raise DomainValueError("invalid_id_number", _INVALID_FOREIGN_PERMANENT_RESIDENCE)
    return _gb11643(
        number,
        today,
        invalid=Text(
            "外国人永久居留身份证号码无效 (出生日期或校验位不正确)",
            "Invalid foreign permanent resident ID card number (birth date or check character)",
        ),
        impossible_birth=Text(
            "外国人永久居留身份证号码中的出生日期不可能 (晚于今天或过早)",
            "Foreign permanent resident ID card number: the birth date is impossible (after today or "
            "too early)",
        ),
    )


def _permit(number: str, form: re.Pattern[str], expected: Text) -> str:
    """A travel permit's number: its issuing authority publishes no check character, so the form
    is all there is to check (python-stdnum has no module for these)."""
    if not form.match(number):
        raise DomainValueError("invalid_id_number", expected)
    return number


def _residence_permit(number: str, today: date) -> str:
    """港澳台居民居住证: the resident ID's structure and check character (GB 11643-1999), its
    address code one of the three regions'."""
    if len(number) != 18 or number[:6] not in _RESIDENCE_PERMIT_REGIONS:
        raise DomainValueError("invalid_id_number", _INVALID_RESIDENCE_PERMIT)
    return _gb11643(
        number,
        today,
        invalid=Text(
            "港澳台居民居住证号码无效 (出生日期或校验位不正确); 应为 18 位, 以 810000、820000 或 830000 开头",
            "Invalid residence permit number (birth date or check character); 18 characters "
            "starting with 810000, 820000 or 830000",
        ),
        impossible_birth=Text(
            "港澳台居民居住证号码中的出生日期不可能 (晚于今天或过早)",
            "Residence permit number: the birth date is impossible (after today or too early)",
        ),
    )


def _resident_id(number: str, today: date) -> str:
    """A resident ID number (GB 11643-1999): 18 characters, a province the first two digits name,
    a birth date that was a real day and is not after `today`, and the ISO 7064 MOD 11-2 check
    character. The rest of the address code is not looked up: codes are assigned when the number
    is issued, not at birth, and counties are created and renamed (临平区 2021, 雄安新区), so a
    list of codes by year refuses real numbers (and python-stdnum's fails on codes it knows only
    at city level)."""
    if len(number) != 18 or not number[:17].isascii() or not number[:17].isdigit():
        raise DomainValueError("invalid_id_number", _INVALID_RESIDENT_ID)
    if number[:6] in _RESIDENCE_PERMIT_REGIONS:
        # Hong Kong, Macao and Taiwan issue no resident IDs; a number with their code as a whole is
        # a 港澳台居民居住证 (2018), which the holder's own document type records.
        raise DomainValueError(
            "invalid_id_number",
            Text(
                "以 810000、820000 或 830000 开头的是港澳台居民居住证号码, 证件类型应选「港澳台居民居住证」",
                "A number starting with 810000, 820000 or 830000 is a residence permit for Hong Kong, "
                "Macao and Taiwan residents: choose that document type",
            ),
        )
    if number[0] == "9":
        # No province code starts with 9: an 18-digit number that does is a foreign permanent
        # resident ID card of 2023, built the same way.
        raise DomainValueError(
            "invalid_id_number",
            Text(
                "以 9 开头的 18 位号码是外国人永久居留身份证号码, 证件类型应选「外国人永久居留身份证」",
                "An 18-digit number starting with 9 is a foreign permanent resident ID card: choose "
                "that document type",
            ),
        )
    if number[:2] not in _PROVINCES:
        raise DomainValueError(
            "invalid_id_number",
            Text("居民身份证号码的地址码不是已知的省级代码", "Resident ID number: unknown province code"),
        )
    return _gb11643(
        number,
        today,
        invalid=_INVALID_RESIDENT_ID,
        impossible_birth=Text(
            "居民身份证号码中的出生日期不可能 (晚于今天或过早)",
            "Resident ID number: the birth date is impossible (after today or too early)",
        ),
    )


def _gb11643(number: str, today: date, *, invalid: Text, impossible_birth: Text) -> str:
    """The parts of a GB 11643-1999 number every holder's has: 17 digits, a birth date that was a
    real day and is not after `today`, and the ISO 7064 MOD 11-2 check character, computed by
    python-stdnum. Its `validate` is not used: it also looks the address code up, in a list that
    refuses real numbers and knows no 810000-830000."""
    if len(number) != 18 or not number[:17].isascii() or not number[:17].isdigit():
        raise DomainValueError("invalid_id_number", invalid)
    try:
        born = ric.get_birth_date(number)
        check = ric.calc_check_digit(number)
    except (StdnumError, ValueError) as exc:
        raise DomainValueError("invalid_id_number", invalid) from exc
    if not EARLIEST_BIRTH <= born <= today:
        raise DomainValueError("invalid_id_number", impossible_birth)
    if number[17] != check:
        raise DomainValueError("invalid_id_number", invalid)
    return number


_PHONE_SEPARATORS = re.compile(r"[\s()\[\].]")
_EXTENSION = re.compile(r"^(?P<number>[0-9-]+?)(?:-|转)(?P<extension>[0-9]{1,6})$")


def normalise_phone(value: str) -> str:
    """One form for one line, so the keyed index of the same number matches (related cases, the
    party search, early warning): digits only, no country code, a landline with its area code and
    its leading 0, and an extension (if any) after a hyphen. "0575-87654321", "(0575)87654321" and
    "+86 575 8765 4321" are "057587654321"; "+86 138 0000 0001", "86-13800000001",
    "008613800000001", "138-0000-0001" and full-width "１３８０００００００１" are "13800000001"."""
    compact = _PHONE_SEPARATORS.sub("", unicodedata.normalize("NFKC", value))
    international = False
    for prefix in ("+86", "0086"):
        if compact.startswith(prefix):
            compact, international = compact[len(prefix) :].lstrip("-"), True
            break
    number, extension = compact, None
    found = _EXTENSION.match(compact)
    if found and _is_landline(_digits(found["number"], international)):
        number, extension = found["number"], found["extension"]
    if re.fullmatch(r"[0-9]+(-[0-9]+)*", number):
        digits = _digits(number, international)
        if _MOBILE.match(digits) and extension is None:
            return digits
        if digits.startswith("86") and _MOBILE.match(digits[2:]) and extension is None:
            return digits[2:]  # the country code without its + (86-13800000001)
        if _is_landline(digits):
            return digits if extension is None else f"{digits}-{extension}"
    raise DomainValueError(
        "invalid_phone", Text("电话号码格式不正确 (手机 11 位或带区号的固定电话)", "Invalid phone number")
    )


def _digits(number: str, international: bool) -> str:
    digits = number.replace("-", "")
    # Dialled from abroad a landline drops its trunk 0: +86 575 87654321 is 0575 87654321 (area
    # codes are 10, 2x and 3xx to 9xx).
    if international and not _MOBILE.match(digits) and re.match(r"10|[2-9]", digits):
        return "0" + digits
    return digits


def _is_landline(digits: str) -> bool:
    """An area code of 3 or 4 digits with its 0 (010, 0575), then a number of 7 or 8 digits."""
    return bool(_LANDLINE.match(digits))


def normalise_region_code(value: str) -> str:
    """GB/T 2260 six-digit codes, or the 12-digit statistical codes; stored as 12 digits."""
    if not _REGION.match(value) or value[:2] not in _PROVINCES:
        raise DomainValueError(
            "invalid_region_code",
            Text(
                "行政区划代码须为 6 位或 12 位数字 (GB/T 2260)",
                "Region code must be 6 or 12 digits (GB/T 2260)",
            ),
        )
    return value.ljust(12, "0")


# Han characters (CJK Unified Ideographs and Extension A): a place's name, where digits were meant.
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
REGION_NAME_GIVEN = "region_name_given"


def names_a_place(text: str) -> bool:
    return bool(_HAN.search(text))


def no_place_name(value: object) -> object:
    """A place's name typed where its code goes ("枫桥镇") is said to be one, not refused as a code
    of the wrong form. Which code the name stands for only the registry knows: the API's answer and
    the pages add it (bodies.places)."""
    if isinstance(value, str) and names_a_place(value):
        raise DomainValueError(
            REGION_NAME_GIVEN,
            Text(
                "请填写行政区划代码 (6 位或 12 位数字), 不是地名",
                "Give the region's code (6 or 12 digits, GB/T 2260), not its name",
            ),
        )
    return value


def region_prefix(code: str) -> str:
    """The prefix every code inside a region starts with: 330600 -> 3306, 330681105000 -> 330681105."""
    full = normalise_region_code(code)
    for cut in (2, 4, 6, 9):
        if full[cut:] == "0" * (12 - cut):
            return full[:cut]
    return full


_NOT_NAME = re.compile(r"[\s\u3000·•.,，。()（）\[\]【】《》<>\"'“”‘’-]+")


def organisation_key(name: str) -> str:
    """An organisation's name reduced to what identifies it: full-width forms folded (NFKC),
    spaces, brackets and punctuation dropped. "某建筑劳务有限公司" and "某建筑劳务 有限公司（）" match;
    a different name never does."""
    folded = unicodedata.normalize("NFKC", name).casefold()
    return _NOT_NAME.sub("", folded)[:200]
