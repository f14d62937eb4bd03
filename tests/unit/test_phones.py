"""Phone cells as people and spreadsheets write them: E.164 for WhatsApp, or the reason why not."""

from __future__ import annotations

import pytest

from campaign_runner.phones import PhoneError, normalise_phone

GOOD = {
    "E.164 already": ("+5511948489500", None, "+5511948489500"),
    "spaces and a dash": ("+55 11 94848-9500", None, "+5511948489500"),
    "brackets": ("+55 (11) 94848-9500", None, "+5511948489500"),
    "dots": ("+55.11.94848.9500", None, "+5511948489500"),
    "slashes": ("+55/11/94848/9500", None, "+5511948489500"),
    "international 00 prefix": ("00 55 11 94848 9500", "BR", "+5511948489500"),
    "00 prefix, no region": ("0055 11 94848-9500", None, "+5511948489500"),
    "national, with region": ("(11) 94848-9500", "BR", "+5511948489500"),
    "national digits, with region": ("11948489500", "BR", "+5511948489500"),
    "country code without plus, no region": ("5511948489500", None, "+5511948489500"),
    "foreign number, other region": ("+1 650-555-1234", "BR", "+16505551234"),
    "stray spaces around": ("  +5511948489500 ", None, "+5511948489500"),
    "Portugal mobile": ("+351 912 345 678", None, "+351912345678"),
}


@pytest.mark.parametrize("typed, region, e164", GOOD.values(), ids=GOOD.keys())
def test_a_mobile_number_in_any_written_form_becomes_e164(typed, region, e164):
    assert normalise_phone(typed, region) == e164


BAD = {
    "blank": ("   ", "the phone number is blank"),
    "scientific notation": (
        "5.51195E+12",
        "'5.51195E+12' is a number a spreadsheet turned into scientific notation; "
        "format the column as text and export again",
    ),
    "scientific notation, decimal comma": (
        "5,51195E+12",
        "'5,51195E+12' is a number a spreadsheet turned into scientific notation; "
        "format the column as text and export again",
    ),
    "a decimal part": (
        "5511948489500.0",
        "'5511948489500.0' ends in a decimal part, as a spreadsheet writes numbers; "
        "format the column as text and export again",
    ),
    "letters": ("abc", "'abc' is not a phone number (not a number)"),
    "too short": (
        "+55 11 94848",
        "'+55 11 94848' is not a valid phone number: too short: 7 digit(s) where a mobile "
        "number in BR (+55) has 10 or 11 digits after the country code",
    ),
    "too long": (
        "+55 11 94848 9500 123",
        "'+55 11 94848 9500 123' is not a valid phone number: too long: 14 digit(s) where a "
        "mobile number in BR (+55) has 10 or 11 digits after the country code",
    ),
    "no area code": (
        "94848-9500",
        "'94848-9500' is not a valid phone number: the area code is missing; write the "
        "number in full, as in +55 11 96123-4567",
    ),
    "another country's code": (
        "+54 11 94848 9500",
        "'+54 11 94848 9500' is not a valid phone number: no number in AR (+54) has this "
        "form; check the country code and the digits (a mobile number there looks like "
        "+54 9 11 2345-6789)",
    ),
    "a toll-free number": (
        "0800 123 4567",
        "'0800 123 4567' is a toll-free number, not a mobile number",
    ),
    "a single digit": ("+5", "'+5' is not a phone number (not a number)"),
    "unknown country code": (
        "+999 1234 5678",
        "'+999 1234 5678' is not a phone number (unknown country code)",
    ),
    "a landline": (
        "+55 11 3333-4444",
        "'+55 11 3333-4444' is a landline, not a mobile number; WhatsApp needs a mobile",
    ),
}


@pytest.mark.parametrize("typed, reason", BAD.values(), ids=BAD.keys())
def test_a_number_that_cannot_receive_whatsapp_says_why(typed, reason):
    with pytest.raises(PhoneError) as raised:
        normalise_phone(typed, "BR")
    assert str(raised.value) == reason


def test_digits_without_a_region_are_read_as_starting_with_the_country_code():
    with pytest.raises(PhoneError) as raised:
        normalise_phone("11948489500")
    assert str(raised.value).endswith(
        "; with no recipients.default_region, a number without + is read as starting with "
        "its country code"
    )
    assert "no number in US (+1) has this form" in str(raised.value)
