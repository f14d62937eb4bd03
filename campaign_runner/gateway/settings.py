"""Where and how to send: the gateway's address, headers and the send policy of a campaign.

`send_settings` is the one place that turns a campaign plus what ops put in the environment
(the apikey, the pinned gateway, the variables `${NAME}` may read) into `SendSettings`;
`rehearsal_settings` does the same for the in-process sandbox's own address and key. Both
apply the environment half of the trust model (trust.py) and refuse, naming the variable and
never its value, anything the HTTP layer would refuse mid-run.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import NoReturn, TypeVar

from campaign_runner.campaign import Campaign
from campaign_runner.errors import CampaignInvalid, Problem
from campaign_runner.gateway import trust

GATEWAY_URL_OPTION = "--gateway-url"
_T = TypeVar("_T")


@dataclass(frozen=True)
class SendSettings:
    """Everything the sender needs: where to POST, with which headers, and its retry policy."""

    url: str
    headers: dict[str, str]
    params: dict[str, str]
    timeout_s: float
    retries: int = 3
    retry_timeouts: bool = False
    rate_per_s: float | None = None
    backoff_s: float = 1.0


def send_settings(
    campaign: Campaign, *, pinned_url: str | None = None, apikey: str | None = None
) -> SendSettings:
    """CAMPAIGN's settings for a real send: the gateway ops pinned (PINNED_URL, else
    $CAMPAIGN_GATEWAY_URL) or the campaign's, and APIKEY or the one from the environment."""
    problems: list[Problem] = []
    url = _checked(gateway_url, problems, campaign, pinned_url)
    if apikey is not None:
        key = _checked(_given_apikey, problems, campaign, apikey)
    else:
        key = _checked(resolve_apikey, problems, campaign)
    headers = _checked(gateway_headers, problems, campaign, key or "")
    if problems or url is None or headers is None:
        raise CampaignInvalid(problems)
    return _settings(campaign, url, headers)


def rehearsal_settings(campaign: Campaign, url: str, apikey: str) -> SendSettings:
    """CAMPAIGN's settings for a rehearsal against the sandbox at URL that wants APIKEY."""
    return _settings(campaign, url, gateway_headers(campaign, apikey))


def _settings(campaign: Campaign, url: str, headers: dict[str, str]) -> SendSettings:
    send = campaign.send
    return SendSettings(
        url=url,
        headers=headers,
        params=campaign.gateway.params,
        timeout_s=campaign.gateway.timeout_s,
        retries=send.retries,
        retry_timeouts=send.retry_timeouts,
        rate_per_s=send.rate_per_s,
        backoff_s=send.backoff_s,
    )


def _checked(step: Callable[..., _T], problems: list[Problem], *args: object) -> _T | None:
    """STEP(*ARGS), or None with its problems added to PROBLEMS: every one is said at once."""
    try:
        return step(*args)
    except CampaignInvalid as error:
        problems.extend(error.problems)
        return None


def gateway_url(campaign: Campaign, pinned_url: str | None = None) -> str:
    """Where messages go: the pin (PINNED_URL, else $CAMPAIGN_GATEWAY_URL) or the campaign's.

    A campaign that names another gateway than the pin is refused, not re-routed: its
    messages were written for that gateway, so sending them elsewhere would be a guess.
    """
    where = GATEWAY_URL_OPTION if pinned_url is not None else trust.PIN_ENV
    pin = pinned_url if pinned_url is not None else os.environ.get(trust.PIN_ENV)
    if pin is None:
        return campaign.gateway.url
    # An empty pin is a mistake (a file that was not there?), never "no pin".
    reason = trust.url_problem(pin) if pin.strip() else "is empty: unset it, or give the URL"
    if reason:
        raise CampaignInvalid(Problem(where, None, None, f"the pinned gateway URL {reason}"))
    if campaign.gateway.url_in_file and campaign.gateway.url != pin:
        message = (
            f"gateway.url differs from the gateway ops pinned with {where}: remove gateway.url "
            "from the campaign, or make it the same (the pin decides where messages go)"
        )
        raise CampaignInvalid(campaign.source.problem(("gateway", "url"), message))
    return pin


def gateway_headers(campaign: Campaign, apikey: str) -> dict[str, str]:
    """The headers every request carries: apikey, version, content type and the extra ones.

    `${NAME}` reads only the variables ops allow in $CAMPAIGN_ALLOWED_ENV; a value that is
    not one line of printable ASCII is refused naming the variable, never showing the value.
    """
    allowed, list_problems = trust.allowed_variables(os.environ)
    problems = [Problem(trust.ALLOWED_ENV, None, None, p) for p in list_problems]
    headers: dict[str, str] = {}
    for name, value in campaign.gateway.headers.items():
        values, header_problems = _variable_values(value, allowed, os.environ)
        where = f"gateway.headers.{trust.shown_key(name)}"
        path = ("gateway", "headers", name)
        problems += [campaign.source.problem(path, f"{where} {p}") for p in header_problems]
        if not header_problems:
            headers[name] = trust.expand(value, values)
            reason = trust.value_problem(headers[name])
            if reason:  # each variable fits, but together they are too long
                problems.append(campaign.source.problem(path, f"{where} once expanded {reason}"))
    if problems:
        raise CampaignInvalid(problems)
    headers.update(
        {"apikey": apikey, "version": campaign.gateway.version, "Content-Type": "application/json"}
    )
    return headers


def _variable_values(
    value: str, allowed: frozenset[str], environ: Mapping[str, str]
) -> tuple[dict[str, str], list[str]]:
    """The values of the variables VALUE reads, and why any cannot be used (never the value)."""
    values: dict[str, str] = {}
    problems: list[str] = []
    for name in trust.variables(value):
        if name not in allowed:
            problems.append(
                f"reads the environment variable {name}, which ops have not allowed: "
                f"ops list the variables a campaign may read in {trust.ALLOWED_ENV}={name},..."
            )
        elif name not in environ:
            problems.append(f"reads the environment variable {name}, which is not set")
        elif not environ[name].strip():
            problems.append(f"reads the environment variable {name}, which is empty")
        elif trust.value_problem(environ[name]):
            reason = trust.value_problem(environ[name])
            problems.append(f"reads the environment variable {name}, which {reason}")
        else:
            values[name] = environ[name]
    return values, problems


def resolve_apikey(campaign: Campaign) -> str:
    """The apikey from the environment variable the campaign names; a clear error when it is
    unset, empty or not one line of printable ASCII (naming the variable, never the value)."""
    name = campaign.gateway.apikey_env
    value = os.environ.get(name, "").strip()
    if not value:
        unset = "which is not set" if name not in os.environ else "which is empty"
        _refuse_apikey(
            campaign,
            f"the apikey is read from the environment variable {name}, {unset}; "
            f"export {name}=... (or use --dry-run or --sandbox)",
        )
    reason = trust.value_problem(value)
    if reason:
        _refuse_apikey(campaign, f"the apikey in the environment variable {name} {reason}")
    return value


def _given_apikey(campaign: Campaign, apikey: str) -> str:
    """An apikey handed to the library directly: the same rules as one from the environment."""
    value = apikey.strip()
    reason = trust.value_problem(value) if value else "is empty"
    if reason:
        _refuse_apikey(campaign, f"the apikey given {reason}")
    return value


def _refuse_apikey(campaign: Campaign, message: str) -> NoReturn:
    at = ("gateway", "apikey_env")
    if at in campaign.source.values:
        raise CampaignInvalid(campaign.source.problem(at, message))
    raise CampaignInvalid(Problem(str(campaign.path), None, None, message))
