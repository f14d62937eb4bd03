"""The HTML campaign summary (`campaign report --format html`): the HTML preview's sibling,
one self-contained page of how far a campaign's messages went.

    header     the campaign, when the page was made, from which ledger (no password),
               and how its last run ended
    funnel     accepted → sent → delivered → read as bars, each with its number and share
               written out (the numbers are text; colour only repeats them); failed and no
               status yet beside them
    failures   by Meta's code: how many, and Meta's title
    pricing    the pricing categories Meta reported
    sends      the ledger's own count of sends per state

Every value goes through `html.escape`: titles, pricing categories and codes come from
Meta's webhooks and are data, never markup. The page loads nothing and its
Content-Security-Policy forbids scripts and any request, like the preview's (preview/html.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from html import escape
from typing import TYPE_CHECKING

from campaign_runner import funnel as funnel_words
from campaign_runner.preview.html import warnings_list

if TYPE_CHECKING:
    from campaign_runner.ledger import Funnel
    from campaign_runner.monitor import CampaignStatus

_CSP = "default-src 'none'; style-src 'unsafe-inline'"  # inline CSS only: no script, no request
_CSS = """
*{box-sizing:border-box}
body{margin:0;padding:24px;background:#d1d7db;color:#111b21;
 font:15px/1.45 "Segoe UI",Helvetica,Arial,"Liberation Sans","DejaVu Sans",sans-serif}
main{background:#fff;border-radius:12px;padding:16px 20px;margin:0 auto;max-width:760px;
 box-shadow:0 1px 3px rgba(11,20,26,.15)}
h1{margin:0 0 4px;font-size:22px;color:#006450;overflow-wrap:anywhere}
h2{font-size:16px;margin:20px 0 8px}
p{margin:0 0 6px}
.facts{color:#54656f;overflow-wrap:anywhere}
.tag{font-size:12px;text-transform:uppercase;letter-spacing:.06em;color:#fff;
 background:#6b5300;border-radius:4px;padding:1px 6px;vertical-align:3px}
.stages{list-style:none;margin:0;padding:0;display:grid;gap:10px}
.stage{display:grid;grid-template-columns:1fr auto;gap:2px 12px;align-items:baseline}
.stage .name{font-weight:600}
.stage .figure{white-space:nowrap}
.bar{grid-column:1/-1;height:14px;border-radius:7px;background:#e9edef;overflow:hidden}
.fill{display:block;height:100%;background:#00a884}
.stage.delivered .fill{background:#008069}.stage.read .fill{background:#005c4b}
.others,.counts{list-style:none;display:flex;flex-wrap:wrap;gap:8px;margin:12px 0 0;padding:0}
.others li,.counts li{border-radius:999px;padding:3px 12px;background:#e9edef}
.others .failed{background:#ffe1e1;color:#a0161b}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #e9edef;vertical-align:top}
th,td.code,td.count{white-space:nowrap}
td.title{overflow-wrap:anywhere}
.none{color:#54656f}
.sends .none{margin-top:10px}
.warnings{color:#6b5300;padding-left:20px;overflow-wrap:anywhere}
@media (max-width:600px){body{padding:8px}main{padding:12px}th,td{padding:4px 6px}}
"""
_NO_TITLE = "(Meta gave no title)"


def page(status: CampaignStatus, made: datetime, rehearsal: bool = False) -> Iterator[str]:
    """The page in chunks: head, then each section (see the module's docstring)."""
    title = escape(f"{status.name}: outcomes")
    yield (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title><style>{_CSS}</style></head><body><main>\n"
    )
    yield _header(status, made, rehearsal)
    yield _funnel(status.funnel)
    yield _failures(status.funnel)
    yield _pricing(status.funnel)
    yield _sends(status)
    yield "</main></body></html>\n"


def _header(status: CampaignStatus, made: datetime, rehearsal: bool) -> str:
    moment = made.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    tag = ' <span class="tag">rehearsal</span>' if rehearsal else ""
    out = [
        f"<header><h1>{escape(status.name)}{tag}</h1>",
        f'<p class="facts">Made <time datetime="{moment}">{moment}</time> from the ledger '
        f"<code>{escape(status.journal)}</code></p>",
        f'<p class="facts">Last run: {escape(status.run_sentence())}</p>',
    ]
    out.append(warnings_list(status.warnings))
    return "".join(out) + "</header>\n"


def _funnel(funnel: Funnel) -> str:
    heading = '<section class="funnel"><h2>How far the messages went</h2>'
    if funnel.accepted == 0:
        return f'{heading}<p class="none">The gateway accepted no message yet.</p></section>\n'
    note = ""
    if not funnel_words.reported(funnel):
        note = (
            f'<p class="none">No outcome reported yet for the {funnel.accepted} accepted '
            "message(s): run <code>campaign webhook</code> or <code>campaign ingest</code>.</p>"
        )
    bars = "".join(_stage(stage, funnel.accepted) for stage in funnel_words.stages(funnel))
    waiting = funnel_words.no_status(funnel)
    others = (
        f'<ul class="others"><li class="failed">failed <b>{funnel.failed}</b> '
        f"({funnel_words.share(funnel.failed, funnel.accepted)}%)</li>"
        f"<li>no status yet <b>{waiting}</b> "
        f"({funnel_words.share(waiting, funnel.accepted)}%)</li></ul>"
    )
    return f'{heading}{note}<ol class="stages">{bars}</ol>{others}</section>\n'


def _stage(stage: funnel_words.Stage, accepted: int) -> str:
    name = escape(stage.name)
    return (
        f'<li class="stage {name}"><span class="name">{name}</span>'
        f'<span class="figure"><b>{stage.count}</b> of {accepted} &middot; {stage.percent}%</span>'
        f'<span class="bar" aria-hidden="true"><span class="fill" style="width:{stage.percent}%">'
        "</span></span></li>"
    )


def _failures(funnel: Funnel) -> str:
    if not funnel.failed_by_code:
        return ""
    rows = "".join(
        f'<tr><td class="code">{escape(funnel_words.code_name(code))}</td>'
        f'<td class="count">{n}</td><td class="title">{escape(title or _NO_TITLE)}</td></tr>'
        for code, title, n in funnel.failed_by_code
    )
    return (
        f'<section class="failures"><h2>Failed, by Meta\'s code ({funnel.failed})</h2>'
        "<table><thead><tr><th>code</th><th>count</th><th>what Meta said</th></tr></thead>"
        f"<tbody>{rows}</tbody></table></section>\n"
    )


def _pricing(funnel: Funnel) -> str:
    heading = '<section class="pricing"><h2>Pricing categories</h2>'
    if not funnel.pricing:
        return f'{heading}<p class="none">Meta reported no pricing category yet.</p></section>\n'
    ordered = sorted(funnel.pricing.items(), key=lambda item: (-item[1], item[0]))
    items = "".join(f"<li>{escape(name)} <b>{n}</b></li>" for name, n in ordered)
    return f'{heading}<ul class="counts">{items}</ul></section>\n'


def _sends(status: CampaignStatus) -> str:
    items = "".join(
        f"<li>{escape(name)} <b>{n}</b></li>" for name, n in sorted(status.counts.items())
    )
    out = f'<section class="sends"><h2>Sends in the ledger</h2><ul class="counts">{items}</ul>'
    if status.unmatched:
        out += (
            f'<p class="none">{status.unmatched} status(es) in the ledger are for messages it '
            "does not know (yet), of any campaign; they are matched when their message appears.</p>"
        )
    return out + "</section>\n"
