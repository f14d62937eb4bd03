"""campaign-runner: declarative YAML campaigns for WhatsApp messages.

The pipeline, one module a stage: campaign (load) -> schemas (validate) -> render ->
schemas (validate each body) -> dispatch (send) -> report; journal keeps it exactly-once.
"""

__version__ = "0.1.0"
