"""The sandbox's fault model: which settings it refuses, and how faults are drawn."""

from __future__ import annotations

import pytest

from campaign_runner.sandbox.faults import FaultPlan, Faults, fault_problems


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"latency_ms": -1}, "latency_ms must not be negative"),
        ({"jitter_ms": -1}, "jitter_ms must not be negative"),
        ({"retry_after_s": -1}, "retry_after_s must not be negative"),
        ({"rates": {"500": 1.5}}, "rate for '500' is 1.5; it must be between 0 and 1"),
        ({"rates": {"500": 0.6, "429": 0.6}}, "fault rates add up to 1.2; at most 1 allowed"),
        ({"rates": {"ok": 0.1}}, "unknown fault kind 'ok'; expected 500, 429, drop, lost"),
        ({"rates": {"boom": 0.1}}, "unknown fault kind 'boom'"),
        (
            {"script": {"+5511": ["boom"]}},
            "script for +5511: unknown fault kind 'boom'; expected ok,",
        ),
        ({"rate_limit_per_s": 0}, "rate_limit_per_s must be above 0"),
    ],
)
def test_faults_that_cannot_be_used_are_refused(settings, problem):
    with pytest.raises(ValueError) as refused:
        Faults(**settings)
    assert problem in str(refused.value)


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"rates": {"500": 0.5, "429": 0.25, "drop": 0.125, "lost": 0.125}},
        {"rates": {"131026": 1.0}},
        {"script": {"+5511": ["ok", "500", "131056", "drop", "lost", "429"]}},
        {"rate_limit_per_s": 0.5, "latency_ms": 0, "retry_after_s": 0},
    ],
)
def test_faults_that_can_be_used_have_no_problems(settings):
    assert fault_problems(Faults(**settings)) == []


def test_a_script_comes_first_for_its_recipient_however_the_number_is_written():
    plan = FaultPlan(Faults(rates={"500": 1.0}, script={"+55 (11) 90000-0001": ["ok", "131026"]}))
    kinds = [plan.kind_for(to) for to in ("5511900000001", "+5511900000001", "+5511900000001")]
    assert kinds == ["ok", "131026", "500"]  # then the random draw again
    assert plan.kind_for("+5511900000002") == "500"
    assert plan.kind_for(None) == "500"


def test_a_seed_repeats_the_pattern_and_a_script_does_not_shift_it():
    rates = {"500": 0.3, "drop": 0.2}
    recipients = ["+2", "+1"] + [f"+{n}" for n in range(3, 40)]
    plan = FaultPlan(Faults(rates=rates, seed=7))
    plain = [plan.kind_for(to) for to in recipients]
    scripted = FaultPlan(Faults(rates=rates, seed=7, script={"+1": ["lost"]}))
    assert set(plain) == {"ok", "500", "drop"}
    assert [scripted.kind_for(to) for to in recipients] == [plain[0], "lost", *plain[2:]]
    other_seed = FaultPlan(Faults(rates=rates, seed=8))
    assert [other_seed.kind_for(to) for to in recipients] != plain


@pytest.mark.parametrize(("latency_ms", "jitter_ms"), [(0, 0), (80, 0), (0, 20), (50, 10)])
def test_latency_is_the_fixed_part_plus_up_to_the_jitter(latency_ms, jitter_ms):
    plan = FaultPlan(Faults(latency_ms=latency_ms, jitter_ms=jitter_ms, seed=1))
    delays = [plan.latency_s() for _ in range(50)]
    assert all(latency_ms / 1000 <= d <= (latency_ms + jitter_ms) / 1000 for d in delays)
    assert (len(set(delays)) > 1) == bool(jitter_ms)


def test_a_rate_limit_starts_with_a_full_seconds_quota():
    plan = FaultPlan(Faults(rate_limit_per_s=3))
    assert plan.rate_limit is not None
    assert plan.rate_limit.tokens == 3
    assert FaultPlan(Faults()).rate_limit is None
