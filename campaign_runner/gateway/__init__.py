"""Talking to the Messages API gateway: settings, the sender, and what its answers mean."""
