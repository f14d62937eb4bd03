"""Validate stage: JSON Schemas for campaigns and message bodies, with errors a person can act on.

The schema files live in `schemas/` at the top of the project; the wheel ships them inside
the package as `campaign_runner/schemas/`. Validators are compiled once per process.
"""

from __future__ import annotations

import difflib
import functools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MESSAGE_TYPES = (
    "text",
    "template",
    "interactive",
    "contacts",
    "location",
    "image",
    "audio",
    "video",
    "document",
    "sticker",
)
_PACKAGED = Path(__file__).parent / "schemas"
_SOURCE_TREE = Path(__file__).parent.parent / "schemas"


@dataclass(frozen=True)
class SchemaIssue:
    """One schema violation: where in the document (a path of keys and indexes), and what."""

    path: tuple[str | int, ...]
    message: str

    @property
    def dotted(self) -> str:
        """The path as people write it: `template.components[0].index`."""
        out = ""
        for part in self.path:
            out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
        return out or "(top level)"

    def __str__(self) -> str:
        return f"{self.dotted}: {self.message}"


def schema_dir() -> Path:
    """The folder holding the schema files, installed or in a source checkout."""
    return _PACKAGED if _PACKAGED.is_dir() else _SOURCE_TREE


def schema_names() -> list[str]:
    """Every schema `campaign schema NAME` can print: campaign, message and the ten types."""
    return ["campaign", "message", *MESSAGE_TYPES]


@functools.cache
def load_schema(name: str) -> dict[str, Any]:
    """The schema called NAME (`text`, `message`, `campaign`...), as parsed JSON."""
    if name not in schema_names():
        raise KeyError(name)
    return json.loads((schema_dir() / f"{name}.schema.json").read_text(encoding="utf-8"))


@functools.cache
def _registry():
    from referencing import Registry, Resource

    resources = []
    for name in schema_names():
        schema = load_schema(name)
        resources.append((schema.get("$id", f"{name}.schema.json"), Resource.from_contents(schema)))
    return Registry().with_resources(resources)


@functools.cache
def validator(name: str):
    """A compiled Draft 2020-12 validator for schema NAME (built once per process)."""
    from jsonschema import Draft202012Validator

    return Draft202012Validator(load_schema(name), registry=_registry())


@functools.cache
def fast_validator(name: str):
    """The same schema compiled by jsonschema-rs (Rust): about 500 times faster on good bodies.

    Used only to say yes quickly; every no is explained by `check`, and a no from either
    validator keeps a message from being sent. None when jsonschema-rs is not installed.
    """
    try:
        import jsonschema_rs
    except ImportError:  # pragma: no cover - it is a dependency; this keeps a broken wheel usable
        return None
    base = "file:///campaign-runner/schemas/"  # the Rust resolver wants absolute URIs
    registry = jsonschema_rs.Registry(
        [(f"{base}{n}.schema.json", load_schema(n)) for n in schema_names()]
    )
    return jsonschema_rs.Draft202012Validator(
        load_schema(name), registry=registry, base_uri=f"{base}{name}.schema.json"
    )


def check(document: Any, schema: str = "message") -> list[SchemaIssue]:
    """Every problem with DOCUMENT under SCHEMA, plus the rules JSON Schema cannot say."""
    issues = [_explain(error) for error in _leaf_errors(validator(schema).iter_errors(document))]
    if schema == "message" and isinstance(document, dict):
        issues += message_rules(document)
    elif schema in MESSAGE_TYPES and isinstance(document, dict):
        issues += message_rules({"type": schema, schema: document}, prefix=False)
    fast = fast_validator(schema)
    if not issues and fast is not None and not fast.is_valid(document):
        # The two validators disagree (a regex dialect?): refuse rather than guess.
        error = next(iter(fast.iter_errors(document)), None)
        issues.append(
            SchemaIssue(
                tuple(getattr(error, "instance_path", ()) or ()),
                getattr(error, "message", "rejected by the schema"),
            )
        )
    return _dedupe(issues)


def is_valid(document: Any, schema: str = "message") -> bool:
    """True when DOCUMENT has no problem under SCHEMA (the fast path for good bodies)."""
    fast = fast_validator(schema)
    valid = fast.is_valid(document) if fast is not None else validator(schema).is_valid(document)
    return valid and (schema != "message" or not message_rules(document))


def _leaf_errors(errors):
    """Descend into oneOf/anyOf failures to the error that best explains each one."""
    from jsonschema.exceptions import best_match

    for error in errors:
        if error.validator in ("oneOf", "anyOf") and error.context and not _is_exclusive(error):
            yield best_match(error.context)
        else:
            yield error


def _is_exclusive(error) -> bool:
    """A oneOf/anyOf whose branches only say which keys are required (id XOR link)."""
    return all(set(branch) <= {"required", "not"} for branch in error.validator_value)


def _explain(error) -> SchemaIssue:
    path = tuple(error.absolute_path)
    kind, value, instance = error.validator, error.validator_value, error.instance
    if kind == "additionalProperties" and isinstance(instance, dict):
        allowed = sorted(error.schema.get("properties", {}))
        extras = [key for key in instance if key not in allowed]
        key = extras[0] if extras else "?"
        return SchemaIssue((*path, key), _unknown_key(key, allowed))
    if kind == "required":
        missing = [key for key in value if key not in instance]
        return SchemaIssue(path, f"required key '{missing[0] if missing else value[0]}' is missing")
    if kind in ("enum", "const"):
        allowed = value if kind == "enum" else [value]
        message = f"{json.dumps(instance)} is not allowed; expected {_one_of(allowed)}"
        close = difflib.get_close_matches(
            str(instance), [str(a) for a in allowed], n=1, cutoff=0.75
        )
        if close and isinstance(instance, str):
            message += f" (did you mean '{close[0]}'?)"
        return SchemaIssue(path, message)
    if kind == "maxLength":
        return SchemaIssue(path, f"is {len(instance)} characters long; at most {value} allowed")
    if kind == "minLength":
        return SchemaIssue(
            path, "must not be empty" if value == 1 else f"needs at least {value} characters"
        )
    if kind == "maxItems":
        return SchemaIssue(path, f"has {len(instance)} items; at most {value} allowed")
    if kind == "minItems":
        return SchemaIssue(path, f"needs at least {value} item{'s' if value > 1 else ''}")
    if kind == "type" and value == "null":
        return SchemaIssue(path, "is not used by this kind of message (leave it out)")
    if kind == "type":
        wanted = value if isinstance(value, str) else " or ".join(value)
        return SchemaIssue(path, f"{json.dumps(instance)[:60]} is not of type {wanted}")
    if kind == "pattern":
        hint = error.schema.get("description", f"must match {value}")
        return SchemaIssue(path, f"{json.dumps(instance)[:80]} is not valid: {hint}")
    if kind in ("oneOf", "anyOf") and _is_exclusive(error):
        keys = sorted({key for branch in value for key in branch.get("required", [])})
        amount = "exactly one" if kind == "oneOf" else "at least one"
        return SchemaIssue(path, f"needs {amount} of {_one_of(keys)}")
    if kind == "not" and isinstance(value, dict) and "required" in value:
        return SchemaIssue(path, f"must not have {_one_of(value['required'])} here")
    description = error.schema.get("description") if isinstance(error.schema, dict) else None
    if kind == "false" or error.schema is False:
        return SchemaIssue(path, "is not allowed here")
    message = error.message if not description else f"{error.message} ({description})"
    return SchemaIssue(path, message)


def _unknown_key(key: str, allowed: list[str]) -> str:
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    if close:
        return f"unknown key '{key}' (did you mean '{close[0]}'?)"
    return f"unknown key '{key}'; allowed here: {', '.join(allowed) or 'none'}"


def _one_of(values) -> str:
    quoted = [f"'{v}'" for v in values]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


def _dedupe(issues: list[SchemaIssue]) -> list[SchemaIssue]:
    # A misspelt required key yields "did you mean 'body'" and "'body' is missing": keep the first.
    meant = {
        (issue.path[:-1], issue.message.split("did you mean '")[1].rstrip("'?)"))
        for issue in issues
        if "did you mean '" in issue.message and issue.message.startswith("unknown key")
    }
    seen: set[tuple] = set()
    out = []
    for issue in issues:
        key = (issue.path, issue.message)
        if issue.message.startswith("required key '"):
            missing = issue.message.split("'")[1]
            if (issue.path, missing) in meant:
                continue
        if key not in seen:
            seen.add(key)
            out.append(issue)
    return out


# ---- rules JSON Schema cannot say ---------------------------------------------------------


def message_rules(body: dict, prefix: bool = True) -> list[SchemaIssue]:
    """Cross-field rules: the type object matches `type`, unique button ids, 10 list rows..."""
    issues: list[SchemaIssue] = []
    kind = body.get("type")
    if not isinstance(kind, str) or kind not in MESSAGE_TYPES:
        return issues
    for other in MESSAGE_TYPES:
        if other != kind and other in body:
            issues.append(SchemaIssue((other,), f"'{other}' given but type is '{kind}'"))
    content = body.get(kind)
    if content is None:
        issues.append(SchemaIssue((kind,), f"type is '{kind}' but there is no '{kind}' object"))
        return issues
    base: tuple = (kind,) if prefix else ()
    if kind == "interactive" and isinstance(content, dict):
        issues += _interactive_rules(content, base)
    elif kind == "location" and isinstance(content, dict):
        issues += _coordinate_rules(content, base)
    return issues


def _interactive_rules(interactive: dict, base: tuple) -> list[SchemaIssue]:
    issues = []
    action = interactive.get("action")
    if not isinstance(action, dict):
        return issues
    buttons = action.get("buttons")
    if isinstance(buttons, list):
        for field in ("id", "title"):
            issues += _duplicates(
                [
                    ((*base, "action", "buttons", i, "reply", field), b["reply"].get(field))
                    for i, b in enumerate(buttons)
                    if isinstance(b, dict) and isinstance(b.get("reply"), dict)
                ],
                f"reply button {field}",
            )
    sections = action.get("sections")
    if isinstance(sections, list) and interactive.get("type") in ("list", "product_list"):
        rows_key, limit = (
            ("rows", 10) if interactive.get("type") == "list" else ("product_items", 30)
        )
        entries = [
            ((*base, "action", "sections", s, rows_key, r), row)
            for s, section in enumerate(sections)
            if isinstance(section, dict) and isinstance(section.get(rows_key), list)
            for r, row in enumerate(section[rows_key])
        ]
        if len(entries) > limit:
            issues.append(
                SchemaIssue(
                    (*base, "action", "sections"),
                    f"has {len(entries)} {rows_key.replace('_', ' ')} across all sections; "
                    f"at most {limit} allowed",
                )
            )
        if rows_key == "rows":
            issues += _duplicates(
                [((*path, "id"), row.get("id")) for path, row in entries if isinstance(row, dict)],
                "list row id",
            )
    return issues


def _duplicates(entries, what: str) -> list[SchemaIssue]:
    seen: dict = {}
    issues = []
    for path, value in entries:
        if value is None:
            continue
        if value in seen:
            issues.append(
                SchemaIssue(path, f"{what} {json.dumps(value)} is used twice; it must be unique")
            )
        seen.setdefault(value, path)
    return issues


def _coordinate_rules(location: dict, base: tuple) -> list[SchemaIssue]:
    issues = []
    for key, limit in (("latitude", 90), ("longitude", 180)):
        value = location.get(key)
        if isinstance(value, bool) or value is None:
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue  # the schema already says it is not a number
        if not math.isfinite(number) or abs(number) > limit:
            issues.append(SchemaIssue((*base, key), f"{value} is out of range -{limit}..{limit}"))
    return issues
