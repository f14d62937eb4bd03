"""Status webhooks in the sandbox: `Webhooks` as configured, and `StatusPlan`, which draws,
message by message, the statuses Meta would report for an accepted message and when.

    accepted ─► sent (after sent_after_s)
             ├► delivered (after delivered_after_s) ─► read (after read_after_s), by shares
             └► failed with a code (after delivered_after_s), by --fail-later shares

Every accepted message is `sent`; a `--fail-later` share fails instead of being delivered;
of the rest, `delivered_share` (None: all of them) are delivered, and `read_share` of the
delivered are read. Times are seconds after the gateway accepted the message, and each
status comes no earlier than the one before it. On request a share of messages posts its
statuses in reverse order (read before delivered, failed before sent), and a share of
statuses is posted twice, as Meta does.

Only what the sandbox accepted (recorded, with a wamid) gets statuses: never a refused
request, an injected fault or a repeated Idempotency-Key; but a message whose answer a
`lost` fault swallowed does, since Meta would still deliver it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from campaign_runner.gateway.answers import META_CODES, UNTITLED
from campaign_runner.webhooks.outcome import (
    OUTCOME_DELIVERED,
    OUTCOME_FAILED,
    OUTCOME_READ,
    OUTCOME_SENT,
)

WEBHOOK_ATTEMPTS = 10  # a status is posted at most this many times, then given up (echoed)
FIRST_RETRY_S = 0.5  # the wait after the first failed attempt; doubled after each next one
MAX_ATTEMPTS = 100  # the most --webhook-attempts accepts
# Statuses posted out of order are held until the message's last event, then posted this
# far apart, newest first, so that they arrive in that order.
OUT_OF_ORDER_GAP_S = 0.1
_TYPICAL_LATER_CODES = "131026, 131047, 131049, 131050"


@dataclass
class Webhooks:
    """Where the sandbox posts status webhooks, signed with SECRET, and which statuses."""

    url: str
    secret: str = field(repr=False)  # never in a repr, a log or an error
    sent_after_s: float = 0.0
    delivered_after_s: float = 1.0
    read_after_s: float = 3.0
    delivered_share: float | None = None  # of all accepted; None: every one not failed
    read_share: float = 0.5  # of the delivered
    fail_later: dict[int, float] = field(default_factory=dict)  # Meta code -> share
    duplicates: float = 0.0  # share of statuses posted twice
    out_of_order: float = 0.0  # share of messages whose statuses come newest first
    attempts: int = WEBHOOK_ATTEMPTS
    first_retry_s: float = FIRST_RETRY_S
    seed: int | None = None

    def __post_init__(self) -> None:
        problems = webhook_problems(self)
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def shown_url(self) -> str:
        """The URL without any query, which may carry a token: what the echo shows."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}{parts.path}"

    def describe(self) -> str:
        """One line for the sandbox's banner (never the secret, never the URL's query)."""
        said = [f"sent after {self.sent_after_s:g} s"]
        if self.delivered_share is None:
            said.append(f"delivered after {self.delivered_after_s:g} s")
        else:
            said.append(f"delivered {self.delivered_share:.1%} after {self.delivered_after_s:g} s")
        said.append(f"read {self.read_share:.1%} of those after {self.read_after_s:g} s")
        said += [f"failed {code} {share:.1%}" for code, share in self.fail_later.items()]
        if self.duplicates:
            said.append(f"{self.duplicates:.1%} posted twice")
        if self.out_of_order:
            said.append(f"{self.out_of_order:.1%} out of order")
        seed = "" if self.seed is None else f" (seed {self.seed})"
        return f"posting signed status webhooks to {self.shown_url}: {', '.join(said)}{seed}"


def webhook_problems(hooks: Webhooks) -> list[str]:
    """Everything wrong with HOOKS, as sentences naming the sandbox's options; empty when
    they can be used. Never repeats the secret."""
    problems = url_problems(hooks.url)
    if not hooks.secret or not hooks.secret.strip():
        problems.append("--webhook-secret: the app secret is empty; set WHATSAPP_APP_SECRET")
    for option, value in (
        ("--sent-after", hooks.sent_after_s),
        ("--delivered-after", hooks.delivered_after_s),
        ("--read-after", hooks.read_after_s),
        ("first_retry_s", hooks.first_retry_s),
    ):
        if not value >= 0:
            problems.append(f"{option}: {value:g} seconds; it must not be negative")
    if not 1 <= hooks.attempts <= MAX_ATTEMPTS:
        problems.append(f"--webhook-attempts: {hooks.attempts}; it must be 1 to {MAX_ATTEMPTS}")
    return problems + _share_problems(hooks)


def url_problems(url: str) -> list[str]:
    """Why the sandbox cannot post to URL (empty: it can). Any host: the sandbox is local."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (reading it checks it)
    except ValueError as error:
        return [f"--webhook-url: {error}"]
    if parts.scheme not in ("http", "https"):
        found = f"not '{parts.scheme}:'" if parts.scheme else "e.g. http://127.0.0.1:8000/webhook"
        return [f"--webhook-url must start with http:// or https://, {found}"]
    if not parts.hostname:
        return ["--webhook-url: no host; give e.g. http://127.0.0.1:8000/webhook"]
    if parts.username is not None or parts.password is not None:
        return ["--webhook-url: a user or password in the URL is not sent; remove it"]
    if any(ch.isspace() for ch in url):
        return ["--webhook-url: contains a space; write it as %20"]
    return []


def _share_problems(hooks: Webhooks) -> list[str]:
    problems = []
    named = [
        ("--delivered-share", hooks.delivered_share),
        ("--read-share", hooks.read_share),
        ("--webhook-duplicates", hooks.duplicates),
        ("--webhook-out-of-order", hooks.out_of_order),
        *((f"--fail-later {code}", share) for code, share in hooks.fail_later.items()),
    ]
    for option, share in named:
        if share is not None and not 0 <= share <= 1:
            problems.append(f"{option}: share {share:g}; it must be between 0 and 1")
    for code in hooks.fail_later:
        if META_CODES.get(code) is None or META_CODES[code].title == UNTITLED:
            problems.append(
                f"--fail-later {code}: not a Meta error code the sandbox knows; codes Meta "
                f"reports later include {_TYPICAL_LATER_CODES}"
            )
    failing = sum(hooks.fail_later.values())
    if failing > 1 + 1e-9:
        problems.append(f"--fail-later: the shares add up to {failing:g}; at most 1 allowed")
    elif hooks.delivered_share is not None and failing + hooks.delivered_share > 1 + 1e-9:
        problems.append(
            f"--delivered-share: {hooks.delivered_share:g} and --fail-later's "
            f"{failing:g} add up to {failing + hooks.delivered_share:g}; at most 1 allowed"
        )
    return problems


@dataclass(frozen=True, slots=True)
class Scheduled:
    """One status to post: when (seconds after acceptance), what, and when it happened."""

    post_after_s: float
    status: str  # sent | delivered | read | failed
    event_after_s: float  # the status's timestamp, as seconds after acceptance
    code: int | None = None  # Meta's code, for failed
    twice: bool = False  # post it a second time, DUPLICATE_GAP_S after the first


class StatusPlan:
    """HOOKS drawn message by message, in acceptance order: with a seed, the same messages
    get the same statuses. Used from the server's loop only."""

    def __init__(self, hooks: Webhooks):
        self.hooks = hooks
        self._rng = random.Random(None if hooks.seed is None else f"webhooks-{hooks.seed}")
        self._failing: list[tuple[float, int]] = []
        total = 0.0
        for code, share in hooks.fail_later.items():
            total += share
            self._failing.append((total, code))
        delivered = 1 - total if hooks.delivered_share is None else hooks.delivered_share
        self._delivered_below = total + delivered

    def statuses(self) -> list[Scheduled]:
        """The statuses of the next accepted message, in the order they are to be posted."""
        # Always six draws a message, so one message's fate never shifts the next one's.
        fate, read, order, *draws = (self._rng.random() for _ in range(6))
        twice = [draw < self.hooks.duplicates for draw in draws]
        events = self._events(fate, read)
        if order < self.hooks.out_of_order and len(events) > 1:
            last = events[-1][1]
            return [
                Scheduled(last + n * OUT_OF_ORDER_GAP_S, status, at, code, twice[n])
                for n, (status, at, code) in enumerate(reversed(events))
            ]
        return [
            Scheduled(at, status, at, code, twice[n]) for n, (status, at, code) in enumerate(events)
        ]

    def _events(self, fate: float, read: float) -> list[tuple[str, float, int | None]]:
        """(status, seconds after acceptance, code) of one message, oldest first."""
        hooks = self.hooks
        events: list[tuple[str, float, int | None]] = [(OUTCOME_SENT, hooks.sent_after_s, None)]
        # Each status comes no earlier than the one before it, whatever the settings.
        later = max(hooks.delivered_after_s, hooks.sent_after_s)
        for bound, code in self._failing:
            if fate < bound:
                return [*events, (OUTCOME_FAILED, later, code)]
        if fate < self._delivered_below:
            events.append((OUTCOME_DELIVERED, later, None))
            if read < hooks.read_share:
                events.append((OUTCOME_READ, max(hooks.read_after_s, later), None))
        return events
