"""What Meta reports after "sent": status webhooks, inbound replies and opt-outs.

Meta ─► POST /webhook ─► receiver (signature, then payload) ─┐
a gateway's log file ─► ingest (payload, line by line) ──────┤
                                                             ▼
                  payload.parse_payload ─► Events ─► ledger.apply_events
                                                     (outcome.merge per delivery, by wamid;
                                                      unknown wamids kept aside;
                                                      opt-outs suppressed, paused
                                                      templates hold their campaign)

signature.py  the subscription handshake and X-Hub-Signature-256
payload.py    one parser for both ways in: events, and problems with their JSON path
outcome.py    the merge rules: furthest state, failure kept, never backwards
receiver.py   `campaign webhook`: Meta's protocol on Starlette and uvicorn
batcher.py    group commit: many requests' events in one transaction, answered once committed
ingest.py     `campaign ingest FILE|-`: logged payloads, line by line
tally.py      the counts both ways in report, in the same words
"""
