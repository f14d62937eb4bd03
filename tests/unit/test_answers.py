"""What the gateway's answers mean, and what the sender does with them: tables, no network."""

from __future__ import annotations

import json

import httpcore
import pytest

from campaign_runner.gateway.answers import (
    MAX_ANSWER_BYTES,
    META_CODES,
    Answer,
    AnswerKind,
    classify,
    meta_code,
)
from campaign_runner.gateway.sender import backoff_s, outcome_of
from campaign_runner.gateway.settings import SendSettings
from campaign_runner.gateway.transport import failure_answer
from campaign_runner.status import Status

SENT, RETRY, THROTTLE = AnswerKind.SENT, AnswerKind.RETRY, AnswerKind.THROTTLE
PAIR, PERMANENT, ABORT = AnswerKind.PAIR_LIMIT, AnswerKind.PERMANENT, AnswerKind.ABORT
BY_STATUS = None

# The README's retry table, written out by hand: code -> what the runner does, and the
# HTTP status the sandbox answers it with. BY_STATUS: the code alone does not decide.
EXPECTED = {
    # retried
    1: (RETRY, 500),
    2: (RETRY, 500),
    131000: (RETRY, 500),
    131016: (RETRY, 400),
    131057: (RETRY, 400),
    133004: (RETRY, 400),
    # retried, and the whole run slows down
    4: (THROTTLE, 429),
    80007: (THROTTLE, 429),
    130429: (THROTTLE, 429),
    # retried for that recipient only, after 4^X s
    131056: (PAIR, 429),
    # failed for good
    100: (PERMANENT, 400),
    131008: (PERMANENT, 400),
    131009: (PERMANENT, 400),
    131026: (PERMANENT, 400),
    131047: (PERMANENT, 400),
    131049: (PERMANENT, 400),
    131050: (PERMANENT, 400),
    131051: (PERMANENT, 400),
    132000: (PERMANENT, 400),
    132001: (PERMANENT, 400),
    132005: (PERMANENT, 400),
    132007: (PERMANENT, 400),
    132012: (PERMANENT, 400),
    # the run stops
    0: (ABORT, 401),
    190: (ABORT, 401),
    368: (ABORT, 403),
    131031: (ABORT, 403),
    131048: (ABORT, 429),  # Meta says 429, but waiting does not unflag a number
    131064: (ABORT, 400),
    132015: (ABORT, 400),
    132016: (ABORT, 400),
    133010: (ABORT, 400),
    # decided by the HTTP status
    3: (BY_STATUS, 500),
    10: (BY_STATUS, 403),
    131005: (BY_STATUS, 403),
    131021: (BY_STATUS, 400),
}


def meta_body(code: object, message: str | None = None, details: str | None = None) -> bytes:
    error: dict = {"code": code}
    if message is not None:
        error["message"] = message
    if details is not None:
        error["error_data"] = {"details": details}
    return json.dumps({"error": error}).encode()


def test_every_code_in_the_table_has_an_expectation_here():
    assert set(META_CODES) == set(EXPECTED)


@pytest.mark.parametrize(("code", "kind", "http_status"), [(c, *e) for c, e in EXPECTED.items()])
def test_a_meta_code_is_classified_by_the_code_first(code, kind, http_status):
    answer = classify(http_status, meta_body(code, f"(#{code}) title", "details"), {})
    if kind is BY_STATUS:
        kind = {500: RETRY, 403: ABORT, 400: PERMANENT}[http_status]
    assert answer.kind is kind
    assert answer.code == code
    assert answer.status == http_status
    assert answer.error == f"{code} (#{code}) title: details"
    assert answer.message_id is None


@pytest.mark.parametrize(("code", "kind", "http_status"), [(c, *e) for c, e in EXPECTED.items()])
def test_the_sandbox_answers_each_code_with_metas_status(code, kind, http_status):
    assert meta_code(code).http_status == http_status


@pytest.mark.parametrize(("code", "http_status"), [(200, 403), (299, 403), (300, 400), (7, 400)])
def test_the_sandbox_answers_an_unlisted_code_with_metas_usual_status(code, http_status):
    entry = meta_code(code)
    assert (entry.http_status, entry.kind) == (http_status, None)
    assert (entry.title, entry.details) == ("Error", "The request could not be processed.")


@pytest.mark.parametrize(
    ("code", "status", "kind"),
    [
        (131000, 400, RETRY),  # a retryable code stays retryable whatever the status
        (131000, 429, THROTTLE),  # ... but sent as 429 it slows the whole run down
        (131056, 429, PAIR),  # the pair limit concerns one recipient, even at 429
        (131056, 400, PAIR),
        (130429, 400, THROTTLE),  # some mocks answer throughput errors with 400
        (131026, 429, PERMANENT),  # a permanent code is never retried
        (131048, 400, ABORT),
        (10, 400, PERMANENT),  # no class of its own: the status decides
        (10, 503, RETRY),
        (999999, 429, THROTTLE),  # an unknown code: the status decides
        (999999, 401, ABORT),
        (999999, 418, PERMANENT),
    ],
)
def test_the_http_status_matters_only_where_the_code_allows(code, status, kind):
    assert classify(status, meta_body(code), {}).kind is kind


@pytest.mark.parametrize(
    ("status", "body", "kind", "error"),
    [
        (401, b'{"message":"No API key found in request"}', ABORT, "No API key found in request"),
        (403, b'{"message":"forbidden"}', ABORT, "forbidden"),
        (429, b'{"message":"API rate limit exceeded"}', THROTTLE, "API rate limit exceeded"),
        (408, b"", RETRY, "HTTP 408"),
        (500, b'{"message":"An unexpected error occurred"}', RETRY, "An unexpected error occurred"),
        (502, b"<html>bad gateway</html>", RETRY, "<html>bad gateway</html>"),
        (503, b"", RETRY, "HTTP 503"),
        (400, b'{"message":"Unsupported version"}', PERMANENT, "Unsupported version"),
        (404, b'{"message":"no Route matched with those values"}', PERMANENT, None),
        (413, b"too large", PERMANENT, "too large"),
        (301, b"", PERMANENT, "HTTP 301"),
        # Text that looks like a Meta code decides nothing: only a code does.
        (503, b"4 servers down", RETRY, "4 servers down"),
        (400, b"130429 rate", PERMANENT, "130429 rate"),
    ],
)
def test_without_a_meta_code_kongs_status_decides(status, body, kind, error):
    answer = classify(status, body, {})
    assert answer.kind is kind
    assert answer.code is None
    if error is not None:
        assert answer.error == error


def test_the_code_4_throttles_even_without_a_message():
    assert classify(400, meta_body(4), {}).kind is THROTTLE


UNANSWERED = AnswerKind.UNANSWERED
MAY_HAVE = " (the gateway may have accepted it)"


@pytest.mark.parametrize(
    ("status", "body", "kind", "message_id", "error"),
    [
        (200, b'{"messages":[{"id":"wamid.A"}]}', SENT, "wamid.A", None),
        (201, b'{"messages":[{"id":"wamid.B"}],"contacts":[]}', SENT, "wamid.B", None),
        # Success without a receipt: the gateway may have acted on it, so it is in doubt
        # (`unknown`, never resent by --retry-failed), not a permanent failure.
        (
            200,
            b'{"messages":[]}',
            UNANSWERED,
            None,
            'answer 200 had no message id: {"messages":[]}',
        ),
        (200, b"{}", UNANSWERED, None, "answer 200 had no message id: {}"),
        (200, b'{"messages":[{"id":null}]}', UNANSWERED, None, None),
        (200, b'{"messages":[{"id":""}]}', UNANSWERED, None, None),
        (200, b'{"messages":[{"id":"  "}]}', UNANSWERED, None, None),
        (200, b'{"messages":[{"id":7}]}', UNANSWERED, None, None),
        (200, b'{"messages":[{"id":["wamid.A"]}]}', UNANSWERED, None, None),
        (200, b'{"messages":{"id":"wamid.A"}}', UNANSWERED, None, None),
        (200, b'[{"id":"wamid.A"}]', UNANSWERED, None, None),
        (
            200,
            b'{"message":"queued"}',
            UNANSWERED,
            None,
            'answer 200 had no message id: {"message":"queued"}',
        ),
        (200, b"", UNANSWERED, None, "answer 200 had no message id: (empty)"),
        (200, b'{"messages":[{"id":"wamid.A"', UNANSWERED, None, None),  # truncated JSON
        (204, b"not json", UNANSWERED, None, "answer 204 had no message id: not json"),
        (
            200,
            b"<html>\n <body>Maintenance</body>\n</html>",
            UNANSWERED,
            None,
            "answer 200 had no message id: <html> <body>Maintenance</body> </html>",
        ),
        (200, b"\xff\xfe{", UNANSWERED, None, None),  # not UTF-8
    ],
)
def test_a_2xx_is_sent_only_with_a_message_id(status, body, kind, message_id, error):
    answer = classify(status, body, {"retry-after": "5"})
    assert answer.kind is kind
    assert answer.message_id == message_id
    assert answer.status == status
    if kind is UNANSWERED:
        assert answer.error is not None and answer.error.endswith(MAY_HAVE)
        assert answer.error.startswith(f"answer {status} had no message id: ")
    if error is not None:
        assert answer.error == error + MAY_HAVE


@pytest.mark.parametrize(
    ("status", "body", "kind", "code"),
    [
        # Meta's error object decides by its code, whatever the HTTP status.
        (200, meta_body(131000, "(#131000) Something went wrong"), RETRY, 131000),
        (200, meta_body(190, "(#190) Access token has expired"), ABORT, 190),
        (200, meta_body(131026), PERMANENT, 131026),
        (200, meta_body(130429), THROTTLE, 130429),
        (201, meta_body(131056), PAIR, 131056),
        # A code with no kind of its own: the status decides, and a 2xx says nothing.
        (200, meta_body(10), UNANSWERED, 10),
        (200, meta_body(999999), UNANSWERED, 999999),
        # The code as a string of digits is still Meta's code.
        (400, meta_body("131026"), PERMANENT, 131026),
        (200, meta_body("190"), ABORT, 190),
        (500, meta_body(" 131000 "), RETRY, 131000),
        # Not a code: the status decides.
        (400, meta_body("abc", "bad things"), PERMANENT, None),
        (503, meta_body("4x"), RETRY, None),
        (401, meta_body(True), ABORT, None),
        (500, meta_body(None), RETRY, None),
        (200, meta_body(1.5), UNANSWERED, None),
        # A message id is the gateway's receipt: it wins over an error object beside it.
        (200, b'{"messages":[{"id":"wamid.A"}],"error":{"code":131000}}', SENT, None),
    ],
)
def test_a_meta_error_object_is_read_wherever_it_appears(status, body, kind, code):
    answer = classify(status, body, {})
    assert (answer.kind, answer.code) == (kind, code)


@pytest.mark.parametrize(
    ("status", "body", "kind", "error"),
    [
        # Not what the gateway documents, and no 2xx: the status decides, the text is quoted.
        (
            502,
            b"<html>\n<h1>502 Bad Gateway</h1>\n</html>",
            RETRY,
            "<html> <h1>502 Bad Gateway</h1> </html>",
        ),
        (400, b'{"error":{"code":131026,"mess', PERMANENT, '{"error":{"code":131026,"mess'),
        (429, b'{"error":', THROTTLE, '{"error":'),
        (401, b'{"error":"Unauthorized"}', ABORT, "Unauthorized"),
        (400, b'{"error":{"message":"no code here"}}', PERMANENT, "no code here"),
        (500, b"x" * 1000, RETRY, "x" * 200),  # quoted, not copied whole
    ],
)
def test_a_non_2xx_that_is_not_json_or_not_metas_is_judged_by_status(status, body, kind, error):
    answer = classify(status, body, {})
    assert (answer.kind, answer.error, answer.code) == (kind, error, None)


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (200, UNANSWERED),
        (201, UNANSWERED),
        (500, RETRY),
        (429, THROTTLE),
        (400, PERMANENT),
        (401, ABORT),
    ],
)
def test_an_oversized_answer_is_judged_by_its_status_alone(status, kind):
    answer = classify(status, b"", {"retry-after": "2"}, oversized=True)
    assert answer.kind is kind
    assert answer.error is not None and f"longer than {MAX_ANSWER_BYTES} bytes" in answer.error
    assert answer.retry_after == (None if kind is UNANSWERED else 2.0)


@pytest.mark.parametrize(
    ("headers", "retry_after"),
    [
        ({}, None),
        ({"retry-after": "3"}, 3.0),
        ({"ratelimit-reset": "2"}, 2.0),
        ({"retry-after": "3", "ratelimit-reset": "9"}, 3.0),
        ({"retry-after": "soon", "ratelimit-reset": "9"}, 9.0),
        ({"retry-after": "0.5"}, 0.5),
        ({"retry-after": "-4"}, 0.0),
        ({"retry-after": "soon"}, None),
        ({"retry-after": "inf"}, None),  # never a wait of forever
        ({"retry-after": "nan", "ratelimit-reset": "4"}, 4.0),
        ({"retry-after": "Thu, 01 Jan 1970 00:00:00 GMT"}, 0.0),  # an HTTP date in the past
        ({"ratelimit-reset": "Thu, 01 Jan 1970 00:00:00 GMT"}, None),  # only seconds there
    ],
)
def test_the_wait_comes_from_retry_after_else_ratelimit_reset(headers, retry_after):
    assert classify(429, b'{"message":"API rate limit exceeded"}', headers).retry_after == (
        retry_after
    )
    assert classify(429, meta_body(130429), headers).retry_after == retry_after


@pytest.mark.parametrize(
    ("error", "kind", "text"),
    [
        (httpcore.ConnectError("refused"), RETRY, "connection failed: ConnectError: refused"),
        (httpcore.ConnectTimeout(), RETRY, "connection failed: ConnectTimeout"),
        (httpcore.PoolTimeout("x"), RETRY, "connection failed: PoolTimeout: x"),
        (httpcore.WriteError("pipe"), RETRY, "connection failed: WriteError: pipe"),
        (httpcore.WriteTimeout("t"), RETRY, "connection failed: WriteTimeout: t"),
        (
            httpcore.ReadTimeout("t"),
            AnswerKind.UNANSWERED,
            "no answer after the request was sent (ReadTimeout: t)",
        ),
        (
            httpcore.RemoteProtocolError("closed"),
            AnswerKind.UNANSWERED,
            "no answer after the request was sent (RemoteProtocolError: closed)",
        ),
        (
            httpcore.ReadError("reset"),
            AnswerKind.UNANSWERED,
            "no answer after the request was sent (ReadError: reset)",
        ),
    ],
)
def test_a_transport_error_means_not_sent_or_no_answer(error, kind, text):
    assert failure_answer(error) == Answer(kind, error=text)


SETTINGS = SendSettings("http://gw", {}, {}, 1.0, retries=2, backoff_s=1.0)
SETTINGS_RETRY_TIMEOUTS = SendSettings("http://gw", {}, {}, 1.0, retries=2, retry_timeouts=True)


@pytest.mark.parametrize(
    ("answer", "attempt", "settings", "expected"),
    [
        (Answer(SENT, 200, "wamid.A"), 1, SETTINGS, (Status.SENT, False, None)),
        (Answer(PERMANENT, 400, error="bad"), 1, SETTINGS, (Status.FAILED, True, None)),
        (Answer(ABORT, 401, error="no key"), 1, SETTINGS, (Status.FAILED, False, "no key")),
        (Answer(RETRY, 500, error="e"), 1, SETTINGS, None),
        (Answer(RETRY, 500, error="e"), 2, SETTINGS, None),
        (Answer(RETRY, 500, error="e"), 3, SETTINGS, (Status.FAILED, False, None)),
        (Answer(THROTTLE, 429, error="e"), 3, SETTINGS, (Status.FAILED, False, None)),
        (Answer(PAIR, 429, error="e"), 2, SETTINGS, None),
        (Answer(AnswerKind.UNANSWERED, error="e"), 1, SETTINGS, (Status.UNKNOWN, False, None)),
        (Answer(AnswerKind.UNANSWERED, error="e"), 1, SETTINGS_RETRY_TIMEOUTS, None),
        (
            Answer(AnswerKind.UNANSWERED, error="e"),
            3,
            SETTINGS_RETRY_TIMEOUTS,
            (Status.FAILED, False, None),
        ),
    ],
)
def test_the_retry_policy_ends_a_recipient_or_tries_again(answer, attempt, settings, expected):
    outcome = outcome_of(answer, attempt, settings)
    if expected is None:
        assert outcome is None
        return
    assert outcome is not None
    assert (outcome.status, outcome.permanent, outcome.abort) == expected
    assert outcome.http_status == answer.status
    assert outcome.error == answer.error
    assert outcome.message_id == answer.message_id


@pytest.mark.parametrize(
    ("answer", "attempt", "low", "high"),
    [
        (Answer(PAIR, 429, retry_after=30.0), 1, 1, 1),  # 4^0, whatever the gateway says
        (Answer(PAIR, 429), 2, 4, 4),
        (Answer(PAIR, 429), 3, 16, 16),
        (Answer(PAIR, 429), 5, 60, 60),  # at most a minute
        (Answer(THROTTLE, 429, retry_after=7.0), 1, 7, 7),
        (Answer(RETRY, 503, retry_after=0.0), 4, 0, 0),
        (Answer(RETRY, 503), 1, 0.5, 1),  # backoff_s 1, halved at most by the jitter
        (Answer(RETRY, 503), 3, 2, 4),
        (Answer(RETRY, 503), 9, 30, 60),
    ],
)
def test_the_wait_before_a_retry(answer, attempt, low, high):
    for _ in range(20):
        assert low <= backoff_s(answer, attempt, SETTINGS) <= high
