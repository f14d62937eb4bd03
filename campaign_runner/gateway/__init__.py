"""Talking to the gateway: what to send where, how to send it, and what its answers mean.

    trust.py      the trust model: which gateways, headers and variables a campaign may use
    settings.py   SendSettings, and `send_settings(campaign)`: URL, headers, retry policy
    answers.py    Meta's error codes and Kong's statuses, in one table; `classify` a reply
    sender.py     Sender: pace, retry, back off; one recipient's `Outcome`
    transport.py  keep-alive connections over httpcore; what each transport error means

Nothing is imported here, so loading the settings does not load httpcore and TLS.
"""
