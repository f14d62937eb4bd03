"""Load stage: read a campaign YAML file into a `Campaign`, remembering where values were written.

Every problem found here is reported as `FILE:LINE:COL: message`, so the loader keeps the
line and column of every key and value (`SourceMap`) while it builds plain Python data.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

import yaml

from campaign_runner import schemas
from campaign_runner.errors import CampaignInvalid, Problem
from campaign_runner.schedule import Schedule

DEFAULT_GATEWAY_URL = "https://api-cerberus-kong.socialminer.tech/api/Messages"
DEFAULT_APIKEY_ENV = "CERBERUS_APIKEY"
_TEMPLATE_MARKUP = re.compile(r"\{\{|\{%|\{#|\[[^\W\d][\w-]*\]")
_RATE = re.compile(r"^(\d+(?:\.\d+)?)/(s|min|h)$")
_WINDOW = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})(?:\s+(\S+))?$")
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class SourceMap:
    """Where each key and value of the YAML document was written (1-based line and column)."""

    file: str
    keys: dict[tuple, tuple[int, int]] = field(default_factory=dict)
    values: dict[tuple, tuple[int, int]] = field(default_factory=dict)

    def problem(self, path: tuple, message: str, *, at_key: bool = False) -> Problem:
        """A `Problem` located at PATH, or at its nearest ancestor that was written down."""
        table = self.keys if at_key else self.values
        probe = tuple(path)
        while probe:
            if probe in table:
                return Problem(self.file, *table[probe], message)
            if probe in self.values:
                return Problem(self.file, *self.values[probe], message)
            probe = probe[:-1]
        return Problem(self.file, *self.values.get((), (1, 1)), message)


@dataclass(frozen=True)
class Window:
    """Hours of the day (in a time zone, on some weekdays) when a campaign may send."""

    start: time
    end: time
    zone: str | None
    days: tuple[int, ...] = tuple(range(7))  # Monday is 0

    def _local(self, now: datetime) -> datetime:
        from zoneinfo import ZoneInfo

        return now.astimezone(ZoneInfo(self.zone)) if self.zone else now.astimezone()

    def is_open(self, now: datetime) -> bool:
        """True when NOW (an aware datetime) falls inside the window."""
        local = self._local(now)
        moment = local.time().replace(tzinfo=None)
        if self.start <= self.end:
            return local.weekday() in self.days and self.start <= moment < self.end
        # Across midnight: the hours after midnight belong to the day the window opened.
        if moment >= self.start:
            return local.weekday() in self.days
        return moment < self.end and (local.weekday() - 1) % 7 in self.days

    def next_open(self, now: datetime) -> datetime:
        """The next moment at or after NOW when the window is open."""
        local = self._local(now)
        for day in range(8):
            date = (local + timedelta(days=day)).date()
            opening = datetime.combine(date, self.start, tzinfo=local.tzinfo)
            if opening.weekday() in self.days and opening >= local:
                return opening
        return local


@dataclass(frozen=True)
class Recipients:
    file: Path
    phone_column: str = "phone"
    default_region: str | None = None
    encoding: str | None = None
    delimiter: str | None = None
    key: str | None = None
    exclude: tuple[Path, ...] = ()


@dataclass(frozen=True)
class Gateway:
    url: str = DEFAULT_GATEWAY_URL
    apikey_env: str = DEFAULT_APIKEY_ENV
    version: str = "4.0"
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    timeout_s: float = 30.0


@dataclass(frozen=True)
class Send:
    rate_per_s: float | None = None
    concurrency: int = 1
    retries: int = 3
    backoff_s: float = 1.0
    retry_timeouts: bool = False
    max_consecutive_failures: int = 20
    window: Window | None = None
    not_after: datetime | None = None

    @property
    def schedule(self) -> Schedule:
        return Schedule(self.window, self.not_after)


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


def load(path: str | os.PathLike, recipients_override: str | os.PathLike | None = None) -> Campaign:
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
    return _build(path, document, source, recipients_override)


def parse_yaml(text: str, file: str) -> tuple[Any, SourceMap]:
    """Parse YAML TEXT into plain data and a `SourceMap`; duplicate keys are errors."""
    source = SourceMap(file)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        what = " ".join(part for part in (error.context, error.problem) if part)
        line, col = (mark.line + 1, mark.column + 1) if mark else (None, None)
        raise CampaignInvalid(Problem(file, line, col, f"not valid YAML: {what}")) from None
    except yaml.YAMLError as error:
        raise CampaignInvalid(Problem(file, None, None, f"not valid YAML: {error}")) from None
    if node is None:
        raise CampaignInvalid(Problem(file, 1, 1, "the campaign file is empty"))
    problems: list[Problem] = []
    document = _construct(node, (), source, problems)
    if problems:
        raise CampaignInvalid(problems)
    return document, source


def _construct(node, path: tuple, source: SourceMap, problems: list[Problem]) -> Any:
    source.values[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                problems.append(source.problem(path, "YAML merge keys (<<) are not supported here"))
                continue
            key = yaml.SafeLoader(b"").construct_object(key_node, deep=True)
            if not isinstance(key, str):
                key = str(key)
            child = (*path, key)
            if key in out:
                line = key_node.start_mark.line + 1
                first = source.keys[child]
                problems.append(
                    Problem(
                        source.file,
                        line,
                        key_node.start_mark.column + 1,
                        f"key '{key}' is given twice (first at line {first[0]})",
                    )
                )
                continue
            source.keys[child] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            out[key] = _construct(value_node, child, source, problems)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(item, (*path, i), source, problems) for i, item in enumerate(node.value)]
    value = yaml.SafeLoader(b"").construct_object(node, deep=True)
    if isinstance(value, datetime | type(datetime.now().date())):
        # Keep dates as written: a campaign's values are text sent to WhatsApp, not Python dates.
        return node.value
    return value


def has_template_markup(value: str) -> bool:
    """True when VALUE is rendered per recipient (`[column]` or Jinja markup inside)."""
    return bool(_TEMPLATE_MARKUP.search(value))


def check_document(document: Any, source: SourceMap) -> list[Problem]:
    """Every problem with the campaign document, located in the YAML file."""
    problems = _literal_apikey(document, source)
    for issue in schemas.check(document, "campaign"):
        if _checked_after_rendering(document, issue):
            continue
        at_key = issue.message.startswith("unknown key")
        where = schemas.SchemaIssue(issue.path[:-1] if at_key else issue.path, "").dotted
        text = issue.message if where == "(top level)" else f"{where}: {issue.message}"
        problems.append(source.problem(issue.path, text, at_key=at_key))
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


_RENDER_DEPENDENT = {"maxLength", "minLength", "pattern", "format"}


def _checked_after_rendering(document: Any, issue: schemas.SchemaIssue) -> bool:
    """Length and pattern rules on a templated string are checked per recipient instead."""
    if not issue.path or issue.path[0] != "message":
        return False
    value = _at(document, issue.path)
    if not isinstance(value, str) or not has_template_markup(value):
        return False
    return not issue.message.startswith(("required", "unknown key", "needs exactly"))


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
    gateway = document.get("gateway") if isinstance(document, dict) else None
    if not isinstance(gateway, dict):
        return []
    env = gateway.get("apikey_env", DEFAULT_APIKEY_ENV)
    hint = (
        f"a literal apikey is refused: remove it from the file and export it as the "
        f"environment variable {env} (gateway.apikey_env names the variable)"
    )
    found = []
    if "apikey" in gateway:
        found.append(("gateway", "apikey"))
    for name in gateway.get("headers") or {}:
        value = gateway["headers"][name]
        if str(name).lower() == "apikey" and not str(value).startswith("${"):
            found.append(("gateway", "headers", name))
    for path in found:
        # Drop the value so that no later message can echo the secret.
        parent = _at(document, path[:-1])
        parent[path[-1]] = "<redacted>"
    return [source.problem(path, hint, at_key=True) for path in found]


def _send_settings(send: dict, source: SourceMap) -> list[Problem]:
    problems = []
    window = send.get("window")
    if isinstance(window, str):
        try:
            _parse_window(window, send.get("days"))
        except ValueError as error:
            problems.append(source.problem(("send", "window"), str(error)))
    not_after = send.get("not_after")
    if not_after is not None:
        try:
            _parse_datetime(str(not_after))
        except ValueError as error:
            problems.append(source.problem(("send", "not_after"), str(error)))
    return problems


def _parse_window(text: str, days: list[str] | None) -> Window:
    match = _WINDOW.match(text.strip())
    if not match:
        raise ValueError(f"'{text}' is not a window like '09:00-20:00 America/Sao_Paulo'")
    h1, m1, h2, m2, zone = match.groups()
    try:
        start, end = time(int(h1), int(m1)), time(int(h2), int(m2))
    except ValueError:
        raise ValueError(f"'{text}' has an hour or minute out of range") from None
    if zone:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone '{zone}' (use an IANA name like America/Sao_Paulo)"
            ) from None
    if start == end:
        raise ValueError(f"'{text}' opens and closes at the same time")
    weekdays = tuple(_DAYS.index(d) for d in days) if days else tuple(range(7))
    return Window(start, end, zone, weekdays)


def _parse_datetime(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"'{text}' is not a date and time like 2026-12-01T20:00:00-03:00"
        ) from None
    return moment if moment.tzinfo else moment.astimezone()


def parse_rate(text: str) -> float:
    """Messages per second from a rate like `20/s`, `1000/min` or `3600/h`."""
    match = _RATE.match(text)
    if not match:
        raise ValueError(f"'{text}' is not a rate like 20/s or 1000/min")
    amount, unit = float(match.group(1)), match.group(2)
    return amount / {"s": 1, "min": 60, "h": 3600}[unit]


def _build(path: Path, doc: dict, source: SourceMap, override) -> Campaign:
    base = path.parent
    r = doc["recipients"]
    exclude = r.get("exclude") or []
    if isinstance(exclude, str):
        exclude = [exclude]
    recipients = Recipients(
        file=Path(override) if override else base / r["file"],
        phone_column=r.get("phone_column", "phone"),
        default_region=r.get("default_region"),
        encoding=r.get("encoding"),
        delimiter=r.get("delimiter"),
        key=r.get("key"),
        exclude=tuple(base / e for e in exclude),
    )
    g = doc.get("gateway") or {}
    gateway = Gateway(
        url=g.get("url", DEFAULT_GATEWAY_URL),
        apikey_env=g.get("apikey_env", DEFAULT_APIKEY_ENV),
        version=str(g.get("version", "4.0")),
        headers={str(k): str(v) for k, v in (g.get("headers") or {}).items()},
        params={str(k): str(v) for k, v in (g.get("params") or {}).items()},
        timeout_s=float(g.get("timeout_s", 30)),
    )
    s = doc.get("send") or {}
    send = Send(
        rate_per_s=parse_rate(s["rate"]) if s.get("rate") else None,
        concurrency=int(s.get("concurrency", 1)),
        retries=int(s.get("retries", 3)),
        backoff_s=float(s.get("backoff_s", 1.0)),
        retry_timeouts=bool(s.get("retry_timeouts", False)),
        max_consecutive_failures=int(s.get("max_consecutive_failures", 20)),
        window=_parse_window(s["window"], s.get("days")) if s.get("window") else None,
        not_after=_parse_datetime(str(s["not_after"])) if s.get("not_after") else None,
    )
    return Campaign(path, doc["name"], recipients, gateway, send, doc["message"], source)


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
