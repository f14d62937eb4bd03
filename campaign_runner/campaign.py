"""Load stage: read a campaign YAML file into a checked `Campaign` (plain, typed settings).

`yaml_source` parses the file and remembers where each value was written; `schemas` checks
the document; this module adds the rules that need the whole campaign (no literal apikey,
a readable window) and builds the `Campaign` the other stages read.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from campaign_runner import schemas
from campaign_runner.errors import CampaignInvalid, Problem
from campaign_runner.schedule import Schedule, parse_moment, parse_window
from campaign_runner.yaml_source import SourceMap, parse_yaml

DEFAULT_GATEWAY_URL = "https://api-cerberus-kong.socialminer.tech/api/Messages"
DEFAULT_APIKEY_ENV = "CERBERUS_APIKEY"
_TEMPLATE_MARKUP = re.compile(r"\{\{|\{%|\{#|\[[^\W\d][\w-]*\]")
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
    key: str | None = None
    exclude: tuple[Exclusion, ...] = ()
    allow_bidi: bool = False  # right-to-left names may carry bidi marks, isolates, embeddings


@dataclass(frozen=True)
class Gateway:
    """Where and how to send (`gateway:`); the apikey itself is only named, never stored."""

    url: str = DEFAULT_GATEWAY_URL
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


def load(path: str | os.PathLike) -> Campaign:
    """Read and check the campaign at PATH; raise `CampaignInvalid` listing every problem."""
    path = Path(path)
    shown = str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise CampaignInvalid(Problem(shown, None, None, "no such campaign file")) from None
    except (OSError, UnicodeDecodeError) as error:
        raise CampaignInvalid(Problem(shown, None, None, f"cannot read: {error}")) from None
    document, source = parse_yaml(text, shown)
    problems = check_document(document, source)
    if problems:
        raise CampaignInvalid(problems)
    return _build(path, document, source)


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
    return sorted(problems, key=lambda p: (p.line or 0, p.col or 0))


def _locate(issue: schemas.SchemaIssue, source: SourceMap) -> Problem:
    """The issue at its place in the file: an unknown key is shown where the key is written."""
    at_key = issue.keyword == schemas.UNKNOWN_KEY
    where = schemas.dotted(issue.path[:-1] if at_key else issue.path)
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
    """Refuse an apikey written in the file, and redact it so no later message can echo it."""
    gateway = document.get("gateway") if isinstance(document, dict) else None
    if not isinstance(gateway, dict):
        return []
    env = gateway.get("apikey_env", DEFAULT_APIKEY_ENV)
    hint = (
        f"a literal apikey is refused: remove it from the file and export it as the "
        f"environment variable {env} (gateway.apikey_env names the variable)"
    )
    found = _literal_apikey_paths(gateway)
    for path in found:
        parent = _at(document, path[:-1])
        parent[path[-1]] = "<redacted>"
    return [source.problem(path, hint, at_key=True) for path in found]


def _literal_apikey_paths(gateway: dict) -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = []
    if "apikey" in gateway:
        found.append(("gateway", "apikey"))
    for name in gateway.get("headers") or {}:
        value = gateway["headers"][name]
        if str(name).lower() == "apikey" and not str(value).startswith("${"):
            found.append(("gateway", "headers", name))
    return found


def _send_settings(send: dict, source: SourceMap) -> list[Problem]:
    problems = []
    window = send.get("window")
    if isinstance(window, str):
        try:
            parse_window(window, send.get("days"))
        except ValueError as error:
            problems.append(source.problem(("send", "window"), str(error)))
    not_after = send.get("not_after")
    if not_after is not None:
        try:
            parse_moment(str(not_after))
        except ValueError as error:
            problems.append(source.problem(("send", "not_after"), str(error)))
    return problems


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
    return Campaign(path, doc["name"], recipients, gateway, send, doc["message"], source)


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
    )


def expand_env(value: str, where: str) -> str:
    """Replace `${NAME}` in VALUE with the environment variable NAME; a missing one is an error."""

    def lookup(match: re.Match) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise CampaignInvalid(
                Problem(where, None, None, f"environment variable {name} is not set")
            )
        return os.environ[name]

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", lookup, value)
