"""The trust model: marketers edit the campaign file, ops hold the key.

A campaign file decides what to send; it must not decide where the apikey goes or which
secrets leave the machine. So, for every campaign, before anything is sent:

- `gateway.url` is https, or plain http only to this machine (localhost, 127.0.0.0/8, ::1);
  never a user name or password, a #fragment or an `apikey` in the query.
- Ops may pin the gateway outside the file (`CAMPAIGN_GATEWAY_URL`, or `campaign run
  --gateway-url`): a campaign whose own `gateway.url` differs is refused, never re-routed.
- `${NAME}` in a header reads only variables ops list in `CAMPAIGN_ALLOWED_ENV`, and never
  the apikey's own variable: the apikey only ever goes out as the `apikey` header.
- Header names are HTTP tokens; the headers the runner sets itself are reserved; header and
  parameter values, and the apikey, are one line of printable ASCII.

Every check says what is wrong and where, and never repeats a value: a value may be a secret.
This module holds the rules as pure functions; `campaign.py` applies the ones about the file
when it loads, `settings.py` the ones about the environment when a run reads it.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

PIN_ENV = "CAMPAIGN_GATEWAY_URL"  # ops' gateway: wins over the file's
ALLOWED_ENV = "CAMPAIGN_ALLOWED_ENV"  # comma-separated variables `${NAME}` may read
MAX_URL_LENGTH = 2048  # characters in gateway.url (or the pin); Kong's own limit is higher
MAX_VALUE_LENGTH = 4096  # characters in one header or parameter value, or the apikey
# Set by the runner itself, or by the HTTP layer: a campaign header may not replace them.
RESERVED_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "content-type",
        "transfer-encoding",
        "connection",
        "apikey",
        "version",
        "idempotency-key",
    }
)
# Kong's key-auth also reads the key from the query string: it never goes there.
RESERVED_PARAMS = frozenset({"apikey"})

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9_-]*[A-Za-z0-9])?"
_HOST_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")
_PRINTABLE = re.compile(r"[\x20-\x7e]*")
_LOOPBACK_NAMES = frozenset({"localhost"})
_HTTP_ONLY_HERE = "plain http:// is only for this machine: localhost, 127.0.0.1 or ::1"


@dataclass(frozen=True)
class GatewayIssue:
    """One thing wrong in the gateway section: where (a path of keys) and what; never the value."""

    path: tuple[str, ...]
    message: str
    at_key: bool = False  # a header name: shown where the key is written


def is_loopback(host: str) -> bool:
    """True when HOST is this machine: localhost, 127.0.0.0/8 or ::1 (brackets allowed)."""
    host = host.strip("[]").lower()
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url_problem(url: str) -> str | None:
    """Why URL may not carry the apikey (None: it may); never repeats the URL."""
    if len(url) > MAX_URL_LENGTH:
        return f"is {len(url)} characters long; at most {MAX_URL_LENGTH} allowed"
    if not url.isascii():
        return (
            "has a character outside ASCII: write the host in its IDNA form (xn--...) "
            "and percent-encode the path"
        )
    if not _PRINTABLE.fullmatch(url) or " " in url:
        return "has a space or a control character: percent-encode it (%20)"
    try:
        parts = urlsplit(url)
    except ValueError:  # Python checks a [bracketed] host while splitting
        return "has [brackets] that do not hold an IPv6 address"
    if parts.scheme not in ("https", "http"):
        return f"must start with https://; {_HTTP_ONLY_HERE}"
    if "@" in parts.netloc:
        return (
            "must not carry a user name or password: the gateway's credentials come from "
            "the environment (gateway.apikey_env, gateway.headers)"
        )
    if "#" in url:
        return "must not have a #fragment"
    return _host_problem(parts.scheme, parts.netloc) or _query_problem(parts.query)


def _host_problem(scheme: str, netloc: str) -> str | None:
    parts = urlsplit(f"{scheme}://{netloc}")  # already split once without an error
    host = parts.hostname or ""
    try:
        port = parts.port
    except ValueError:
        return "has a port that is not a number from 1 to 65535"
    if port == 0:
        return "has a port that is not a number from 1 to 65535"
    if not host:
        return "has no host: write it as https://HOST/PATH"
    if netloc.startswith("["):
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return "has [brackets] that do not hold an IPv6 address"
    elif not _HOST_NAME.fullmatch(host):
        return "has a host that is not a name or an address (letters, digits, - and .)"
    if scheme == "http" and not is_loopback(host):
        return f"must use https:// to reach another machine; {_HTTP_ONLY_HERE}"
    return None


def _query_problem(query: str) -> str | None:
    names = {name.lower() for name, _ in parse_qsl(query, keep_blank_values=True)}
    if names & RESERVED_PARAMS:
        return "must not carry the apikey in its query: it goes in the apikey header only"
    return None


def value_problem(value: str) -> str | None:
    """Why VALUE cannot be a header or parameter value (None: it can); never repeats VALUE."""
    if len(value) > MAX_VALUE_LENGTH:
        return f"is {len(value)} characters long; at most {MAX_VALUE_LENGTH} allowed"
    if _PRINTABLE.fullmatch(value):
        return None
    if "\r" in value or "\n" in value:
        return "holds a line break; it must be one line of printable ASCII"
    if "\0" in value:
        return "holds a NUL character; it must be one line of printable ASCII"
    if not value.isascii():
        return "holds a character outside ASCII; it must be one line of printable ASCII"
    return "holds a control character; it must be one line of printable ASCII"


def header_name_problem(name: str) -> str | None:
    """Why NAME cannot be a campaign's extra header (None: it can)."""
    if not _TOKEN.fullmatch(name):
        return (
            "is not a header name: letters, digits and - (no spaces, colons or other punctuation)"
        )
    if name.lower() in RESERVED_HEADERS:
        return (
            "is set by the runner itself and cannot be given here "
            "(the apikey comes from the variable gateway.apikey_env names)"
        )
    return None


def variables(value: str) -> list[str]:
    """The environment variables VALUE reads, as `${NAME}`, in order."""
    return _VARIABLE.findall(value)


def expand(value: str, lookup: dict[str, str]) -> str:
    """VALUE with each `${NAME}` replaced by LOOKUP[NAME] (every name must be there)."""
    return _VARIABLE.sub(lambda match: lookup[match.group(1)], value)


def check_gateway(gateway: dict[str, Any], apikey_env: str) -> list[GatewayIssue]:
    """Every problem with a campaign's `gateway:` section that the file alone shows."""
    issues: list[GatewayIssue] = []
    for key, check in (("url", url_problem), ("version", value_problem)):
        value = gateway.get(key)
        reason = (_sent_as_written(value) or check(value)) if isinstance(value, str) else None
        if reason:
            issues.append(GatewayIssue(("gateway", key), f"gateway.{key} {reason}"))
    headers = gateway.get("headers")
    if isinstance(headers, dict):
        issues += _header_issues(headers, apikey_env)
    params = gateway.get("params")
    if isinstance(params, dict):
        issues += _param_issues(params)
    return issues


def _sent_as_written(value: str) -> str | None:
    """Only header values read the environment: `${NAME}` anywhere else would go out as is."""
    if "${" not in value:
        return None
    return (
        "is sent as written: ${NAME} is read only in gateway.headers (ops pin the gateway "
        f"with {PIN_ENV})"
    )


def shown_key(name: str) -> str:
    """NAME as a message may show it: a key from the file, escaped when it is not plain."""
    return name if _TOKEN.fullmatch(name) else json.dumps(name)[:64]


def _header_issues(headers: dict[str, Any], apikey_env: str) -> list[GatewayIssue]:
    issues = []
    seen: dict[str, str] = {}
    for name, value in headers.items():
        path, shown = ("gateway", "headers", name), shown_key(name)
        reason = header_name_problem(name)
        if reason is None and name.lower() in seen:
            reason = f"is the same header as '{seen[name.lower()]}' (header names ignore case)"
        seen.setdefault(name.lower(), name)
        if reason:
            issues.append(GatewayIssue(path, f"gateway.headers: '{shown}' {reason}", at_key=True))
        if isinstance(value, str):
            issues += [
                GatewayIssue(path, f"gateway.headers.{shown} {why}")
                for why in _header_value_problems(value, apikey_env)
            ]
    return issues


def _header_value_problems(value: str, apikey_env: str) -> Iterator[str]:
    """What is wrong with a header value as written: its literal text and its `${...}`."""
    literal = _VARIABLE.sub("", value)
    if "${" in literal:
        yield "has '${' that is not a variable: write ${NAME} (letters, digits and _)"
    elif value_problem(literal):
        yield str(value_problem(literal))
    if apikey_env in variables(value):
        yield (
            f"reads ${{{apikey_env}}}, the apikey's own variable: the apikey only ever goes "
            "in the apikey header, which the runner sets"
        )


def _param_issues(params: dict[str, Any]) -> list[GatewayIssue]:
    issues = []
    for name, value in params.items():
        path, shown = ("gateway", "params", name), shown_key(name)
        reason = _param_name_problem(name)
        if reason:
            issues.append(GatewayIssue(path, f"gateway.params: '{shown}' {reason}", at_key=True))
        reason = (
            (_sent_as_written(value) or value_problem(value)) if isinstance(value, str) else None
        )
        if reason:
            issues.append(GatewayIssue(path, f"gateway.params.{shown} {reason}"))
    return issues


def _param_name_problem(name: str) -> str | None:
    if not name:
        return "is empty: a parameter needs a name"
    if name.lower() in RESERVED_PARAMS:
        return "would carry the apikey: it goes in the apikey header only"
    return value_problem(name)


def allowed_variables(environ: Mapping[str, str]) -> tuple[frozenset[str], list[str]]:
    """The variables ops allow `${NAME}` to read, and what is wrong with their list."""
    names: set[str] = set()
    problems: list[str] = []
    entries = [e.strip() for e in environ.get(ALLOWED_ENV, "").split(",")]
    for number, entry in enumerate(entries, start=1):
        if not entry:
            continue
        if _VARIABLE_NAME.fullmatch(entry):
            names.add(entry)
        else:
            problems.append(f"entry {number} is not a variable name (letters, digits and _)")
    return frozenset(names), problems
