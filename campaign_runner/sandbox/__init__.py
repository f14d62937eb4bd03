"""The sandbox: a local stand-in for the Kong-fronted WhatsApp gateway, on loopback.

It answers `POST /api/Messages` as the real gateway does (Kong key-auth and rate limiting,
Meta error envelopes), records what it accepts and injects faults on request, so a campaign
can be rehearsed with no credentials and the tests talk to a real HTTP server. On request
it also posts Meta's signed status webhooks (sent, delivered, read, failed) for what it
accepted, so the whole loop rehearses on one machine.

    runners.py         Sandbox (background thread) and serve() (foreground)
    fake_gateway.py    FakeGateway: routes, latency, echo; the records endpoint
    messages_api.py    POST /api/Messages: Kong, then faults, then Meta's checks; meta_error
    kong.py            Kong's key-auth and rate-limit answers, in its words
    faults.py          Faults (configured) and FaultPlan (drawn request by request)
    statuses.py        Webhooks (configured) and StatusPlan (drawn message by message)
    status_webhook.py  one status webhook in Meta's shape, signed
    webhook_poster.py  WebhookPoster: posts them in the background, retries, logs them
    records.py         Records: what was accepted, in memory and in a JSON Lines file
    server.py          HttpServer: HTTP/1.1 with h11 on one asyncio loop; Reply
    config.py          SandboxConfig; without an apikey, loopback only
"""

from campaign_runner.sandbox.config import SandboxConfig
from campaign_runner.sandbox.faults import Faults, fault_problems
from campaign_runner.sandbox.messages_api import API_PATH, meta_error
from campaign_runner.sandbox.runners import Sandbox, serve
from campaign_runner.sandbox.statuses import Webhooks, webhook_problems

__all__ = [
    "API_PATH",
    "Faults",
    "Sandbox",
    "SandboxConfig",
    "Webhooks",
    "fault_problems",
    "meta_error",
    "serve",
    "webhook_problems",
]
