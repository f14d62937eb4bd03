"""Validate stage: JSON Schemas for campaigns and message bodies, with errors a person can act on.

The schema files live in `schemas/` at the top of the project; the wheel ships them inside
the package as `campaign_runner/schemas/`. Validators are compiled once per process.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from campaign_runner.suggest import closest, did_you_mean

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError

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
UNKNOWN_KEY = "additionalProperties"  # the keyword of an issue about a key the schema lacks
TOP_LEVEL = "(top level)"  # how an empty path is shown
_PACKAGED = Path(__file__).parent / "schemas"
_SOURCE_TREE = Path(__file__).parent.parent / "schemas"


@dataclass(frozen=True)
class SchemaIssue:
    """One schema violation: where (a path of keys and indexes), what to say, and which rule.

    `keyword` is the JSON Schema keyword that failed (`required`, `maxLength`...) or the name
    of one of the rules in `message_rules`; decisions read it, never the message. `key` is the
    unknown or missing key, `suggestion` the known word a misspelt one is close to. Two issues
    are equal when they say the same thing at the same place: the message already tells why.
    """

    path: tuple[str | int, ...]
    message: str
    keyword: str = field(default="", compare=False)
    key: str | None = field(default=None, compare=False)
    suggestion: str | None = field(default=None, compare=False)
    # A length or count rule's measure: the value's size and the schema's limit (maxLength...).
    size: int | None = field(default=None, compare=False)
    limit: int | None = field(default=None, compare=False)

    @property
    def dotted(self) -> str:
        """The path as people write it: `template.components[0].index`."""
        return dotted(self.path)

    @property
    def place(self) -> str:
        """The path dotted and, through lists, in plain words too (see `place`)."""
        return place(self.path)

    def __str__(self) -> str:
        return f"{self.place}: {self.message}"


def dotted(path: Iterable[str | int]) -> str:
    """PATH as people write it: `template.components[0].index`, or `(top level)` when empty."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or TOP_LEVEL


def place(path: Iterable[str | int]) -> str:
    """PATH dotted, then in plain words where it goes through lists:
    `buttons[2].reply.title (the 3rd button's title)`."""
    parts = tuple(path)
    words = plain_words(parts)
    return f"{dotted(parts)} ({words})" if words else dotted(parts)


def plain_words(path: Iterable[str | int]) -> str | None:
    """A path through lists as people say it: `buttons[2].reply.title` is "the 3rd button's
    title"; None when the path has no list index (the dotted form already reads plainly)."""
    parts = list(path)
    owners: list[str] = []
    for at, part in enumerate(parts):
        if isinstance(part, int) and at > 0 and isinstance(parts[at - 1], str):
            owners.append(f"{ordinal(part + 1)} {_singular(str(parts[at - 1]))}")
    if not owners:
        return None
    last = parts[-1]
    said = "'s ".join(owners)
    return f"the {said}'s {str(last).replace('_', ' ')}" if isinstance(last, str) else f"the {said}"


def ordinal(number: int) -> str:
    """1st, 2nd, 3rd, 4th, 11th, 21st..."""
    if 10 <= number % 100 <= 20:
        return f"{number}th"
    return f"{number}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(number % 10, 'th') }"


def _singular(name: str) -> str:
    words = name.replace("_", " ")
    if words.endswith("ies"):
        return words[:-3] + "y"
    if words.endswith(("sses", "shes", "ches", "xes")):
        return words[:-2]
    return words[:-1] if words.endswith("s") else words


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
                "fastValidator",
            )
        )
    return _dedupe(issues)


def is_valid(document: Any, schema: str = "message") -> bool:
    """True when DOCUMENT has no problem under SCHEMA (the fast path for good bodies)."""
    fast = fast_validator(schema)
    valid = fast.is_valid(document) if fast is not None else validator(schema).is_valid(document)
    return valid and (schema != "message" or not message_rules(document))


def _leaf_errors(errors: Iterable[ValidationError]) -> Iterator[ValidationError]:
    """Descend into oneOf/anyOf failures to the error that best explains each one."""
    from jsonschema.exceptions import best_match

    for error in errors:
        if (
            error.validator in ("oneOf", "anyOf")
            and error.context
            and not _only_required_keys(error.validator_value)
        ):
            yield best_match(error.context)
        else:
            yield error


def _only_required_keys(branches: Any) -> bool:
    """The branches of a oneOf/anyOf only say which keys are required (id XOR link)."""
    return all(set(branch) <= {"required", "not"} for branch in branches)


# ---- one explainer per JSON Schema keyword --------------------------------------------------
#
# Each turns a failed keyword into the sentence a marketer can act on; one that returns None
# leaves it to jsonschema's own words.

_Path = tuple[str | int, ...]


@dataclass(frozen=True)
class _Failure:
    """One failed keyword as jsonschema reports it, reduced to what the explainers read."""

    keyword: str
    value: Any  # the keyword's value in the schema: 24 for `maxLength: 24`
    instance: Any  # the document's value that failed
    schema: Mapping[str, Any]  # the subschema holding the keyword
    message: str  # jsonschema's own words
    path: _Path

    @classmethod
    def of(cls, error: ValidationError) -> _Failure:
        """The failure ERROR reports (yielded by a validator, so every field is set)."""
        schema = error.schema if isinstance(error.schema, Mapping) else {}
        return cls(
            str(error.validator),
            error.validator_value,
            error.instance,
            schema,
            error.message,
            tuple(error.absolute_path),
        )


def _explain(error: ValidationError) -> SchemaIssue:
    if error.schema is False:
        return SchemaIssue(tuple(error.absolute_path), "is not allowed here", "false")
    failure = _Failure.of(error)
    explainer = _EXPLAINERS.get(failure.keyword)
    issue = explainer(failure) if explainer else None
    return issue or _in_jsonschema_words(failure)


def _unknown_key(failure: _Failure) -> SchemaIssue | None:
    if not isinstance(failure.instance, dict):
        return None
    allowed = sorted(failure.schema.get("properties", {}))
    extras = [key for key in failure.instance if key not in allowed]
    key = extras[0] if extras else "?"
    meant = closest(key, allowed)
    if meant:
        message = f"unknown key '{key}'" + did_you_mean(key, allowed)
    else:
        message = f"unknown key '{key}'; allowed here: {', '.join(allowed) or 'none'}"
    return SchemaIssue((*failure.path, key), message, UNKNOWN_KEY, key, meant)


def _required(failure: _Failure) -> SchemaIssue:
    missing = [key for key in failure.value if key not in failure.instance]
    key = missing[0] if missing else failure.value[0]
    return SchemaIssue(failure.path, f"required key '{key}' is missing", "required", key)


def _not_allowed_value(failure: _Failure) -> SchemaIssue:
    instance = failure.instance
    allowed = failure.value if failure.keyword == "enum" else [failure.value]
    message = f"{json.dumps(instance)} is not allowed; expected {_one_of(allowed)}"
    meant = None
    if isinstance(instance, str):
        words = [str(a) for a in allowed]
        meant = closest(instance, words, cutoff=0.75)
        message += did_you_mean(instance, words, cutoff=0.75)
    return SchemaIssue(failure.path, message, failure.keyword, suggestion=meant)


def _max_length(failure: _Failure) -> SchemaIssue:
    length, most = len(failure.instance), failure.value
    message = f"is {length} characters long; at most {most} allowed"
    return SchemaIssue(failure.path, message, "maxLength", size=length, limit=most)


def _min_length(failure: _Failure) -> SchemaIssue:
    least = failure.value
    message = "must not be empty" if least == 1 else f"needs at least {least} characters"
    return SchemaIssue(failure.path, message, "minLength")


def _max_items(failure: _Failure) -> SchemaIssue:
    count, most = len(failure.instance), failure.value
    message = f"has {count} items; at most {most} allowed"
    return SchemaIssue(failure.path, message, "maxItems", size=count, limit=most)


def _min_items(failure: _Failure) -> SchemaIssue:
    least = failure.value
    message = f"needs at least {least} item{'s' if least > 1 else ''}"
    return SchemaIssue(failure.path, message, "minItems")


def _wrong_type(failure: _Failure) -> SchemaIssue:
    if failure.value == "null":
        message = "is not used by this kind of message (leave it out)"
        return SchemaIssue(failure.path, message, "type")
    wanted = failure.value if isinstance(failure.value, str) else " or ".join(failure.value)
    if failure.instance is None and wanted in ("object", "array"):
        # `send:` with every setting under it commented out reads as null in YAML.
        message = (
            "is empty (are all the settings under it commented out?): "
            "uncomment one, or delete this line"
        )
        return SchemaIssue(failure.path, message, "type")
    message = f"{json.dumps(failure.instance)[:60]} is not of type {wanted}"
    return SchemaIssue(failure.path, message, "type")


def _no_match(failure: _Failure) -> SchemaIssue:
    hint = failure.schema.get("description", f"must match {failure.value}")
    message = f"{json.dumps(failure.instance)[:80]} is not valid: {hint}"
    return SchemaIssue(failure.path, message, "pattern")


def _exclusive_keys(failure: _Failure) -> SchemaIssue | None:
    if not _only_required_keys(failure.value):
        return None
    keys = sorted({key for branch in failure.value for key in branch.get("required", [])})
    amount = "exactly one" if failure.keyword == "oneOf" else "at least one"
    return SchemaIssue(failure.path, f"needs {amount} of {_one_of(keys)}", failure.keyword)


def _forbidden_keys(failure: _Failure) -> SchemaIssue | None:
    if not (isinstance(failure.value, dict) and "required" in failure.value):
        return None
    message = f"must not have {_one_of(failure.value['required'])} here"
    return SchemaIssue(failure.path, message, "not")


def _in_jsonschema_words(failure: _Failure) -> SchemaIssue:
    description = failure.schema.get("description")
    message = f"{failure.message} ({description})" if description else failure.message
    return SchemaIssue(failure.path, message, failure.keyword)


_EXPLAINERS: dict[str, Callable[[_Failure], SchemaIssue | None]] = {
    UNKNOWN_KEY: _unknown_key,
    "required": _required,
    "enum": _not_allowed_value,
    "const": _not_allowed_value,
    "maxLength": _max_length,
    "minLength": _min_length,
    "maxItems": _max_items,
    "minItems": _min_items,
    "type": _wrong_type,
    "pattern": _no_match,
    "oneOf": _exclusive_keys,
    "anyOf": _exclusive_keys,
    "not": _forbidden_keys,
}


def _one_of(values: Iterable[object]) -> str:
    quoted = [f"'{v}'" for v in values]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


def _dedupe(issues: list[SchemaIssue]) -> list[SchemaIssue]:
    """Drop repeats, and "'body' is missing" when a misspelt key already asks "did you mean"."""
    meant = {
        (issue.path[:-1], issue.suggestion)
        for issue in issues
        if issue.keyword == UNKNOWN_KEY and issue.suggestion
    }
    seen: set[tuple] = set()
    out = []
    for issue in issues:
        if issue.keyword == "required" and (issue.path, issue.key) in meant:
            continue
        said = (issue.path, issue.message)
        if said not in seen:
            seen.add(said)
            out.append(issue)
    return out


# ---- rules JSON Schema cannot say ---------------------------------------------------------


def message_rules(body: dict, prefix: bool = True) -> list[SchemaIssue]:
    """Cross-field rules: the type object matches `type`, unique button ids, 10 list rows...

    Their keywords: otherTypeObject, missingTypeObject, uniqueValues, maxTotalItems and
    coordinateRange.
    """
    issues: list[SchemaIssue] = []
    kind = body.get("type")
    if not isinstance(kind, str) or kind not in MESSAGE_TYPES:
        return issues
    for other in MESSAGE_TYPES:
        if other != kind and other in body:
            issues.append(
                SchemaIssue((other,), f"'{other}' given but type is '{kind}'", "otherTypeObject")
            )
    content = body.get(kind)
    if content is None:
        issues.append(
            SchemaIssue(
                (kind,), f"type is '{kind}' but there is no '{kind}' object", "missingTypeObject"
            )
        )
        return issues
    base: tuple = (kind,) if prefix else ()
    if kind == "interactive" and isinstance(content, dict):
        issues += _interactive_rules(content, base)
    elif kind == "location" and isinstance(content, dict):
        issues += _coordinate_rules(content, base)
    return issues


def _interactive_rules(interactive: dict, base: tuple) -> list[SchemaIssue]:
    action = interactive.get("action")
    if not isinstance(action, dict):
        return []
    issues: list[SchemaIssue] = []
    buttons = action.get("buttons")
    if isinstance(buttons, list):
        issues += _reply_button_rules(buttons, (*base, "action", "buttons"))
    sections = action.get("sections")
    if isinstance(sections, list) and interactive.get("type") in ("list", "product_list"):
        issues += _section_rules(sections, interactive["type"], (*base, "action", "sections"))
    return issues


def _reply_button_rules(buttons: list, base: tuple) -> list[SchemaIssue]:
    """Reply buttons need distinct ids and distinct titles."""
    issues: list[SchemaIssue] = []
    for part in ("id", "title"):
        issues += _duplicates(
            [
                ((*base, i, "reply", part), b["reply"].get(part))
                for i, b in enumerate(buttons)
                if isinstance(b, dict) and isinstance(b.get("reply"), dict)
            ],
            f"reply button {part}",
        )
    return issues


def _section_rules(sections: list, kind: str, base: tuple) -> list[SchemaIssue]:
    """A list has at most 10 rows in all, with distinct ids; a product list 30 items."""
    rows_key, limit = ("rows", 10) if kind == "list" else ("product_items", 30)
    entries = [
        ((*base, s, rows_key, r), row)
        for s, section in enumerate(sections)
        if isinstance(section, dict) and isinstance(section.get(rows_key), list)
        for r, row in enumerate(section[rows_key])
    ]
    issues: list[SchemaIssue] = []
    if len(entries) > limit:
        issues.append(
            SchemaIssue(
                base,
                f"has {len(entries)} {rows_key.replace('_', ' ')} across all sections; "
                f"at most {limit} allowed",
                "maxTotalItems",
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
                SchemaIssue(
                    path,
                    f"{what} {json.dumps(value)} is used twice; it must be unique",
                    "uniqueValues",
                )
            )
        seen.setdefault(value, path)
    return issues


def _coordinate_rules(location: dict, base: tuple) -> list[SchemaIssue]:
    issues: list[SchemaIssue] = []
    for key, limit in (("latitude", 90), ("longitude", 180)):
        value = location.get(key)
        if isinstance(value, bool) or value is None:
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue  # the schema already says it is not a number
        if not math.isfinite(number) or abs(number) > limit:
            issues.append(
                SchemaIssue(
                    (*base, key), f"{value} is out of range -{limit}..{limit}", "coordinateRange"
                )
            )
    return issues
