"""Campaign files from anyone: templates read the CSV's columns and nothing else, and no
template or YAML file can take the machine down, print Python internals or reach the terminal raw.

Every bad file is a located error (`FILE:LINE:COL: ...`), exit 2, nothing sent, within seconds.
"""

from __future__ import annotations

import os
import resource
import time

import pytest
from helpers import campaign_process, cli, env_for, read_report, without_final_line

ROWS = "phone,name\n+5511948489500,Ana\n"
BODY_AT = ":11:11:"  # where `body:`'s value starts in the file `campaign` writes


def campaign(folder, body: str, rows: str = ROWS, url: str = "http://127.0.0.1:9/api/Messages"):
    """campaign.yaml with a text message whose body is the template BODY, and its CSV."""
    (folder / "recipients.csv").write_text(rows, encoding="utf-8")
    quoted = "'" + body.replace("'", "''") + "'"
    path = folder / "campaign.yaml"
    path.write_text(
        "name: hostile\nrecipients:\n  file: recipients.csv\n  default_region: BR\n"
        f"gateway:\n  apikey_env: TEST_CAMPAIGN_APIKEY\n  url: {url}\n"
        f"message:\n  type: text\n  text:\n    body: {quoted}\n",
        encoding="utf-8",
    )
    return path


def run(path, tmp_path):
    started = time.monotonic()
    result = cli(["run", path, "--report", tmp_path / "r.csv"], env=env_for(tmp_path))
    return without_final_line(result), time.monotonic() - started


def refused(tmp_path, sandbox, body: str, rows: str = ROWS) -> str:
    """Run BODY against the sandbox: exit 2, nothing sent, no report, quick; the output."""
    path = campaign(tmp_path, body, rows, sandbox.messages_url)
    result, seconds = run(path, tmp_path)
    assert result.exit_code == 2, result.output
    assert sandbox.messages() == []
    assert not (tmp_path / "r.csv").exists()
    assert seconds < 3, f"took {seconds:.1f} s"
    return result.output.replace(str(path), "FILE")


def sent(tmp_path, sandbox, body: str, rows: str = ROWS) -> list[str]:
    path = campaign(tmp_path, body, rows, sandbox.messages_url)
    result, _ = run(path, tmp_path)
    assert result.exit_code == 0, result.output
    return [m["body"]["text"]["body"] for m in sandbox.messages()]


# ---- 1. the namespace is the CSV's columns ----------------------------------------------


@pytest.mark.parametrize(
    ("body", "name"),
    [
        ("Oi [row]", "row"),
        ("Oi [self]", "self"),
        ("Oi [lipsum]", "lipsum"),
        ("Oi [range]", "range"),
        ("Oi [dict]", "dict"),
        ("Oi {{ row }}", "row"),
        ("Oi {{ self }}", "self"),
        ("Oi {{ loop }}", "loop"),
        ("Oi {{ cycler }}", "cycler"),
        ("Oi {{ joiner }}", "joiner"),
        ("Oi {{ varargs }}", "varargs"),
        ("Oi {{ caller }}", "caller"),
        ('Oi {{ row["self"] }}', "self"),
    ],
)
def test_a_name_that_is_not_a_column_is_the_located_no_column_error(body, name, tmp_path, sandbox):
    output = refused(tmp_path, sandbox, body)
    csv = tmp_path / "recipients.csv"
    assert output.strip() == (
        f"FILE{BODY_AT} placeholder '{name}' names no column of {csv}; the columns are: phone, name"
    )


def test_columns_named_like_jinja_names_or_keywords_are_just_columns(tmp_path, sandbox):
    rows = (
        "phone,row,range,self,loop,none,true,in,items,target url\n+5511948489500,R,G,S,L,N,T,I,,U\n"
    )
    body = (
        '[row] [range] {{ self }} {{ loop }} [none] [true] [in] {{ row["target url"] }} '
        "{{ items | default('-') }} {{ row['row'] }}"
    )
    assert sent(tmp_path, sandbox, body, rows) == ["R G S L N T I U - R"]


def test_a_blank_column_named_like_a_dict_method_is_blank_not_a_method(tmp_path, sandbox):
    rows = "phone,items,name\n+5511948489500,,Ana\n"
    path = campaign(tmp_path, "Oi [name] {{ items }}", rows, sandbox.messages_url)
    result, _ = run(path, tmp_path)
    assert result.exit_code == 1
    assert sandbox.messages() == []
    [row] = read_report(tmp_path / "r.csv")
    assert row["status"] == "invalid"
    assert row["error"] == "text.body: column 'items' is blank for this recipient"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{{ lipsum(10**6) }}", "campaign templates cannot use calling a function or method"),
        ("{{ name.upper() }}", "campaign templates cannot use calling a function or method"),
        ("{{ name.__class__ }}", "campaign templates cannot use attributes, as in name.something"),
        ("{% set x = name %}{{ x }}", "campaign templates cannot use variables ({% set %})"),
        ("{% include 'x' %}", "campaign templates cannot use other templates ({% include %})"),
        ("{% extends 'x' %}", "campaign templates cannot use other templates ({% extends %})"),
        ("{{ {'a': name} }}", "campaign templates cannot use dictionaries"),
        ("{{ [name, name] }}", "campaign templates cannot use lists, except after `in`"),
        ("{{ name[0] }}", 'only row["column"] can be indexed in a campaign template'),
        ("{{ row[name] }}", 'only row["column"] can be indexed in a campaign template'),
        ("{{ name | attr('x') }}", "filter 'attr' is not available in a campaign template"),
        ("{{ name is sameas name }}", "test 'sameas' is not available in a campaign template"),
        ("{{ name | upper(*name) }}", "*args and **kwargs cannot be given to filter 'upper'"),
    ],
)
def test_syntax_outside_the_documented_set_is_a_located_error(body, message, tmp_path, sandbox):
    output = refused(tmp_path, sandbox, body)
    assert f"FILE{BODY_AT} {message}" in output


def test_the_allowed_syntax_renders(tmp_path, sandbox):
    rows = "phone,name,city,price\n+5511948489500,ana maria,SP,10\n"
    body = (
        "{{ name | title }}{% if city in ['SP', 'RJ'] %} (sudeste){% elif city %} ({{ city }})"
        "{% else %}{% endif %}: {{ (price | int) * 2 + 1 }} "
        "{{ 'sim' if city is upper else 'não' }} "
        "{{ name | replace('a', 'o') | truncate(5, true, '...', 0) }}"
    )
    assert sent(tmp_path, sandbox, body, rows) == ["Ana Maria (sudeste): 21 sim on..."]


# ---- 2. brackets that are a column written loosely ------------------------------------------


@pytest.mark.parametrize(
    ("columns", "body", "message"),
    [
        (
            "last purchase",
            "Sua compra [last purchase]",
            "[last purchase] would be sent as written, but it looks like the column "
            "'last purchase': write {{ row[\"last purchase\"] }} "
            '(or {{ "[last purchase]" }} to send the brackets)',
        ),
        (
            "first_name",
            "Oi [first name]!",
            "[first name] would be sent as written, but it looks like the column "
            "'first_name': write [first_name]",
        ),
        (
            "nome",
            "Oi [Nome]",
            "placeholder 'Nome' names no column of CSV (the column is 'nome': write [nome])",
        ),
        (
            "Cidade",
            "Em [cidade]",
            "placeholder 'cidade' names no column of CSV (the column is 'Cidade': write [Cidade])",
        ),
        (
            "endereço",
            "Para [endereco]",
            "placeholder 'endereco' names no column of CSV "
            "(the column is 'endereço': write [endereço])",
        ),
        (
            "Data-Nasc",
            "{{ 'x' }} [ data nasc ]",
            "[ data nasc ] would be sent as written, but it looks like the column 'Data-Nasc': "
            "write [Data-Nasc]",
        ),
    ],
)
def test_bracketed_text_that_is_a_column_written_loosely_is_an_error_with_the_fix(
    columns, body, message, tmp_path, sandbox
):
    rows = f"phone,{columns}\n+5511948489500,x\n"
    output = refused(tmp_path, sandbox, body, rows)
    assert f"FILE{BODY_AT} {message}" in output.replace(str(tmp_path / "recipients.csv"), "CSV")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("Veja [50% off!] e [1]", "Veja [50% off!] e [1]"),
        ("{% raw %}[first name]{% endraw %}", "[first name]"),
        ('{{ "[first name]" }} [name]', "[first name] Ana"),
    ],
)
def test_brackets_that_match_no_column_or_are_escaped_stay_text(body, expected, tmp_path, sandbox):
    rows = "phone,name,first_name\n+5511948489500,Ana,A\n"
    assert sent(tmp_path, sandbox, body, rows) == [expected]


# ---- 3. raw blocks, comments and strings stay exactly as written ------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("{% raw %}[name]{% endraw %}", "[name]"),
        ("{% raw %}[name] {{ x }} {% if %}{% endraw %}", "[name] {{ x }} {% if %}"),
        ("a {%- raw -%} [name] {%- endraw -%} b", "a[name]b"),
        ("{% raw %}{% endraw %}[name]{% raw %}[name]{% endraw %}", "Ana[name]"),
        ("{# [name] #}[name]", "Ana"),
        ('{{ "a }}" ~ "[name]" }}', "a }}[name]"),
        ("{{ '[name]' }}", "[name]"),
    ],
)
def test_raw_blocks_comments_and_strings_are_not_rewritten(body, expected, tmp_path, sandbox):
    assert sent(tmp_path, sandbox, body) == [expected]


# ---- 4. templates that would exhaust the machine ---------------------------------------------

HOSTILE_TEMPLATES = {
    "lipsum": ("{{ lipsum(10**6) }}", "campaign templates cannot use calling a function"),
    "range": ("{{ range(10**9) | length }}", "campaign templates cannot use calling a function"),
    "nested loops": (
        "{% for a in name %}{% for b in name %}{% for c in name %}x{% endfor %}{% endfor %}"
        "{% endfor %}",
        "campaign templates cannot use loops ({% for %})",
    ),
    "a huge power": ("{{ 10**(10**8) }}", "the template makes a number of more than 100 digits"),
    "a huge power, folded": ("{{ 2**64**64 }}", "the template makes a number of more than 100"),
    "a huge repetition": (
        "{{ 'a' * 10**9 }}",
        "the template makes a text of 1,000,000,000 characters; at most 100,000 are allowed",
    ),
    "a format filter": (
        '{{ "%0999999999d" | format(1) }}',
        "filter 'format' is not available in a campaign template",
    ),
    "a format operator": (
        '{{ "%0999999999d" % 1 }}',
        "'%' formatting of text is not available; join text with ~",
    ),
    "a recursive macro": (
        "{% macro m() %}{{ m() }}{{ m() }}{% endmacro %}{{ m() }}",
        "campaign templates cannot use macros ({% macro %})",
    ),
    "a huge center": (
        "{{ name | center(10**9) }}",
        "filter 'center' is given 1,000,000,000; at most 100,000 is allowed",
    ),
    "a huge number literal": ("{{ " + "9" * 5000 + " }}", "template error: a number has too"),
    "a deep expression": ("{{ " + "-(" * 300 + "1" + ")" * 300 + " }}", "template error: the"),
    "a long chain": (
        "{{ " + " + ".join(["name"] * 3000) + " }}",
        "the template is nested more than 50 levels deep",
    ),
}


@pytest.mark.parametrize(
    ("body", "message"), HOSTILE_TEMPLATES.values(), ids=HOSTILE_TEMPLATES.keys()
)
def test_a_template_that_would_exhaust_the_machine_is_a_quick_located_error(
    body, message, tmp_path, sandbox
):
    output = refused(tmp_path, sandbox, body)
    assert f"FILE{BODY_AT} {message}" in output


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (
            "{{ name * 60000 }}",
            "text.body: the template makes a text of 18,000,000 characters; "
            "at most 100,000 are allowed",
        ),
        (
            "{{ name | center(90000) }}{{ name | center(90000) }}",
            "text.body: the message would be longer than 100,000 characters",
        ),
        (
            "{{ name | replace('a', name ~ name ~ name ~ name) | replace('a', name) }}",
            "text.body: the template makes a text of",
        ),
        ("{{ (name | int) ** 1000 }}", "text.body: the template makes a number of more than 100"),
    ],
)
def test_a_template_that_only_a_rows_values_make_too_big_makes_that_row_invalid(
    body, reason, tmp_path, sandbox
):
    rows = "phone,name\n+5511948489500,Ana\n+5521987654321," + "a" * 300 + "\n"
    if "int" in body:
        rows = "phone,name\n+5511948489500,2\n+5521987654321," + "9" * 300 + "\n"
    path = campaign(tmp_path, body, rows, sandbox.messages_url)
    result, seconds = run(path, tmp_path)
    assert seconds < 3
    report = read_report(tmp_path / "r.csv")
    assert report[1]["status"] == "invalid"
    assert report[1]["error"].startswith(reason)
    assert len(sandbox.messages()) == (report[0]["status"] == "sent")
    assert result.exit_code == 1


def _limited_memory():
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


def test_a_huge_power_fails_fast_in_bounded_memory_in_its_own_process(tmp_path):
    path = campaign(tmp_path, "{{ 10**(10**8) }}")
    started = time.monotonic()
    done = campaign_process(["validate", path], preexec_fn=_limited_memory)
    seconds = time.monotonic() - started
    assert done.returncode == 2, done.stderr
    assert f"{path}{BODY_AT} the template makes a number of more than 100 digits" in done.stderr
    assert "Traceback" not in done.stderr
    assert seconds < 5, f"took {seconds:.1f} s"


# ---- 5. YAML files that would exhaust the machine or run code ------------------------------

GOOD_HEAD = "name: hostile\nrecipients:\n  file: recipients.csv\n  default_region: BR\n"
GOOD_MESSAGE = "message:\n  type: text\n  text:\n    body: Oi [name]\n"
BILLION_LAUGHS = (
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    + "".join(
        f"{n}: &{n} [{','.join(['*' + p] * 9)}]\n"
        for p, n in zip("abcdefgh", "bcdefghi", strict=True)
    )
    + GOOD_HEAD
    + GOOD_MESSAGE
)


def yaml_campaign(folder, text: str):
    (folder / "recipients.csv").write_text(ROWS, encoding="utf-8")
    path = folder / "campaign.yaml"
    path.write_text(text, encoding="utf-8")
    return path


HOSTILE_YAML = {
    "a billion laughs": (
        BILLION_LAUGHS,
        ":6:4: the campaign holds more than 100,000 values "
        "(counting each use of an alias *name in full)",
    ),
    "too many values": (
        GOOD_HEAD + "x: [" + "0," * 100_001 + "]\n" + GOOD_MESSAGE,
        ":5:199983: the campaign holds more than 100,000 values",
    ),
    "deep nesting": (
        GOOD_HEAD + "x: " + "[" * 500 + "]" * 500 + "\n" + GOOD_MESSAGE,
        ":5:67: lists and mappings nest more than 64 deep",
    ),
    "very deep nesting": (
        GOOD_HEAD + "x: " + "[" * 100_000 + "]" * 100_000 + "\n" + GOOD_MESSAGE,
        ":5:1003: not valid YAML: while increasing flow level exceeded maximum nesting depth",
    ),
    "deep nesting through aliases": (
        "a0: &a0 [x]\n"
        + "".join(f"a{i}: &a{i} [*a{i - 1}]\n" for i in range(1, 100))
        + GOOD_HEAD
        + GOOD_MESSAGE,
        ":64:6: lists and mappings nest more than 64 deep",
    ),
    "a recursive alias": (
        "a: &a [*a]\n" + GOOD_HEAD + GOOD_MESSAGE,
        ":1:4: lists and mappings nest more than 64 deep",
    ),
    "a python tag": (
        GOOD_HEAD + "x: !!python/name:os.system\n" + GOOD_MESSAGE,
        ":5:4: the tag 'tag:yaml.org,2002:python/name:os.system' is not allowed: a campaign "
        "holds only text, numbers, true/false, null, lists and mappings",
    ),
    "a python object tag": (
        GOOD_HEAD + "x: !!python/object/apply:os.system [ls]\n" + GOOD_MESSAGE,
        ":5:4: the tag 'tag:yaml.org,2002:python/object/apply:os.system' is not allowed",
    ),
    "a custom tag": (GOOD_HEAD + "x: !env HOME\n" + GOOD_MESSAGE, ":5:4: the tag '!env'"),
    "a binary tag": (GOOD_HEAD + "x: !!binary aGk=\n" + GOOD_MESSAGE, ":5:4: the tag"),
    "a set": (GOOD_HEAD + "x: !!set {a}\n" + GOOD_MESSAGE, ":5:4: the tag"),
    "a tagged mapping": (GOOD_HEAD + "x: !thing {a: 1}\n" + GOOD_MESSAGE, ":5:4: the tag"),
    "a huge integer": (
        GOOD_HEAD + "send:\n  retries: " + "9" * 5000 + "\n" + GOOD_MESSAGE,
        ":6:12: '9999999999999999999999999999999999999999' is not a valid value",
    ),
    "a list as a key": (
        GOOD_HEAD + "? [a, b]\n: 1\n" + GOOD_MESSAGE,
        ":5:3: a key must be plain text, not a list or a mapping",
    ),
    "a file too large": (
        GOOD_HEAD + GOOD_MESSAGE + ("# " + "x" * 98 + "\n") * 2700,
        ": is larger than 256 KiB",
    ),
    "a million keys": ("".join(f"k{i}: {i}\n" for i in range(1_000_000)), ": is larger than"),
}


@pytest.mark.parametrize(("text", "message"), HOSTILE_YAML.values(), ids=HOSTILE_YAML.keys())
def test_a_hostile_yaml_file_is_a_quick_located_error(text, message, tmp_path):
    path = yaml_campaign(tmp_path, text)
    started = time.monotonic()
    result = cli(["validate", path])
    seconds = time.monotonic() - started
    assert result.exit_code == 2
    assert f"{path}{message}" in result.output, result.output
    assert seconds < 3, f"took {seconds:.1f} s"


def test_a_billion_laughs_sends_nothing_and_fails_fast_in_bounded_memory(tmp_path, sandbox):
    path = yaml_campaign(tmp_path, BILLION_LAUGHS)
    started = time.monotonic()
    done = campaign_process(
        ["run", path, "--sandbox", "--report", tmp_path / "r.csv"],
        env=env_for(tmp_path),
        preexec_fn=_limited_memory,
    )
    seconds = time.monotonic() - started
    assert done.returncode == 2, done.stderr
    assert f"{path}:6:4: the campaign holds more than 100,000 values" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "r.csv").exists()
    assert seconds < 5, f"took {seconds:.1f} s"


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_campaign_that_is_not_a_regular_file_is_refused_without_hanging(kind, tmp_path):
    path = tmp_path / "campaign.yaml"
    if kind == "fifo":
        os.mkfifo(path)  # nobody ever writes to it: reading it would wait forever
    else:
        path = "/dev/zero"  # reading it would fill memory
    started = time.monotonic()
    done = campaign_process(["validate", path])
    assert time.monotonic() - started < 10
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"{path}: is not a regular file (a pipe, a device...): save it first"
    )


# ---- 6. init never writes through a symbolic link, and says what it cannot write ------------


def test_init_through_a_dangling_symlink_writes_nothing(tmp_path):
    target = tmp_path / "elsewhere" / "target.yaml"
    target.parent.mkdir()
    link = tmp_path / "promo.yaml"
    link.symlink_to(target)
    for extra in ([], ["--force"]):
        result = cli(["init", "text", "--output", link, *extra])
        assert result.exit_code == 2
        assert f"{link}: is a symbolic link; nothing is written through one" in result.output
        assert not target.exists() and not (tmp_path / "promo.csv").exists()


def test_init_never_overwrites_through_a_symlinked_csv_even_with_force(tmp_path):
    precious = tmp_path / "precious.csv"
    precious.write_text("keep me\n", encoding="utf-8")
    (tmp_path / "promo.csv").symlink_to(precious)
    result = cli(["init", "text", "--output", tmp_path / "promo.yaml", "--force"])
    assert result.exit_code == 2
    assert f"{tmp_path / 'promo.csv'}: is a symbolic link" in result.output
    assert precious.read_text(encoding="utf-8") == "keep me\n"
    assert not (tmp_path / "promo.yaml").exists()


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ("{tmp}/a-file/promo.yaml", "{tmp}/a-file: is a file, not a folder"),
        ("{tmp}/a-file/deeper/promo.yaml", "{tmp}/a-file: is a file, not a folder"),
        ("{tmp}", "Invalid value for '--output': '{tmp}' is a folder: give a file name"),
    ],
)
def test_init_into_a_place_it_cannot_write_is_a_clear_error(output, message, tmp_path):
    (tmp_path / "a-file").write_text("", encoding="utf-8")
    result = cli(["init", "text", "--output", output.format(tmp=tmp_path)])
    assert result.exit_code == 2
    assert message.format(tmp=tmp_path) in result.output


def test_init_into_an_unwritable_folder_is_a_clear_error():
    done = campaign_process(["init", "text", "--output", "/proc/campaign-test/promo.yaml"])
    assert done.returncode == 2
    assert done.stderr.startswith("/proc/campaign-test: cannot create this folder: ")
    assert "Traceback" not in done.stderr


# ---- 7. values from the campaign file never reach the terminal raw --------------------------


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (GOOD_HEAD + '"k\\e[2J": 1\n"k\\e[2J": 2\n' + GOOD_MESSAGE, "key 'k\\x1b[2J' is given"),
        (
            GOOD_HEAD + 'send:\n  window: "09:00-20:00 \\e]0;pwned\\a"\n' + GOOD_MESSAGE,
            "\\u001b]0;pwned\\u0007",
        ),
        (GOOD_HEAD + '"\\e[31mx": 1\n' + GOOD_MESSAGE, "unknown key '\\x1b[31mx'"),
        (
            # The recipients' header is refused first now (a bidi mark in a column name),
            # and that message too shows the character escaped.
            GOOD_HEAD + 'message:\n  type: text\n  text:\n    body: "[na\\u202eme ]"\n',
            "column 2's name holds a bidi control character U+202E (RIGHT-TO-LEFT OVERRIDE): "
            "'na\\u202eme'",
        ),
    ],
)
def test_control_characters_from_the_campaign_are_shown_escaped(text, shown, tmp_path):
    rows = (
        "phone,name\n+5511948489500,Ana\n"
        if "u202e" not in text
        else "phone,na\u202eme\n+5511948489500,x\n"
    )
    path = yaml_campaign(tmp_path, text)
    (tmp_path / "recipients.csv").write_text(rows, encoding="utf-8")
    result = cli(["validate", path])
    assert result.exit_code == 2
    assert shown in result.output, result.output
    assert (
        "\x1b" not in result.output
        and "\u202e" not in result.output
        and "\x07" not in result.output
    )
