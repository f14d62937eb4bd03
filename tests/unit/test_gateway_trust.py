"""The trust model's rules, one table each: which gateway URLs, header names and values,
and environment lists are refused, and why (never repeating the value)."""

from __future__ import annotations

import pytest

from campaign_runner.gateway import trust
from campaign_runner.sandbox.config import exposure_problem

URLS = {
    "https://api-cerberus-kong.socialminer.tech/api/Messages": None,
    "HTTPS://GATEWAY.EXAMPLE.COM/api": None,
    "https://gateway.example.com:8443/api?phone_id=1": None,
    "http://localhost:8787/api/Messages": None,
    "http://127.0.0.1/api": None,
    "http://127.255.0.9:80/api": None,
    "http://[::1]:8787/api": None,
    "https://[2001:db8::1]/api": None,
    "https://10.0.0.5/api": None,
    "http://10.0.0.5/api": "must use https:// to reach another machine",
    "http://[::]:8787/api": "must use https:// to reach another machine",
    "http://0.0.0.0/api": "must use https:// to reach another machine",
    "http://localhost.evil.example/api": "must use https:// to reach another machine",
    "http://2130706433/api": "must use https:// to reach another machine",
    "ws://localhost/api": "must start with https://",
    "file:///etc/passwd": "must start with https://",
    "//gateway.example.com/api": "must start with https://",
    "https://u:p@gateway.example.com/": "must not carry a user name or password",
    "https://@gateway.example.com/": "must not carry a user name or password",
    "https://gateway.example.com/#x": "must not have a #fragment",
    "https://gateway.example.com/?a=1&ApiKey=2": "must not carry the apikey in its query",
    "https://gateway.example.com/a b": "has a space or a control character",
    "https://gateway.example.com/\ta": "has a space or a control character",
    "https://gateway.example.com/\x7f": "has a space or a control character",
    "https://bücher.example/": "has a character outside ASCII",
    "https://gateway.example.com/ä": "has a character outside ASCII",
    "https://gateway.example.com:65536/": "has a port that is not a number from 1 to 65535",
    "https://gateway.example.com:-1/": "has a port that is not a number from 1 to 65535",
    "https://gateway.example.com:0/": "has a port that is not a number from 1 to 65535",
    "https://:443/": "has no host",
    "https://[::1/": "has [brackets] that do not hold an IPv6 address",
    "https://[gateway]/": "has [brackets] that do not hold an IPv6 address",
    "https://gate way.example.com/": "has a space or a control character",
    "https://gate..way/": "has a host that is not a name or an address",
    "https://-gateway.example.com/": "has a host that is not a name or an address",
    "https://" + "a" * 2050: "is 2058 characters long; at most 2048 allowed",
}


@pytest.mark.parametrize("url, reason", URLS.items(), ids=list(URLS))
def test_url_problem(url, reason):
    said = trust.url_problem(url)
    assert (said is None) == (reason is None), said
    if reason is not None:
        assert said.startswith(reason)
        assert url not in said


@pytest.mark.parametrize(
    "host, loopback",
    [
        ("localhost", True),
        ("LOCALHOST", True),
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("::", False),
        ("", False),
        ("128.0.0.1", False),
        ("localhost.example.com", False),
        ("127.0.0.1.nip.io", False),
    ],
)
def test_is_loopback(host, loopback):
    assert trust.is_loopback(host) is loopback


VALUES = {
    "grp-7": None,
    "Bearer abc.def~ghi/+=": None,
    "a b\tc": "holds a control character",
    "a\nb": "holds a line break",
    "a\rb": "holds a line break",
    "a\0b": "holds a NUL character",
    "a\x1b[31m": "holds a control character",
    "\x85next line": "holds a character outside ASCII",
    "São": "holds a character outside ASCII",
    "€": "holds a character outside ASCII",
    "\u202eevil": "holds a character outside ASCII",
    "x" * 4096: None,
    "x" * 4097: "is 4097 characters long; at most 4096 allowed",
}


@pytest.mark.parametrize("value, reason", VALUES.items(), ids=[repr(v)[:20] for v in VALUES])
def test_value_problem(value, reason):
    said = trust.value_problem(value)
    assert (said is None) == (reason is None)
    if reason is not None:
        assert said.startswith(reason)


@pytest.mark.parametrize(
    "name, reason",
    [
        ("x-origin-group", None),
        ("Authorization", None),
        ("X_Custom.1", None),
        ("", "is not a header name"),
        ("x group", "is not a header name"),
        ("x:group", "is not a header name"),
        ("x-group\n", "is not a header name"),
        ("grüße", "is not a header name"),
        *[(n, "is set by the runner itself") for n in trust.RESERVED_HEADERS],
        ("APIKEY", "is set by the runner itself"),
        ("Idempotency-Key", "is set by the runner itself"),
    ],
)
def test_header_name_problem(name, reason):
    said = trust.header_name_problem(name)
    assert (said is None) == (reason is None)
    if reason is not None:
        assert said.startswith(reason)


@pytest.mark.parametrize(
    "listed, names, problems",
    [
        (None, set(), []),
        ("", set(), []),
        ("A", {"A"}, []),
        (" A , B,,C ", {"A", "B", "C"}, []),
        ("A,1B,c-d", {"A"}, ["entry 2 is not", "entry 3 is not"]),
    ],
)
def test_allowed_variables(listed, names, problems):
    environ = {} if listed is None else {trust.ALLOWED_ENV: listed}
    allowed, said = trust.allowed_variables(environ)
    assert allowed == names
    assert [s[: len(p)] for s, p in zip(said, problems, strict=True)] == problems


def test_variables_and_expand():
    value = "grp-${GROUP}-${REGION}-$HOME-${GROUP}"
    assert trust.variables(value) == ["GROUP", "REGION", "GROUP"]
    assert trust.expand(value, {"GROUP": "7", "REGION": "sp"}) == "grp-7-sp-$HOME-7"


@pytest.mark.parametrize(
    "host, apikey, refused",
    [
        ("127.0.0.1", None, None),
        ("::1", None, None),
        ("localhost", None, None),
        ("0.0.0.0", None, "host '0.0.0.0' is not this machine"),
        ("", None, "host '' is not this machine"),
        ("0.0.0.0", "k", None),
        ("127.0.0.1", "", "the sandbox's apikey is empty"),
        ("127.0.0.1", "k\n", "the sandbox's apikey holds a line break"),
    ],
)
def test_sandbox_exposure(host, apikey, refused):
    said = exposure_problem(host, apikey)
    assert (said is None) == (refused is None)
    if refused is not None:
        assert said.startswith(refused)
