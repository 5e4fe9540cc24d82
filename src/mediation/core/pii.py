"""Personal data protection primitives: field encryption, a blind lookup index, masking, redaction.

个人信息保护法 Art. 51 asks a personal information handler to take "encryption, de-identification
and other security measures"; identity card numbers are sensitive personal information (Art. 28),
and 民法典 Art. 1034 protects them together with phone numbers. So:

- identity numbers and phone numbers are stored encrypted (AES-256-GCM), each ciphertext bound to
  the row and column it belongs to, so a ciphertext copied or swapped elsewhere does not decrypt;
- lookups go through a keyed HMAC index, which matches equal values without storing the value and
  cannot be brute-forced over the small space of phone numbers without the key;
- anything shown or logged is masked, and free text (notes, log lines) is redacted.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import unicodedata
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # 96 bits, the size GCM is specified for (NIST SP 800-38D §5.2.1.1)
TAG_BYTES = 16

_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")
_B64URL = re.compile(r"[A-Za-z0-9_-]+")


class PiiIntegrityError(Exception):
    """A ciphertext did not decrypt: wrong or unknown key, tampered, or moved to another row/column.

    The message never contains the token or the value, so it is safe to log.
    """


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    """Strict base64url: only the URL-safe alphabet, padding optional, raises ValueError otherwise."""
    text = text.strip().rstrip("=")
    if not _B64URL.fullmatch(text):
        raise ValueError("not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error as exc:
        raise ValueError("not base64url") from exc


def is_key_id(text: str) -> bool:
    """Whether `text` has the form of a key id (what a token's first part names)."""
    return _KEY_ID.fullmatch(text) is not None


def generate_key() -> str:
    """A fresh random 32-byte key, base64url without padding (for `MEDIATION_PII_*` settings)."""
    return _b64encode(os.urandom(KEY_BYTES))


class PiiCipher:
    """Encrypts personal data fields and computes their lookup index.

    Several encryption keys may be configured so keys can be rotated: every key decrypts, the
    active one encrypts, and the key id travels in the token. The index key cannot rotate this
    way (equal values must keep equal indexes); changing it means recomputing every index.
    """

    def __init__(self, keys: dict[str, bytes], active_key_id: str, index_key: bytes) -> None:
        if not keys:
            raise ValueError("at least one PII encryption key is required")
        for key_id, key in keys.items():
            if not _KEY_ID.fullmatch(key_id):
                # Not echoed: a misplaced key would otherwise end up in the error (and the logs).
                raise ValueError("PII key ids must be 1-32 characters of A-Z, a-z, 0-9, _ or -")
            if len(key) != KEY_BYTES:
                raise ValueError(
                    f"PII encryption key {key_id!r} must be {KEY_BYTES} bytes (AES-256), got {len(key)}"
                )
        if active_key_id not in keys:
            raise ValueError(f"active PII key id {active_key_id!r} is not among the configured keys")
        if len(index_key) != KEY_BYTES:
            raise ValueError(f"PII index key must be {KEY_BYTES} bytes, got {len(index_key)}")
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self._active_key_id = active_key_id
        self._index_key = index_key

    @property
    def active_key_id(self) -> str:
        return self._active_key_id

    @classmethod
    def from_secrets(cls, encryption_keys: str, index_key: str) -> PiiCipher:
        """Build from settings: `encryption_keys` is "k2:BASE64URL,k1:BASE64URL", the first one active."""
        keys = parse_encryption_keys(encryption_keys)
        return cls(keys, next(iter(keys)), parse_index_key(index_key))

    @staticmethod
    def _associated_data(table: str, column: str, row_id: str) -> bytes:
        # ":" inside table or column would make two different places share associated data.
        if not table or not column or ":" in table or ":" in column:
            raise ValueError("table and column must be non-empty and contain no ':'")
        return f"{table}:{column}:{row_id}".encode()

    def encrypt(self, value: str, *, table: str, column: str, row_id: str) -> str:
        """`key_id.base64url(nonce + ciphertext + tag)`, bound to (table, column, row_id)."""
        aad = self._associated_data(table, column, row_id)
        nonce = os.urandom(NONCE_BYTES)  # random nonces: ~2^32 encryptions per key stay safe
        sealed = self._ciphers[self._active_key_id].encrypt(nonce, value.encode("utf-8"), aad)
        return f"{self._active_key_id}.{_b64encode(nonce + sealed)}"

    def decrypt(self, token: str, *, table: str, column: str, row_id: str) -> str:
        aad = self._associated_data(table, column, row_id)
        key_id, sep, body = token.partition(".")
        cipher = self._ciphers.get(key_id)
        if not sep:
            raise PiiIntegrityError("malformed PII token")
        if cipher is None:
            # Not named: if plaintext was stored by mistake, the "key id" would be the value itself.
            raise PiiIntegrityError("unknown PII key id (retired too early, or not a PII token)")
        try:
            raw = _b64decode(body)
        except ValueError:
            raise PiiIntegrityError("malformed PII token") from None
        # Non-canonical base64 (spare bits set) would let two tokens carry the same ciphertext.
        if len(raw) < NONCE_BYTES + TAG_BYTES or _b64encode(raw) != body:
            raise PiiIntegrityError("malformed PII token")
        try:
            plain = cipher.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], aad)
            return plain.decode("utf-8")
        except (InvalidTag, UnicodeDecodeError):
            # `from None`: the traceback must not chain the library's exception either.
            raise PiiIntegrityError(
                f"PII value in {table}.{column} failed authentication "
                "(wrong key, tampered, or belongs to another row or column)"
            ) from None

    def index(self, value: str, *, kind: str) -> str:
        """Keyed blind index: HMAC-SHA256(index_key, kind NUL normalised value), hex.

        Normalisation (NFKC, strip, upper-case) makes `33068119900517001x`, the full-width digits a
        Chinese input method may produce, and stray spaces all match the canonical form. `kind`
        separates domains, so an ID number and a phone with the same digits never collide.
        """
        if not kind or "\x00" in kind:
            raise ValueError("index kind must be non-empty and contain no NUL")
        normalised = unicodedata.normalize("NFKC", value).strip().upper()
        message = kind.encode("utf-8") + b"\x00" + normalised.encode("utf-8")
        return hmac.new(self._index_key, message, hashlib.sha256).hexdigest()


# ---- masking (de-identification for display, 个人信息保护法 Art. 51 and Art. 73(3))


def _mask(value: str, head: int, tail: int) -> str:
    if len(value) < 8:  # too short for the kept parts not to give most of it away
        return "*" * len(value)
    return value[:head] + "*" * (len(value) - head - tail) + value[-tail:]


def mask_id_number(value: str) -> str:
    """`110105199001011234` -> `110***********1234`: region prefix and last four, as banks print them.
    A shorter number (a passport, a travel permit: `E12345678`) keeps its first and last two only,
    `E******78`: three and four of nine characters would give most of it away."""
    if len(value) < 15:
        return _mask(value, 1, 2)
    return _mask(value, 3, 4)


def mask_phone(value: str) -> str:
    """`13800001234` -> `138****1234`."""
    return _mask(value, 3, 4)


# ---- redaction of free text
#
# Boundaries are "not a letter or digit" on both sides (and not a decimal point followed/preceded by
# a digit), so identifiers that merely contain a long digit run - hex UUID groups, amounts like
# 13800001234.50 - are left alone, while numbers written next to Chinese text (电话13800001234) are
# caught. An 18-digit run is masked even when its check digit is wrong: a mistyped ID number is
# still personal data.
#
# Free text masks what the structured fields mask, in the forms people type them: a number split
# into its groups (330681 19900517 0016, 138.0000.0001), a country code before it, a landline with
# its area code, the documents a party may identify with (passport, travel permits). The groups are
# the ones each number is written in, not any split, so a case number (330681-2026-000001), a date
# (2026-06-01, 20260601), an amount, a region or postal code stays readable: none has a phone's or
# an ID number's shape.
_BEFORE = r"(?<![0-9A-Za-z])(?<![0-9][.])"
_AFTER = r"(?![0-9A-Za-z])(?![.][0-9])"
# Area codes: 010 and 02x (Beijing and the large cities) have three digits with their trunk 0, the
# rest four (0575); a local number has 7 or 8 digits and never starts with 0 or 1.
_AREA = r"10|2[0-9]|[3-9][0-9]{2}"
_LOCAL = r"[2-9][0-9]{2,3}[ -]?[0-9]{4}"
_DATE = r"(?:19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])"
_PII = re.compile(
    _BEFORE
    + r"(?:"
    # A UUID whose groups happen to be all digits is an identifier, not a landline: kept as it is.
    + r"(?P<uuid>[0-9A-Fa-f]{8}(?:-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12})"
    + r"|(?P<id18>[0-9]{17}[0-9Xx])"  # GB 11643-1999 citizen identity number
    + r"|(?P<id15>[0-9]{15})"  # first-generation (pre-1999) identity card number
    # The same, in the groups they are read out in: address code, birth date, serial and check.
    + r"|(?P<id18split>[0-9]{6}(?P<sep18>[ -])(?:[0-9]{8}|[0-9]{4}(?P=sep18)[0-9]{4})(?P=sep18)[0-9]{3}[0-9Xx])"
    + r"|(?P<id15split>[0-9]{6}(?P<sep15>[ -])[0-9]{6}(?P=sep15)[0-9]{3})"
    # A mobile, 3-4-4, after +86, 0086, 86 or (+86). Its groups may be split by different marks
    # (138-0000 0001): no other number people write starts with 1[3-9] and has these groups.
    + r"|(?P<cc>(?:\+|00)?86[ -]?|\(\+?86\) ?)?(?P<phone>1[3-9][0-9][ .-]?[0-9]{4}[ .-]?[0-9]{4})"
    # A landline: (0575)87654321, 0575-8765 4321, 010-12345678-123, or +86 575 87654321 (dialled
    # from abroad without the trunk 0); an extension after a hyphen or 转 as intake takes it.
    + rf"|(?:(?P<lcc>(?:\+|00)86[ -]?)(?P<area_abroad>{_AREA})|\((?P<area_bracketed>0(?:{_AREA}))\)|(?P<area>0(?:{_AREA})))"
    + rf"[ -]?(?P<local>{_LOCAL})(?:(?:-|转|分机)(?P<extension>[0-9]{{1,6}}))?"
    # Passports of the PRC (E, and EA.. once E ran out, G of the older booklet, D, S, P and their
    # electronic DE, SE, PE), 往来港澳通行证 C, 港澳居民来往内地通行证 H and M (10 digits on the
    # booklets before 2013), 大陆居民往来台湾通行证 L, and the foreign permanent resident ID card
    # before 2023 (three letters and 12 digits).
    # Standing alone, a letter before a date (合同编号C20260315, 订单号 S20260601, M2026060100) is
    # a reference or an order number far more often than a document: it is left readable, and a
    # passport named as one (护照 E20260315) is still masked below.
    + rf"|(?P<document>[CDEGHLMPScdeghlmps](?!{_DATE})[0-9]{{8}}|[HMhm](?!{_DATE})[0-9]{{10}}"
    + r"|(?:[Ee][A-Za-z]|[DPSdps][Ee])[0-9]{7}"
    + r"|[A-Z]{3}[0-9]{12})"
    # After the word for it, a passport of any country (5 to 20 letters or digits, as intake takes
    # it) or a 台胞证 (8 digits, 10 on the older booklets).
    # (The spaces are bounded: unbounded runs would make a long blank stretch slow to scan.)
    + r"|(?P<passport_named>(?:护照|(?i:passport))(?:号码|号| {0,2}(?i:no\.?|number|#))? {0,2}[:：为是]? {0,2})"
    + r"(?P<passport>(?=[A-Za-z]*[0-9])[0-9A-Za-z]{5,20})"
    + r"|(?P<taiwan_named>(?:台胞证|台湾居民来往大陆通行证)(?:号码|号)? {0,2}[:：为是]? {0,2})(?P<taiwan>[0-9]{8}(?:[0-9]{2})?)"
    + r")"
    + _AFTER,
    re.ASCII,
)
# Chinese input methods produce full-width digits (１３８…) and punctuation; matching runs on a
# copy where they are ASCII. The mapping is one character to one, so match positions hold in the
# original text.
_HALF_WIDTH = str.maketrans(
    {0xFF10 + i: str(i) for i in range(10)}
    | {ord(wide): narrow for wide, narrow in zip("＋Ｘｘ（）－．", "+Xx()-.", strict=True)}
    | {0x3000: " "}
)


def _replacement(match: re.Match[str], text: str) -> str:
    """The mask of one number, as the structured field shows it (digits only, groups joined); the
    country code or the word naming the document, if any, is kept as written."""
    if match["uuid"] is not None:
        return text[match.start() : match.end()]
    if match["phone"] is not None:
        return (match["cc"] or "") + mask_phone(re.sub(r"[ .-]", "", match["phone"]))
    if match["local"] is not None:
        local = re.sub(r"[ -]", "", match["local"])
        extension = f"-{match['extension']}" if match["extension"] else ""
        if match["lcc"] is not None:
            return match["lcc"] + mask_phone(match["area_abroad"] + local + extension)
        return mask_phone((match["area"] or match["area_bracketed"]) + local + extension)
    for named, number in (("passport_named", "passport"), ("taiwan_named", "taiwan")):
        if match[number] is not None:
            return text[match.start(named) : match.end(named)] + mask_id_number(match[number])
    return mask_id_number(re.sub(r"[ -]", "", match[0]))


def redact_text(text: str) -> str:
    """Mask every identity, passport, travel permit and phone number found in `text`; the rest is
    left as is."""
    parts: list[str] = []
    end = 0
    for match in _PII.finditer(text.translate(_HALF_WIDTH)):
        parts += (text[end : match.start()], _replacement(match, text))
        end = match.end()
    if not parts:
        return text
    parts.append(text[end:])
    return "".join(parts)


def redact_value(value: Any) -> Any:
    """`redact_text` applied to every string in nested dicts, lists and tuples (new containers).

    Dict keys are kept: they are field names, not data.
    """
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {key: redact_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [redact_value(item) for item in value]
    if isinstance(value, tuple):
        return tuple(redact_value(item) for item in value)
    return value


def parse_encryption_keys(encryption_keys: str) -> dict[str, bytes]:
    """The keys of "k2:BASE64URL,k1:BASE64URL" by id, in order; ValueError naming what is wrong
    (also when the settings are read, core.settings)."""
    keys: dict[str, bytes] = {}
    for position, entry in enumerate(encryption_keys.split(","), start=1):
        key_id, sep, encoded = entry.strip().partition(":")
        key_id = key_id.strip()
        if not sep or not _KEY_ID.fullmatch(key_id):
            # Never echo the entry: it may be key material.
            raise ValueError(
                f'PII encryption key #{position} must look like "id:base64url", '
                "the id being 1-32 characters of A-Z, a-z, 0-9, _ or -"
            )
        if key_id in keys:
            raise ValueError(f"PII encryption key id {key_id!r} appears twice")
        try:
            key = _b64decode(encoded)
        except ValueError:
            raise ValueError(f"PII encryption key {key_id!r} is not valid base64url") from None
        if len(key) != KEY_BYTES:
            raise ValueError(
                f"PII encryption key {key_id!r} must decode to {KEY_BYTES} bytes (AES-256), got {len(key)}"
            )
        keys[key_id] = key
    return keys


def parse_index_key(index_key: str) -> bytes:
    try:
        index = _b64decode(index_key)
    except ValueError:
        raise ValueError("PII index key is not valid base64url") from None
    if len(index) != KEY_BYTES:
        raise ValueError(f"PII index key must decode to {KEY_BYTES} bytes, got {len(index)}")
    return index
