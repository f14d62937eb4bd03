"""Previews: what each recipient would receive, counted first, then shown in one of three formats.

build(campaign, recipients, limit, sample)  -> Preview      (passes.py: the policy, two passes)
    Preview.summary   -> Summary                            (model.py: counts, unsendable rows)
    Preview.rows()    -> ShownRow ... (.message)            (message.py: one body, described)
reporters, which only format that result:
    text.lines(summary, rows)             readable lines with colour roles
    jsonl.lines(rows, recipients_file)    the exact request bodies
    html.write(summary, rows, path)       chats in one self-contained page (page.css, icons/)
"""

from campaign_runner.preview.passes import Preview, build

__all__ = ["Preview", "build"]
