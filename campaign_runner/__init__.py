"""campaign-runner: declarative YAML campaigns for WhatsApp messages.

How a campaign flows through the package, one module (or package) a step:

    campaign.yaml ─► yaml_source ─► campaign (+ schemas, schedule, approved_text) ─► Campaign
    recipients.csv ─► recipients (+ phones) ─┐
                                             ▼
                      render + schemas ─► prepare ─► PreparedRow (Status.READY + body, or why not)
                                             │
            ┌────────────────────────────────┼─────────────────────────────┐
            ▼                                ▼                             ▼
        validate              run ─► plan ─► delivery ─► gateway/     preview/
     (count, explain)   (lock, journal,  (journal       (sender,      (model, then text,
                         approval,        decisions,     answers,      jsonl, html)
                         report,          spool)         transport)
                         rehearsal)                          ▲
                                │                            │ over HTTP
                                ▼                       sandbox/ (a fake Kong + Meta gateway)
                     journal + report + summary

After "sent", what Meta reports flows back into the same ledger (webhooks/):

    Meta ─► webhooks.receiver (campaign webhook) ─┐
    a log ─► webhooks.ingest (campaign ingest) ───┴► webhooks.payload ─► ledger.outcomes
          (outcome merge, suppressions, holds) ─► outcome_report, monitor (the funnel),
          follow_up (the next campaign's recipients), holds + breaker (runs that stop)

Shared vocabulary: `status.Status` (what happened to a row), `errors` (located problems
and exit codes), `gateway.answers` (what each Meta/Kong answer means), `ratelimit`
(the one token bucket), `schedule` (when sending is allowed), `suggest` (did you mean),
`outputs` (files a command writes never clobber its inputs). `cli` is a thin shell over
`validate`, `run`, `preview`, `monitor.read_status`, `sandbox` and `starters`.
"""

__version__ = "0.1.0"
