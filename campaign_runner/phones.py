"""Phone numbers: a cell of the recipients CSV read as a WhatsApp-able mobile number in E.164.

Spreadsheets mangle long numbers (`5.51E+12`, `5511948489500.0`); those are refused with a
reason a marketer can act on rather than guessed at.
"""

from __future__ import annotations

import re

import phonenumbers
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from campaign_runner.cells import quoted

_SCIENTIFIC = re.compile(r"^[+]?\d+(?:[.,]\d+)?[eE][+]?\d+$")
_DECIMAL = re.compile(r"^[+]?\d+[.,]0+$")
_PUNCTUATION = re.compile(r"[\s().\-/]")  # how people group digits: spaces, dashes, brackets
_MOBILE = {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE}


class PhoneError(ValueError):
    """A phone cell that cannot be a WhatsApp recipient; the message says why."""


def normalise_phone(raw: str, default_region: str | None = None) -> str:
    """The number in E.164 (`+5511948489500`), or `PhoneError` saying what is wrong with it."""
    number = _parse(raw, default_region)
    if phonenumbers.number_type(number) not in _MOBILE:
        raise PhoneError(f"{quoted(raw.strip())} is not a mobile number")
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def any_number(raw: str, default_region: str | None = None) -> str:
    """Any valid number in E.164, mobile or not (an opt-out list may hold landlines)."""
    return phonenumbers.format_number(_parse(raw, default_region), PhoneNumberFormat.E164)


def _parse(raw: str, region: str | None) -> phonenumbers.PhoneNumber:
    text = raw.strip()
    if not text:
        raise PhoneError("the phone number is blank")
    if _SCIENTIFIC.match(text):
        raise PhoneError(
            f"{quoted(text)} is a number a spreadsheet turned into scientific notation; "
            "format the column as text and export again"
        )
    if _DECIMAL.match(text):
        raise PhoneError(
            f"{quoted(text)} ends in a decimal part, as a spreadsheet writes numbers; "
            "format the column as text and export again"
        )
    compact = _PUNCTUATION.sub("", text)
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    if not compact.startswith("+") and region is None:
        # Digits only and no region to read them in: they must already start with a country code.
        compact = "+" + compact
    try:
        number = phonenumbers.parse(compact, region)
    except phonenumbers.NumberParseException as error:
        raise PhoneError(f"{quoted(text)} is not a phone number ({_parse_reason(error)})") from None
    if not phonenumbers.is_valid_number(number):
        raise PhoneError(f"{quoted(text)} is not a valid phone number")
    return number


def _parse_reason(error: phonenumbers.NumberParseException) -> str:
    return {
        phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: "unknown country code",
        phonenumbers.NumberParseException.NOT_A_NUMBER: "not a number",
        phonenumbers.NumberParseException.TOO_SHORT_NSN: "too short",
        phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: "too short",
        phonenumbers.NumberParseException.TOO_LONG: "too long",
    }.get(error.error_type, str(error))
