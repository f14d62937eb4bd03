"""The quality breaker's pure core, table by table: reading `send.quality_stop`, and when a
share of failures stops a run."""

from __future__ import annotations

import pytest

from campaign_runner.breaker import (
    DEFAULT_CODES,
    DEFAULT_MIN_MESSAGES,
    QualityStop,
    QualityStopError,
    parse_quality_stop,
    percent,
    verdict,
)


@pytest.mark.parametrize(
    ("written", "share", "codes", "minimum"),
    [
        ({"share": "5%"}, 0.05, DEFAULT_CODES, DEFAULT_MIN_MESSAGES),
        ({"share": "2.5 %"}, 0.025, DEFAULT_CODES, DEFAULT_MIN_MESSAGES),
        ({"share": "100%", "codes": [131050]}, 1.0, (131050,), DEFAULT_MIN_MESSAGES),
        ({"share": "0.1%", "min_messages": 1}, 0.001, DEFAULT_CODES, 1),
        ({"share": "10%", "codes": [131026, 131049]}, 0.1, (131026, 131049), 200),
    ],
)
def test_a_setting_is_read(written, share, codes, minimum):
    setting = parse_quality_stop(written)
    assert (setting.share, setting.codes, setting.min_messages) == (share, codes, minimum)
    assert setting.text == written["share"].replace(" ", "")


@pytest.mark.parametrize(
    ("written", "path", "says"),
    [
        ({"share": 5}, ("share",), "'5' is not a share: write a percentage"),
        ({"share": "0.05"}, ("share",), "'0.05' is not a share"),
        ({"share": "5%%"}, ("share",), "'5%%' is not a share"),
        ({"share": "-5%"}, ("share",), "'-5%' is not a share"),
        ({"share": "0%"}, ("share",), "0% is not a share from 0.1% to 100%"),
        ({"share": "0.05%"}, ("share",), "0.05% is not a share from 0.1% to 100%"),
        ({"share": "100.01%"}, ("share",), "100.01% is not a share from 0.1% to 100%"),
        ({"share": "5%", "codes": [131049, 429]}, ("codes", 1), "429 is not a Meta code"),
        ({"share": "5%", "codes": [131048]}, ("codes", 0), "131048 is not a Meta code"),
        ({"share": "5%", "min_messages": 0}, ("min_messages",), "it must be 1 to 10,000,000"),
    ],
)
def test_a_setting_that_cannot_be_used_says_where(written, path, says):
    with pytest.raises(QualityStopError) as refused:
        parse_quality_stop(written)
    assert refused.value.path == path and says in str(refused.value)


SETTING = QualityStop(0.05, (131049, 131050), 200, "5%")


@pytest.mark.parametrize(
    ("failed", "weighed", "stops"),
    [
        (0, 0, False),
        (199, 199, False),  # every one failed, but too few weighed yet
        (10, 200, True),  # exactly the limit: 5%
        (9, 200, False),
        (28, 400, True),
        (19, 400, False),
        (400, 400, True),
    ],
)
def test_the_verdict(failed, weighed, stops):
    reason = verdict(SETTING, failed, weighed)
    assert (reason is not None) == stops
    if reason is not None:
        expected = f"{percent(failed / weighed)} of this run's {weighed} messages failed with"
        assert reason == (f"quality breaker: {expected} 131049/131050 ({failed}; the limit is 5%)")


@pytest.mark.parametrize(
    ("fraction", "shown"), [(0.07, "7%"), (0.0667, "6.7%"), (1.0, "100%"), (0.001, "0.1%")]
)
def test_percentages_read_as_people_write_them(fraction, shown):
    assert percent(fraction) == shown
