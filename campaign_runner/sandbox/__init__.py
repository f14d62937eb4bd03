"""The sandbox: a local stand-in for the Kong-fronted WhatsApp gateway, on loopback.

It answers `POST /api/Messages` as the real gateway does (Kong key-auth and rate limiting,
Meta error envelopes), records what it accepts and injects faults on request, so a campaign
can be rehearsed with no credentials and the tests talk to a real HTTP server.

    runners.py       Sandbox (background thread) and serve() (foreground)
    fake_gateway.py  FakeGateway: routes, latency, echo; the records endpoint
    messages_api.py  POST /api/Messages: Kong, then faults, then Meta's checks; meta_error
    kong.py          Kong's key-auth and rate-limit answers, in its words
    faults.py        Faults (configured) and FaultPlan (drawn request by request)
    records.py       Records: what was accepted, in memory and in a JSON Lines file
    server.py        HttpServer: HTTP/1.1 with h11 on one asyncio loop; Reply
    config.py        SandboxConfig; without an apikey, loopback only
"""

from campaign_runner.sandbox.config import SandboxConfig
from campaign_runner.sandbox.faults import Faults, fault_problems
from campaign_runner.sandbox.messages_api import API_PATH, meta_error
from campaign_runner.sandbox.runners import Sandbox, serve

__all__ = [
    "API_PATH",
    "Faults",
    "Sandbox",
    "SandboxConfig",
    "fault_problems",
    "meta_error",
    "serve",
]
