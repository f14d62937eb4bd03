"""How a run reaches the gateway: URL, headers with the apikey, timeouts, retries and pace."""

from __future__ import annotations

import os

from campaign_runner import campaign as campaign_mod
from campaign_runner.campaign import Campaign
from campaign_runner.dispatch import SendSettings
from campaign_runner.errors import CampaignInvalid, Problem

__all__ = ["SendSettings", "gateway_headers", "resolve_apikey", "send_settings"]


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


def send_settings(
    campaign: Campaign, *, url: str | None = None, apikey: str | None = None
) -> SendSettings:
    """Everything the sender needs; URL and APIKEY override the campaign's (a rehearsal)."""
    gateway, send = campaign.gateway, campaign.send
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
