"""Where and how to send: the gateway's address, headers and the send policy of a campaign.

`send_settings` is the one place that turns a campaign (plus the apikey from the
environment, or the sandbox rehearsal's own address and key) into `SendSettings`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from campaign_runner import campaign as campaign_mod
from campaign_runner.campaign import Campaign
from campaign_runner.errors import CampaignInvalid, Problem


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
    campaign: Campaign, *, url: str | None = None, apikey: str | None = None
) -> SendSettings:
    """CAMPAIGN's settings; URL and APIKEY (the sandbox's) replace the configured ones."""
    gateway = campaign.gateway
    send = campaign.send
    return SendSettings(
        url=url or gateway.url,
        headers=gateway_headers(campaign, apikey or resolve_apikey(campaign)),
        params=gateway.params,
        timeout_s=gateway.timeout_s,
        retries=send.retries,
        retry_timeouts=send.retry_timeouts,
        rate_per_s=send.rate_per_s,
        backoff_s=send.backoff_s,
    )


def gateway_headers(campaign: Campaign, apikey: str) -> dict[str, str]:
    """The headers every request carries: apikey, version, content type and the extra ones."""
    gateway = campaign.gateway
    where = f"{campaign.path}: gateway.headers"
    headers = {k: campaign_mod.expand_env(v, where) for k, v in gateway.headers.items()}
    headers.update(
        {"apikey": apikey, "version": gateway.version, "Content-Type": "application/json"}
    )
    return headers


def resolve_apikey(campaign: Campaign) -> str:
    """The apikey from the environment variable the campaign names; a clear error when unset."""
    name = campaign.gateway.apikey_env
    value = os.environ.get(name, "").strip()
    if not value:
        raise CampaignInvalid(
            Problem(
                str(campaign.path),
                None,
                None,
                f"the apikey is read from the environment variable {name}, which is not set; "
                f"export {name}=... (or use --dry-run or --sandbox)",
            )
        )
    return value
