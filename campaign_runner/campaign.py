"""Load stage: read a campaign YAML file into a checked `Campaign` (plain, typed settings).

`yaml_source` parses the file and remembers where each value was written; `schemas` checks
the document; this module adds the rules that need the whole campaign (no literal apikey,
a readable window) and builds the `Campaign` the other stages read.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from campaign_runner import approved_text, schemas
from campaign_runner.breaker import QualityStop, QualityStopError, parse_quality_stop
from campaign_runner.errors import CampaignInvalid, Problem
from campaign_runner.follow_up import FollowUp, check_follow_up, parse_follow_up
from campaign_runner.gateway import trust
from campaign_runner.rules import FrequencyCap, parse_frequency_cap
from campaign_runner.schedule import Schedule, parse_moment, parse_window
from campaign_runner.yaml_source import SourceMap, decode_campaign, parse_yaml

DEFAULT_GATEWAY_URL = "https://api-cerberus-kong.socialminer.tech/api/Messages"
DEFAULT_APIKEY_ENV = "CERBERUS_APIKEY"
# A campaign is YAML text of a few KB; even a long one with comments stays under 50 KB.
MAX_CAMPAIGN_BYTES = 256 * 1024
_TEMPLATE_MARKUP = re.compile(r"\{\{|\{%|\{#|\[[^\W\d][\w-]*\]")
CALLBACK_FIELD = "biz_opaque_callback_data"  # Meta echoes it back in status webhooks
_RATE = re.compile(r"^(\d+(?:\.\d+)?)/(s|min|h)$")
# Issues about a key (misspelt, missing, one of two) stand even when the value is a template.
_ABOUT_KEYS = frozenset({"additionalProperties", "required", "oneOf"})


@dataclass(frozen=True)
class Exclusion:
    """An opt-out list (`recipients.exclude`): a CSV file, and the column with the numbers
    when the file's header alone cannot say (None: found from the header)."""

    file: Path
    column: str | None = None


@dataclass(frozen=True)
class Recipients:
    """Where the recipients are and how to read them (`recipients:` in the campaign)."""

    file: Path
    phone_column: str = "phone"
    default_region: str | None = None
    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | None = None  # an .xlsx workbook's sheet (default: the first)
    key: str | None = None
    exclude: tuple[Exclusion, ...] = ()
    allow_bidi: bool = False  # right-to-left names may carry bidi marks, isolates, embeddings


@dataclass(frozen=True)
class Gateway:
    """Where and how to send (`gateway:`); the apikey itself is only named, never stored."""

    url: str = DEFAULT_GATEWAY_URL
    url_in_file: bool = False  # the file names its gateway (a pin must then be the same)
    apikey_env: str = DEFAULT_APIKEY_ENV
    version: str = "4.0"
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    timeout_s: float = 30.0


@dataclass(frozen=True)
class Send:
    """How fast, how persistently and when to send (`send:`)."""

    rate_per_s: float | None = None
    concurrency: int = 1
    retries: int = 3
    backoff_s: float = 1.0
    retry_timeouts: bool = False
    max_consecutive_failures: int = 20
    schedule: Schedule = Schedule()
    frequency_cap: FrequencyCap | None = None  # per person, across campaigns (rules.py)
    callback_data: bool = False  # the delivery key in biz_opaque_callback_data (prepare.py)
    quality_stop: QualityStop | None = None  # the quality circuit breaker (breaker.py): off


@dataclass(frozen=True)
class Campaign:
    """A loaded, schema-checked campaign: plain data, plus where each value came from."""

    path: Path
    name: str
    recipients: Recipients
    gateway: Gateway
    send: Send
    message: dict[str, Any]
    source: SourceMap
    report_dir: Path | None = None  # `report_dir:`, relative to the campaign file
    preview: approved_text.ApprovedText | None = None  # `preview:`: shown, never sent
    follow_up: FollowUp | None = None  # `follow_up:`: rows picked by another's outcomes

    @property
    def fingerprint(self) -> str:
        """The message as written (and the delivery key's template), as 16 hex digits: what
        the ledger compares to tell a changed message from the one sent before."""
        what = {"message": self.message, "key": self.recipients.key}
        text = json.dumps(what, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def load(path: str | os.PathLike) -> Campaign:
    """Read and check the campaign at PATH; raise `CampaignInvalid` listing every problem."""
    path = Path(path)
    shown = str(path)
    text = read_campaign_text(path)
    document, source = parse_yaml(text, shown)
    problems = check_document(document, source)
    if not problems:  # the approved text is compared with a message known to be well formed
        problems = approved_text.check(document, source, text)
    if problems:
        raise CampaignInvalid(problems)
    return _build(path, document, source)


def read_campaign_text(path: Path) -> str:
    """The text of the campaign file at PATH: a regular file of at most `MAX_CAMPAIGN_BYTES`.

    Opened without blocking and checked before reading, so a FIFO, a device such as
    /dev/zero or a folder is refused at once instead of hanging or filling memory.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise _unreadable(path, "no such campaign file") from None
    except OSError as error:
        raise _unreadable(path, f"cannot read: {error.strerror or error}") from None
    with os.fdopen(fd, "rb") as handle:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise _unreadable(path, "is a folder, not a campaign file")
        if not stat.S_ISREG(mode):
            raise _unreadable(path, "is not a regular file (a pipe, a device...): save it first")
        data = handle.read(MAX_CAMPAIGN_BYTES + 1)
    if len(data) > MAX_CAMPAIGN_BYTES:
        raise _unreadable(path, f"is larger than {MAX_CAMPAIGN_BYTES // 1024} KiB")
    return decode_campaign(data, str(path))


def _unreadable(path: Path, message: str) -> CampaignInvalid:
    return CampaignInvalid(Problem(str(path), None, None, message))


def has_template_markup(value: str) -> bool:
    """True when VALUE is rendered per recipient (`[column]` or Jinja markup inside)."""
    return bool(_TEMPLATE_MARKUP.search(value))


def check_document(document: Any, source: SourceMap) -> list[Problem]:
    """Every problem with the campaign document, located in the YAML file."""
    problems = _literal_apikey(document, source)
    problems += [
        _locate(issue, source)
        for issue in schemas.check(document, "campaign")
        if not _checked_after_rendering(document, issue)
    ]
    if not problems and isinstance(document, dict):
        message = document.get("message")
        if isinstance(message, dict):
            problems += [
                source.problem(("message", *issue.path), f"message.{issue}")
                for issue in schemas.message_rules(message)
                if not _mentions_markup(message, issue.path)
            ]
        problems += _send_settings(document.get("send") or {}, source)
        problems += _callback_data(document, source)
        problems += _gateway_settings(document.get("gateway") or {}, source)
        problems += check_follow_up(document.get("follow_up"), document.get("name"), source)
    return sorted(problems, key=lambda p: (p.line or 0, p.col or 0))


def _locate(issue: schemas.SchemaIssue, source: SourceMap) -> Problem:
    """The issue at its place in the file: an unknown key is shown where the key is written."""
    at_key = issue.keyword == schemas.UNKNOWN_KEY
    where = schemas.place(issue.path[:-1] if at_key else issue.path)
    text = issue.message if where == schemas.TOP_LEVEL else f"{where}: {issue.message}"
    return source.problem(issue.path, text, at_key=at_key)


def _checked_after_rendering(document: Any, issue: schemas.SchemaIssue) -> bool:
    """Rules on the value of a templated string are checked per recipient instead."""
    if not issue.path or issue.path[0] != "message":
        return False
    value = _at(document, issue.path)
    if not isinstance(value, str) or not has_template_markup(value):
        return False
    return issue.keyword not in _ABOUT_KEYS


def _mentions_markup(message: dict, path: tuple) -> bool:
    value = _at(message, path)
    return isinstance(value, str) and has_template_markup(value)


def _at(document: Any, path: tuple) -> Any:
    for part in path:
        try:
            document = document[part]
        except (KeyError, IndexError, TypeError):
            return None
    return document


def _literal_apikey(document: Any, source: SourceMap) -> list[Problem]:
    """Refuse an apikey written in the file, and redact it so no later message can echo it.

    A header named apikey is redacted too; trust.py refuses it as a header the runner sets.
    """
    gateway = document.get("gateway") if isinstance(document, dict) else None
    if not isinstance(gateway, dict):
        return []
    env = gateway.get("apikey_env", DEFAULT_APIKEY_ENV)
    hint = (
        f"a literal apikey is refused: remove it from the file and export it as the "
        f"environment variable {env} (gateway.apikey_env names the variable)"
    )
    headers = gateway.get("headers")
    if isinstance(headers, dict):
        for name in headers:
            if str(name).lower() == "apikey":
                headers[name] = "<redacted>"
    if "apikey" not in gateway:
        return []
    gateway["apikey"] = "<redacted>"
    return [source.problem(("gateway", "apikey"), hint, at_key=True)]


def _gateway_settings(gateway: dict, source: SourceMap) -> list[Problem]:
    """The trust model's rules about the file's gateway section (trust.py): the URL, the
    header names and values, the parameters; never showing a value."""
    apikey_env = gateway.get("apikey_env", DEFAULT_APIKEY_ENV)
    return [
        source.problem(issue.path, issue.message, at_key=issue.at_key)
        for issue in trust.check_gateway(gateway, str(apikey_env))
    ]


def _send_settings(send: dict, source: SourceMap) -> list[Problem]:
    problems = []
    window = send.get("window")
    if isinstance(window, str):
        try:
            parse_window(window, send.get("days"))
        except ValueError as error:
            problems.append(source.problem(("send", "window"), str(error)))
    cap = send.get("frequency_cap")
    if isinstance(cap, str):
        try:
            parse_frequency_cap(cap)
        except ValueError as error:
            problems.append(source.problem(("send", "frequency_cap"), str(error)))
    not_after = send.get("not_after")
    if not_after is not None:
        try:
            parse_moment(str(not_after))
        except ValueError as error:
            problems.append(source.problem(("send", "not_after"), str(error)))
    quality = send.get("quality_stop")
    if isinstance(quality, dict):
        try:
            parse_quality_stop(quality)
        except QualityStopError as error:
            where = ("send", "quality_stop", *error.path)
            problems.append(source.problem(where, f"{schemas.dotted(where)}: {error}"))
    return problems


def _callback_data(document: dict, source: SourceMap) -> list[Problem]:
    """`send.callback_data: true` writes biz_opaque_callback_data itself: never over a value
    the message gives (one of the two would be lost without a word)."""
    send, message = document.get("send") or {}, document.get("message") or {}
    if not send.get("callback_data") or CALLBACK_FIELD not in message:
        return []
    return [
        source.problem(
            ("send", "callback_data"),
            f"send.callback_data puts the delivery key in {CALLBACK_FIELD}, which "
            f"message.{CALLBACK_FIELD} already sets: keep one of the two",
            at_key=True,
        )
    ]


def parse_rate(text: str) -> float:
    """Messages per second from a rate like `20/s`, `1000/min` or `3600/h`."""
    match = _RATE.match(text)
    if not match:
        raise ValueError(f"'{text}' is not a rate like 20/s or 1000/min")
    amount, unit = float(match.group(1)), match.group(2)
    return amount / {"s": 1, "min": 60, "h": 3600}[unit]


def _build(path: Path, doc: dict, source: SourceMap) -> Campaign:
    recipients = _recipients(doc["recipients"], path.parent)
    gateway = _gateway(doc.get("gateway") or {})
    send = _send(doc.get("send") or {})
    report_dir = path.parent / doc["report_dir"] if doc.get("report_dir") else None
    preview = approved_text.parse(doc.get("preview"))
    return Campaign(
        path,
        doc["name"],
        recipients,
        gateway,
        send,
        doc["message"],
        source,
        report_dir,
        preview,
        parse_follow_up(doc.get("follow_up")),
    )


def _recipients(r: dict, base: Path) -> Recipients:
    exclude = r.get("exclude") or []
    if isinstance(exclude, str | dict):
        exclude = [exclude]
    return Recipients(
        file=base / r["file"],
        phone_column=r.get("phone_column", "phone"),
        default_region=r.get("default_region"),
        encoding=r.get("encoding"),
        delimiter=r.get("delimiter"),
        sheet=r.get("sheet"),
        key=r.get("key"),
        exclude=tuple(_exclusion(entry, base) for entry in exclude),
        allow_bidi=bool(r.get("allow_bidi", False)),
    )


def _exclusion(entry: str | dict, base: Path) -> Exclusion:
    if isinstance(entry, str):
        return Exclusion(base / entry)
    return Exclusion(base / entry["file"], entry.get("column"))


def _gateway(g: dict) -> Gateway:
    return Gateway(
        url=g.get("url", DEFAULT_GATEWAY_URL),
        url_in_file="url" in g,
        apikey_env=g.get("apikey_env", DEFAULT_APIKEY_ENV),
        version=str(g.get("version", "4.0")),
        headers={str(k): str(v) for k, v in (g.get("headers") or {}).items()},
        params={str(k): str(v) for k, v in (g.get("params") or {}).items()},
        timeout_s=float(g.get("timeout_s", 30)),
    )


def _send(s: dict) -> Send:
    schedule = Schedule(
        window=parse_window(s["window"], s.get("days")) if s.get("window") else None,
        not_after=parse_moment(str(s["not_after"])) if s.get("not_after") else None,
    )
    return Send(
        rate_per_s=parse_rate(s["rate"]) if s.get("rate") else None,
        concurrency=int(s.get("concurrency", 1)),
        retries=int(s.get("retries", 3)),
        backoff_s=float(s.get("backoff_s", 1.0)),
        retry_timeouts=bool(s.get("retry_timeouts", False)),
        max_consecutive_failures=int(s.get("max_consecutive_failures", 20)),
        schedule=schedule,
        frequency_cap=parse_frequency_cap(s["frequency_cap"]) if s.get("frequency_cap") else None,
        callback_data=bool(s.get("callback_data", False)),
        quality_stop=parse_quality_stop(s["quality_stop"]) if s.get("quality_stop") else None,
    )
