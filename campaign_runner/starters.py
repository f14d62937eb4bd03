"""Starter campaigns for `campaign init TYPE`: one commented YAML file per message type, and a CSV.

Each starter validates and sends to the sandbox as written, so a marketer starts from
something that works and edits it. The texts are data; `starter` only fills in the name,
the CSV's file name and where the editor finds the campaign's JSON Schema.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from campaign_runner import schemas
from campaign_runner.errors import CampaignInvalid, Problem

_HEAD = """\
# yaml-language-server: $schema=@SCHEMA@
#
# A starter @TYPE@ campaign, written by `campaign init @TYPE@`. Edit it, then:
#
#   campaign validate @FILE@                  # the file and every rendered message
#   campaign preview @FILE@ --format html     # what each customer will see, as chats
#   campaign run @FILE@ --sandbox             # rehearse end to end, locally
#   CERBERUS_APIKEY=... campaign run @FILE@   # send for real
#
# Every string under `message` is a template: [name] takes the CSV column `name`, and
# Jinja works too ({{ name | title }}). A blank value a message uses makes that row invalid.
#
# The name (a slug) names the run, the journal and the reports.
name: @NAME@
description: "@DESCRIPTION@"

recipients:
  # The sample CSV beside this file, one row per recipient; the path is relative to this file.
  file: @CSV@
  phone_column: phone
  default_region: BR          # numbers written without +55 are read as Brazilian

gateway:
  apikey_env: CERBERUS_APIKEY # the apikey is read from this variable; never write it here

send:
  rate: 20/s                  # at most 20 messages a second
  # window: "09:00-20:00 America/Sao_Paulo"   # only send in business hours
  # days: [mon, tue, wed, thu, fri]

"""

_RECIPIENTS = [
    ("+55 11 94848-9500", "Ana"),
    ("(11) 98765-4321", "Bruno"),
    ("5521987654321", "Carla"),
]

_MESSAGES = {
    "text": (
        "A text message with WhatsApp formatting and a coupon per customer.",
        """\
message:
  type: text
  text:
    # Up to 4096 characters. *bold*, _italic_, ~strike~ and ```mono``` are WhatsApp's formatting.
    body: |-
      Olá [name]!
      Sua loja favorita tem *10% de desconto* hoje.
      Use o cupom {{ coupon | default("BEMVINDO") }} em https://example.com/loja
    preview_url: true         # show a preview of the first link
""",
        {"coupon": ["ANA10", "BRUNO10", ""]},  # a blank coupon falls back to the default
    ),
    "template": (
        "An approved template: the customer's name in the body, their cart in the button's URL.",
        """\
message:
  type: template
  template:
    name: beta_abandoncart_link_v1_1   # the approved template's name, as in WhatsApp Manager
    language:
      code: pt_BR
    components:                # values for the template's variables, in order
      - type: body
        parameters:
          - type: text
            text: "[name]"     # {{1}} in the template's body
      - type: button
        sub_type: url
        index: "0"             # the template's first button
        parameters:
          - type: text
            text: "[target_url]"   # appended to the button's URL

# Only for `campaign preview`, never sent: the approved template's text, copied from
# WhatsApp Manager, so the preview shows the sentence each customer reads. {{1}} takes the
# body's 1st parameter, {{2}} the 2nd... (or {{first_name}} the one with that parameter_name).
# A slot with no value, or a value with no slot, stops the campaign before anything is sent.
preview:
  template_text: |-
    Olá {{1}}, você deixou itens no seu carrinho.
    Toque no botão abaixo para finalizar a compra.
""",
        {
            "target_url": [
                "cart/8812?utm_source=whatsapp",
                "cart/8813?utm_source=whatsapp",
                "cart/8814?utm_source=whatsapp",
            ]
        },
    ),
    "interactive": (
        "Reply buttons: the customer answers with one tap.",
        """\
message:
  type: interactive
  interactive:
    type: button               # or list, cta_url...: see `campaign schema interactive`
    header:
      type: text
      text: Sua opinião importa  # up to 60 characters
    body:
      text: "Olá [name], como foi sua última compra?"   # up to 1024 characters
    footer:
      text: Loja Exemplo       # up to 60 characters
    action:
      buttons:                 # 1 to 3 buttons; ids and titles (20 characters) unique
        - type: reply
          reply:
            id: nps-good
            title: Gostei
        - type: reply
          reply:
            id: nps-bad
            title: Não gostei
        - type: reply
          reply:
            id: talk-to-us
            title: Falar com a loja
""",
        {},
    ),
    "contacts": (
        "A contact card customers can save: the store's service line.",
        """\
message:
  type: contacts
  contacts:                    # 1 to 257 cards
    - name:
        formatted_name: Atendimento Loja Exemplo
        first_name: Atendimento
      org:
        company: Loja Exemplo
        department: Atendimento
      phones:
        - phone: "+55 11 4000-0000"
          type: WORK
      emails:
        - email: atendimento@example.com
          type: WORK
      urls:
        - url: https://example.com
          type: WORK
""",
        {},
    ),
    "location": (
        "A map pin: where the store is.",
        """\
message:
  type: location
  location:
    latitude: -23.5614         # decimal degrees, -90 to 90
    longitude: -46.6559        # decimal degrees, -180 to 180
    name: Loja Exemplo Paulista
    address: Av. Paulista, 1000 - Bela Vista, São Paulo - SP   # shown only with a name
""",
        {},
    ),
    "image": (
        "An image with a caption.",
        """\
message:
  type: image
  image:
    link: https://example.com/promo.jpg   # JPEG or PNG up to 5 MB; or id: of media uploaded earlier
    caption: "[name], a promoção da semana chegou!"   # up to 1024 characters
""",
        {},
    ),
    "audio": (
        "An audio message (no caption).",
        """\
message:
  type: audio
  audio:
    link: https://example.com/boas-vindas.mp3   # aac, amr, mp3, m4a or ogg up to 16 MB; or id:
""",
        {},
    ),
    "video": (
        "A video with a caption.",
        """\
message:
  type: video
  video:
    link: https://example.com/lancamento.mp4   # MP4 or 3GP up to 16 MB; or id: of uploaded media
    caption: "[name], veja o lançamento em primeira mão"   # up to 1024 characters
""",
        {},
    ),
    "document": (
        "A document with a caption and the file name customers see.",
        """\
message:
  type: document
  document:
    link: https://example.com/catalogo.pdf   # pdf, docx, xlsx... up to 100 MB; or id:
    filename: catalogo.pdf     # its extension picks the icon
    caption: "[name], aqui está o nosso catálogo"   # up to 1024 characters
""",
        {},
    ),
    "sticker": (
        "A sticker (no caption).",
        """\
message:
  type: sticker
  sticker:
    link: https://example.com/obrigado.webp   # webp, 512x512 px; or id: of media uploaded earlier
""",
        {},
    ),
}


@dataclass(frozen=True)
class Starter:
    """The texts `campaign init` writes: the campaign YAML and its recipients CSV."""

    campaign: str
    recipients: str


def starter(kind: str, campaign_path: Path) -> Starter:
    """The starter of KIND (a message type) to be written at CAMPAIGN_PATH, CSV beside it."""
    description, message, extra_columns = _MESSAGES[kind]
    csv_path = recipients_path(campaign_path)
    fills = {
        "@SCHEMA@": schema_reference(campaign_path),
        "@TYPE@": kind,
        "@FILE@": campaign_path.name,
        "@NAME@": campaign_slug(campaign_path.stem, kind),
        "@DESCRIPTION@": description,
        "@CSV@": csv_path.name,
    }
    text = _HEAD
    for token, value in fills.items():
        text = text.replace(token, value)
    return Starter(text + message, _csv(extra_columns))


def write_starter(kind: str, campaign_path: Path, force: bool = False) -> tuple[Path, Path]:
    """Write the starter of KIND at CAMPAIGN_PATH and its CSV beside it.

    Refuses to overwrite a file without FORCE, and never writes through a symbolic link;
    a file it cannot write is a `CampaignInvalid` naming it, and leaves nothing half-written.
    """
    csv_path = recipients_path(campaign_path)
    targets = (campaign_path, csv_path)
    refusals = [problem for problem in (_refusal(path, force) for path in targets) if problem]
    if refusals:
        raise CampaignInvalid(refusals)
    texts = starter(kind, campaign_path)
    try:
        campaign_path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise CampaignInvalid(_not_a_folder(campaign_path.parent)) from None
    except OSError as error:
        raise _cannot_write(campaign_path.parent, "cannot create this folder", error) from None
    created: list[Path] = []
    for path, text in zip(targets, (texts.campaign, texts.recipients), strict=True):
        try:
            if _write(path, text, force):
                created.append(path)
        except OSError as error:
            for done in created:  # a starter is both files or neither
                done.unlink(missing_ok=True)
            raise _cannot_write(path, "cannot write", error) from None
    return campaign_path, csv_path


def _refusal(path: Path, force: bool) -> Problem | None:
    """Why PATH may not be written, or None."""
    if path.is_symlink():
        return Problem(str(path), None, None, "is a symbolic link; nothing is written through one")
    if not path.exists():
        return None
    if path.is_dir():
        return Problem(str(path), None, None, "is a folder; choose a file name with --output")
    if not force:
        return Problem(
            str(path),
            None,
            None,
            "already exists; choose another --output or add --force to overwrite it",
        )
    if not path.is_file():
        return Problem(str(path), None, None, "is not a regular file; it is not overwritten")
    return None


def _write(path: Path, text: str, force: bool) -> bool:
    """Write TEXT to PATH, never following a symbolic link; True when PATH is a new file."""
    existed = force and path.exists()
    flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    flags |= os.O_TRUNC if force else os.O_EXCL  # O_EXCL: a file or link that appeared: refused
    with os.fdopen(os.open(path, flags, 0o666), "w", encoding="utf-8") as handle:
        handle.write(text)
    return not existed


def _not_a_folder(path: Path) -> Problem:
    """A Problem saying which part of PATH is a file where a folder is needed."""
    while path.parent != path and not path.exists():
        path = path.parent
    return Problem(str(path), None, None, "is a file, not a folder; choose another --output")


def _cannot_write(path: Path, what: str, error: OSError) -> CampaignInvalid:
    reason = error.strerror or str(error)
    return CampaignInvalid(Problem(str(path), None, None, f"{what}: {reason}"))


def recipients_path(campaign_path: Path) -> Path:
    """The sample CSV written beside a starter campaign: same name, ending in .csv."""
    return campaign_path.with_suffix(".csv")


def campaign_slug(text: str, fallback: str) -> str:
    """TEXT as a campaign name (lower-case letters, digits, - and _), else FALLBACK."""
    slug = re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-_")[:64]
    return slug or fallback


def schema_reference(campaign_path: Path) -> str:
    """Where an editor finds the campaign schema: relative inside the project, else a file URI."""
    schema = (schemas.schema_dir() / "campaign.schema.json").resolve()
    folder = campaign_path.parent.resolve()
    if folder.is_relative_to(schema.parent.parent):
        return Path(os.path.relpath(schema, folder)).as_posix()
    return schema.as_uri()


def _csv(extra_columns: dict[str, list[str]]) -> str:
    lines = [",".join(["phone", "name", *extra_columns])]
    for i, (phone, name) in enumerate(_RECIPIENTS):
        lines.append(",".join([phone, name, *(values[i] for values in extra_columns.values())]))
    return "\n".join(lines) + "\n"
