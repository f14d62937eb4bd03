"""Phone numbers: a cell of the recipients CSV read as a WhatsApp-able mobile number in E.164.

Spreadsheets mangle long numbers (`5.51E+12`, `5511948489500.0`); those are refused with a
reason a marketer can act on rather than guessed at.
"""

from __future__ import annotations

import re

import phonenumbers
from phonenumbers import PhoneNumberFormat, PhoneNumberType, ValidationResult

from campaign_runner.cells import quoted

_SCIENTIFIC = re.compile(r"^[+]?\d+(?:[.,]\d+)?[eE][+]?\d+$")
_DECIMAL = re.compile(r"^[+]?\d+[.,]0+$")
_PUNCTUATION = re.compile(r"[\s().\-/]")  # how people group digits: spaces, dashes, brackets
_MOBILE = {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE}
# Why a valid number is not a WhatsApp recipient, by its kind (phonenumbers' PhoneNumberType).
_KINDS = {
    PhoneNumberType.FIXED_LINE: "a landline, not a mobile number; WhatsApp needs a mobile",
    PhoneNumberType.TOLL_FREE: "a toll-free number, not a mobile number",
    PhoneNumberType.PREMIUM_RATE: "a premium-rate number, not a mobile number",
    PhoneNumberType.SHARED_COST: "a shared-cost number, not a mobile number",
    PhoneNumberType.PAGER: "a pager number, not a mobile number",
    PhoneNumberType.UAN: "a company's single number, not a mobile number",
    PhoneNumberType.VOICEMAIL: "a voicemail number, not a mobile number",
}


NO_REGION_HINT = (
    "; with no recipients.default_region, a number without + is read as starting with "
    "its country code"
)


class PhoneError(ValueError):
    """A phone cell that cannot be a WhatsApp recipient; the message says why."""


def normalise_phone(raw: str, default_region: str | None = None) -> str:
    """The number in E.164 (`+5511948489500`), or `PhoneError` saying what is wrong with it."""
    number = _parse(raw, default_region)
    kind = phonenumbers.number_type(number)
    if kind not in _MOBILE:
        raise PhoneError(f"{quoted(raw.strip())} is {_KINDS.get(kind, 'not a mobile number')}")
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
    # Digits only and no region to read them in: they must already start with a country code.
    guessed_plus = not compact.startswith("+") and region is None
    if guessed_plus:
        compact = "+" + compact
    try:
        number = phonenumbers.parse(compact, region)
    except phonenumbers.NumberParseException as error:
        raise PhoneError(f"{quoted(text)} is not a phone number ({_parse_reason(error)})") from None
    if not phonenumbers.is_valid_number(number):
        reason = _invalid_reason(number)
        if guessed_plus:
            reason += NO_REGION_HINT
        raise PhoneError(f"{quoted(text)} is not a valid phone number: {reason}")
    return number


def _invalid_reason(number: phonenumbers.PhoneNumber) -> str:
    """What phonenumbers can tell about a number that parsed but is not valid."""
    reason = phonenumbers.is_possible_number_for_type_with_reason(number, PhoneNumberType.MOBILE)
    region = phonenumbers.region_code_for_country_code(number.country_code or 0)
    digits = phonenumbers.national_significant_number(number)
    expected = f"a mobile number in {region} (+{number.country_code}) has {_lengths(region)}"
    if reason == ValidationResult.IS_POSSIBLE_LOCAL_ONLY:
        return f"the area code is missing; write the number in full, as in {_example(region)}"
    if reason == ValidationResult.TOO_SHORT:
        return f"too short: {len(digits)} digit(s) where {expected}"
    if reason == ValidationResult.TOO_LONG:
        return f"too long: {len(digits)} digit(s) where {expected}"
    if reason == ValidationResult.INVALID_LENGTH:
        return f"wrong length: {len(digits)} digit(s) where {expected}"
    if reason == ValidationResult.INVALID_COUNTRY_CODE:
        return f"+{number.country_code} is no country's code; check the country code"
    return (
        f"no number in {region} (+{number.country_code}) has this form; check the country "
        f"code and the digits (a mobile number there looks like {_example(region)})"
    )


def _lengths(region: str) -> str:
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    descriptions = [metadata.mobile, metadata.general_desc] if metadata else []
    lengths = next((list(d.possible_length) for d in descriptions if d and d.possible_length), [])
    if not lengths:
        return "another number of digits"
    shown = (
        " or ".join(str(n) for n in lengths) if len(lengths) < 3 else f"{lengths[0]}-{lengths[-1]}"
    )
    return f"{shown} digits after the country code"


def _example(region: str) -> str:
    example = phonenumbers.example_number_for_type(region, PhoneNumberType.MOBILE)
    if example is None:
        return "the number in full, with its country code"
    return phonenumbers.format_number(example, PhoneNumberFormat.INTERNATIONAL)


def _parse_reason(error: phonenumbers.NumberParseException) -> str:
    return {
        phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: "unknown country code",
        phonenumbers.NumberParseException.NOT_A_NUMBER: "not a number",
        phonenumbers.NumberParseException.TOO_SHORT_NSN: "too short",
        phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: "too short",
        phonenumbers.NumberParseException.TOO_LONG: "too long",
    }.get(error.error_type, str(error))
