"""The sender (still in dispatch.py until the gateway package lands)."""

from campaign_runner.dispatch import Sender

__all__ = ["Sender"]
