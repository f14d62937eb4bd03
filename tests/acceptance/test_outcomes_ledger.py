"""What Meta reports after "sent", written into a real ledger (SQLite file and PostgreSQL
server alike): matched by wamid, kept aside until its delivery appears, never moved
backwards, and teaching the rules across campaigns exactly once."""

from __future__ import annotations

import sqlite3
import time

import pytest

from campaign_runner.ledger import open_journal, state_from
from campaign_runner.webhooks.payload import parse_payload

T0 = 1_764_000_000


@pytest.fixture(params=["sqlite", "postgres"])
def ledger(request, tmp_path):
    """A fresh ledger of each kind; yields a function opening campaign NAME's journal."""
    if request.param == "sqlite":
        state = state_from(tmp_path / "state")
    else:
        state = state_from(request.getfixturevalue("postgres_url"))
    opened = []

    def journal(name: str):
        opened.append(open_journal(state, name))
        return opened[-1]

    yield journal
    for each in opened:
        each.close()


def sent(journal, run_id: str = "run-1", **wamids_by_key: str) -> None:
    """Record one accepted delivery per KEY=WAMID, as a run does."""
    phones = {key: f"+55119876543{n:02d}" for n, key in enumerate(wamids_by_key)}
    journal.mark_sending(
        [(f"{journal.campaign}:{key}", n + 2, phones[key]) for n, key in enumerate(wamids_by_key)],
        run_id,
    )
    for key, wamid in wamids_by_key.items():
        journal.record(f"{journal.campaign}:{key}", "sent", message_id=wamid, http_status=200)
    journal.flush()


def status(wamid: str, word: str, second: int, code: int | None = None, **more) -> dict:
    entry = {"id": wamid, "status": word, "timestamp": str(T0 + second), "recipient_id": "1555"}
    entry["recipient_id"] = "5511987654300"
    if code is not None:
        entry["errors"] = [{"code": code, "title": f"title of {code}"}]
    entry.update(more)
    return entry


def events(*statuses: dict, preferences: tuple = ()) -> object:
    value = {"statuses": list(statuses)}
    if preferences:
        value["user_preferences"] = list(preferences)
    return parse_payload({"entry": [{"changes": [{"value": value}]}]})


def outcome_of(journal, key: str):
    return journal.outcomes_of(journal.campaign, [f"{journal.campaign}:{key}"])[
        f"{journal.campaign}:{key}"
    ]


def test_out_of_order_and_duplicated_statuses_keep_the_furthest_state(ledger):
    spring = ledger("spring")
    sent(spring, a="wamid.A", b="wamid.B")
    first = spring.apply_events(
        events(
            status("wamid.A", "read", 30),
            status("wamid.A", "delivered", 20),
            status("wamid.B", "failed", 10, 131049),
            status("wamid.B", "delivered", 40),  # delivered after failed
        )
    )
    assert (first.matched, first.changed, first.unmatched) == (4, 2, 0)
    again = spring.apply_events(events(status("wamid.A", "sent", 5), status("wamid.A", "read", 30)))
    assert (again.matched, again.changed) == (2, 1)  # the late `sent` only adds its time
    third = spring.apply_events(events(status("wamid.A", "sent", 5), status("wamid.A", "read", 30)))
    assert (third.matched, third.changed) == (2, 0)  # duplicates change nothing
    a, b = outcome_of(spring, "a"), outcome_of(spring, "b")
    assert (a.final, a.outcome.reached) == ("read", "read")  # never moved back to sent
    assert (a.outcome.sent_at[:19], a.outcome.read_at[:19]) == (
        "2025-11-24T16:00:05",
        "2025-11-24T16:00:30",
    )
    assert (b.final, b.outcome.code, b.outcome.title) == ("delivered", 131049, "title of 131049")
    funnel = spring.funnel("spring")
    assert (funnel.accepted, funnel.delivered, funnel.read, funnel.failed) == (2, 2, 1, 0)


def test_a_status_before_its_delivery_waits_aside_and_is_matched_later(ledger):
    spring = ledger("spring")
    kept = spring.apply_events(events(status("wamid.EARLY", "delivered", 3)))
    assert (kept.matched, kept.unmatched, spring.unmatched_count()) == (0, 1, 1)
    spring.apply_events(events(status("wamid.EARLY", "delivered", 3)))  # Meta retried
    assert spring.unmatched_count() == 1
    sent(spring, early="wamid.EARLY")
    matched = spring.reconcile()
    assert (matched.matched, matched.changed, spring.unmatched_count()) == (1, 1, 0)
    assert outcome_of(spring, "early").final == "delivered"


def test_opt_outs_and_not_on_whatsapp_suppress_once_and_a_rehearsal_teaches_nothing(ledger):
    spring, rehearsal = ledger("spring"), ledger("spring.sandbox")
    sent(spring, a="wamid.A", b="wamid.B")
    sent(rehearsal, c="wamid.C")
    applied = spring.apply_events(
        events(
            status("wamid.A", "failed", 1, 131050),
            status("wamid.B", "failed", 1, 131026),
            status("wamid.C", "failed", 1, 131050),
        )
    )
    listed = {s.phone: (s.kind, s.campaign) for s in spring.suppression_list()}
    assert listed == {
        "+5511987654300": ("opted-out", "spring"),
        "+5511987654301": ("not-on-whatsapp", "spring"),
    }
    assert sorted(applied.suppressed) == ["+5511987654300", "+5511987654301"]
    assert spring.apply_events(events(status("wamid.A", "failed", 1, 131050))).suppressed == []


def test_the_latest_marketing_preference_wins_whatever_the_order(ledger):
    spring = ledger("spring")
    stop = {"wa_id": "5511900000001", "value": "stop", "category": "marketing_messages"}
    spring.apply_events(events(preferences=({**stop, "value": "resume", "timestamp": T0 + 9},)))
    spring.apply_events(events(preferences=({**stop, "timestamp": T0 + 1},)))  # older: ignored
    assert spring.suppression_list() == []
    spring.apply_events(events(preferences=({**stop, "timestamp": T0 + 20},)))
    assert [(s.phone, s.kind) for s in spring.suppression_list()] == [
        ("+5511900000001", "opted-out")
    ]
    spring.apply_events(events(preferences=({**stop, "value": "resume", "timestamp": T0 + 30},)))
    assert spring.suppression_list() == []


def test_a_resume_keeps_a_number_ops_suppressed_by_hand(ledger):
    spring = ledger("spring")
    spring.suppress([("+5511900000002", "manual", "asked us by e-mail", None)])
    resume = {"wa_id": "5511900000002", "value": "resume", "timestamp": T0}
    spring.apply_events(events(preferences=(resume,)))
    assert [s.kind for s in spring.suppression_list()] == ["manual"]


def test_a_paused_template_holds_its_campaign_once_until_released(ledger):
    spring = ledger("spring")
    sent(spring, a="wamid.A", b="wamid.B")
    applied = spring.apply_events(events(status("wamid.A", "failed", 1, 132015)))
    assert applied.held == ["spring"]
    hold = spring.hold_of("spring")
    assert (hold.campaign, hold.code) == ("spring", 132015)
    assert "paused" in hold.reason
    time.sleep(0.005)  # the ledger's times are to the millisecond: keep these apart
    assert spring.release_hold("spring") == hold
    assert spring.hold_of("spring") is None
    time.sleep(0.005)
    # Meta posts the same failure again: the operator's resume stands
    assert spring.apply_events(events(status("wamid.A", "failed", 1, 132015))).held == []
    assert spring.hold_of("spring") is None
    # news of a message sent before the resume does not undo it
    assert spring.apply_events(events(status("wamid.B", "failed", 2, 132016))).held == []
    assert spring.hold_of("spring") is None
    # a message sent after the resume failing the same way holds it again
    sent(spring, "run-2", c="wamid.C")
    assert spring.apply_events(events(status("wamid.C", "failed", 3, 132016))).held == ["spring"]
    assert spring.hold_of("spring").code == 132016


def test_a_run_holds_its_campaign_itself_and_the_breaker_names_no_code(ledger):
    spring = ledger("spring")
    spring.place_hold("spring", "quality breaker: 7% failed", None)
    hold = spring.hold_of("spring")
    assert (hold.reason, hold.code) == ("quality breaker: 7% failed", None)


def test_a_failure_the_gateway_answered_keeps_metas_code_until_a_webhook_says_more(ledger):
    spring = ledger("spring")
    spring.mark_sending([("spring:a", 2, "+5511987654300"), ("spring:b", 3, "+5511987654301")], "r")
    spring.record("spring:a", "failed", permanent=True, http_status=400, error="x", code=131049)
    spring.record("spring:b", "failed", http_status=500, error="retry later", code=131000)
    spring.flush()
    assert outcome_of(spring, "a").outcome.code == 131049
    spring.mark_sending([("spring:b", 3, "+5511987654301")], "r2")
    spring.record("spring:b", "sent", message_id="wamid.B")  # the retry went through
    spring.flush()
    assert outcome_of(spring, "b").outcome.code is None  # the old failure's code is gone
    spring.apply_events(events(status("wamid.B", "failed", 9, 131026)))
    spring.record("spring:b", "sent", message_id="wamid.B")  # a late record keeps Meta's word
    spring.flush()
    assert (outcome_of(spring, "b").final, outcome_of(spring, "b").outcome.code) == (
        "failed",
        131026,
    )


def test_callback_data_settles_a_delivery_left_in_doubt(ledger):
    spring = ledger("spring")
    spring.mark_sending([("spring:k1", 2, "+5511987654300")], "run-died")
    spring.flush()
    applied = spring.apply_events(
        events(status("wamid.LATE", "delivered", 4, biz_opaque_callback_data="spring:k1"))
    )
    assert (applied.matched, applied.unmatched) == (1, 0)
    found = outcome_of(spring, "k1")
    assert (found.status, found.message_id, found.final) == ("sent", "wamid.LATE", "delivered")


def test_callback_data_naming_no_delivery_in_doubt_is_kept_aside_not_guessed(ledger):
    spring = ledger("spring")
    sent(spring, k1="wamid.K1")
    applied = spring.apply_events(
        events(status("wamid.OTHER", "read", 4, biz_opaque_callback_data="spring:k1"))
    )
    assert (applied.matched, applied.unmatched) == (0, 1)
    assert outcome_of(spring, "k1").message_id == "wamid.K1"


def test_the_breaker_counts_this_runs_failures_by_code(ledger):
    spring = ledger("spring")
    sent(spring, "run-1", a="wamid.A", b="wamid.B", c="wamid.C")
    spring.apply_events(
        events(status("wamid.A", "failed", 1, 131049), status("wamid.B", "failed", 1, 131026))
    )
    assert spring.failures_by_code("spring", "run-1", [131049, 131050]) == (1, 3)
    assert spring.failures_by_code("spring", "run-2", [131049]) == (0, 0)


def test_a_ledger_from_before_outcomes_is_upgraded_in_place(tmp_path):
    from campaign_runner.ledger.migrations import MIGRATIONS, statements

    path = tmp_path / "state" / "ledger.sqlite"
    path.parent.mkdir()
    db = sqlite3.connect(path, isolation_level=None)
    db.execute(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, description TEXT NOT NULL,"
        " applied_at TEXT NOT NULL)"
    )
    for migration in MIGRATIONS[:4]:
        for statement in statements(migration.sqlite):
            db.execute(statement)
        db.execute("INSERT INTO schema_migrations VALUES (?, ?, 'then')", (migration.version, "x"))
    db.execute(
        "INSERT INTO deliveries (campaign, key, status, message_id, updated_at)"
        " VALUES ('old', 'old:1', 'sent', 'wamid.OLD', 'then')"
    )
    db.close()
    journal = open_journal(state_from(tmp_path / "state"), "old")
    try:
        journal.apply_events(events(status("wamid.OLD", "read", 1)))
        assert journal.outcomes_of("old", ["old:1"])["old:1"].final == "read"
    finally:
        journal.close()


def test_a_run_reconciles_its_own_statuses_and_the_receiver_only_recent_ones(ledger):
    from datetime import timedelta

    spring = ledger("spring")
    spring.apply_events(
        events(
            status("wamid.MINE", "delivered", 1),
            status("wamid.OLD", "read", 1),
            status("wamid.ELSEWHERE", "read", 1),  # another system's message: never matched
        )
    )
    sent(spring, "run-1", mine="wamid.MINE")
    sent(spring, "run-0", old="wamid.OLD")
    assert spring.reconcile(run_id="run-1").matched == 1  # only the ending run's own
    assert spring.unmatched_count() == 2
    long_ago = "2026-01-01T00:00:00.000+00:00"
    with spring._transaction() as cursor:
        (cursor or spring.db).execute(
            spring._sql("UPDATE unmatched_statuses SET received_at = ?"), (long_ago,)
        )
    assert spring.reconcile(recent=timedelta(minutes=15)).matched == 0  # too old to look at
    assert spring.unmatched_count() == 0  # and kept for no more than 30 days
    assert outcome_of(spring, "mine").final == "delivered"
    assert outcome_of(spring, "old").final == "accepted"
