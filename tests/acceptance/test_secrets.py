"""Secrets and the trust model: the campaign file decides what to send, ops decide where the
apikey goes, and no secret is ever printed, reported, journalled or recorded.

Each story feeds a bad gateway section or environment through the real CLI and checks the
located message, the exit code, that the sandbox received nothing, and that the secret in
the bad value shows nowhere.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from helpers import (
    APIKEY_ENV,
    campaign_process,
    cli,
    env_for,
    on_a_terminal,
    read_report,
    start_process,
    without_final_line,
    write_campaign,
)

SECRET = "s3cr3t-VALUE-42"  # planted in every bad value: it must never come back
CSV = "phone,name\n+5511948489500,Ana\n+5521987654321,Bruno\n"
HEAD = """name: secrets
recipients:
  file: recipients.csv
  default_region: BR
gateway:
"""
TAIL = """message:
  type: text
  text: {body: "Olá [name]"}
"""


def campaign_text(tmp_path: Path, gateway: str) -> Path:
    """A campaign whose `gateway:` section is GATEWAY (indented lines from line 6 on)."""
    (tmp_path / "recipients.csv").write_text(CSV, encoding="utf-8")
    path = tmp_path / "campaign.yaml"
    text = HEAD + gateway + f"  apikey_env: {APIKEY_ENV}\n" + TAIL
    path.write_text(text, encoding="utf-8")
    return path


def run(path: Path, tmp_path: Path, *extra, **env):
    """`campaign run PATH` with a report in TMP_PATH and the test key plus ENV (a refused
    run's final log line checked and cut off: `without_final_line`)."""
    return without_final_line(
        cli(["run", path, "--report", tmp_path / "r.csv", *extra], env=env_for(tmp_path, **env))
    )


# ---- what the file says about the gateway, checked when it loads ------------------------

NOT_LOOPBACK = "plain http:// is only for this machine: localhost, 127.0.0.1 or ::1"
NOT_PRINTABLE = "it must be one line of printable ASCII"
RESERVED = (
    "is set by the runner itself and cannot be given here (the apikey comes from the "
    "variable gateway.apikey_env names)"
)

# name: (gateway lines, with PORT for the sandbox's port, and the expected located message)
BAD_GATEWAYS = {
    "credentials in the URL": (
        f"  url: http://ops:{SECRET}@127.0.0.1:PORT/api/Messages\n",
        ":6:8: gateway.url must not carry a user name or password: the gateway's "
        "credentials come from the environment (gateway.apikey_env, gateway.headers)",
    ),
    "a user name alone in the URL": (
        f"  url: http://{SECRET}@127.0.0.1:PORT/api/Messages\n",
        ":6:8: gateway.url must not carry a user name or password",
    ),
    "plain http to another machine": (
        "  url: http://gateway.example.com/api/Messages\n",
        f":6:8: gateway.url must use https:// to reach another machine; {NOT_LOOPBACK}",
    ),
    "plain http to an address that only starts like loopback": (
        "  url: http://127.0.0.1.example.com/api/Messages\n",
        ":6:8: gateway.url must use https:// to reach another machine",
    ),
    "plain http to all interfaces": (
        "  url: http://0.0.0.0:PORT/api/Messages\n",
        ":6:8: gateway.url must use https:// to reach another machine",
    ),
    "an odd scheme": (
        "  url: ftp://127.0.0.1:PORT/api/Messages\n",
        f":6:8: gateway.url must start with https://; {NOT_LOOPBACK}",
    ),
    "no scheme": (
        "  url: 127.0.0.1:PORT/api/Messages\n",
        ":6:8: gateway.url must start with https://",
    ),
    "a fragment": (
        "  url: http://127.0.0.1:PORT/api/Messages#top\n",
        ":6:8: gateway.url must not have a #fragment",
    ),
    "the apikey in the query": (
        f"  url: http://127.0.0.1:PORT/api/Messages?APIKEY={SECRET}\n",
        ":6:8: gateway.url must not carry the apikey in its query: it goes in the apikey "
        "header only",
    ),
    "a space in the URL": (
        '  url: "http://127.0.0.1:PORT/api/Mes sages"\n',
        ":6:8: gateway.url has a space or a control character: percent-encode it (%20)",
    ),
    "a line break in the URL": (
        '  url: "http://127.0.0.1:PORT/api/Messages\\r\\nX-Evil: 1"\n',
        ":6:8: gateway.url has a space or a control character",
    ),
    "a host that is not ASCII": (
        "  url: https://bücher.example/api/Messages\n",
        ":6:8: gateway.url has a character outside ASCII: write the host in its IDNA form "
        "(xn--...) and percent-encode the path",
    ),
    "a port out of range": (
        "  url: https://gateway.example.com:99999/api/Messages\n",
        ":6:8: gateway.url has a port that is not a number from 1 to 65535",
    ),
    "port zero": (
        "  url: http://127.0.0.1:0/api/Messages\n",
        ":6:8: gateway.url has a port that is not a number from 1 to 65535",
    ),
    "a port that is not a number": (
        "  url: http://127.0.0.1:http/api/Messages\n",
        ":6:8: gateway.url has a port that is not a number from 1 to 65535",
    ),
    "no host": (
        "  url: https:///api/Messages\n",
        ":6:8: gateway.url has no host: write it as https://HOST/PATH",
    ),
    "brackets that are not IPv6": (
        "  url: http://[localhost]:PORT/api/Messages\n",
        ":6:8: gateway.url has [brackets] that do not hold an IPv6 address",
    ),
    "a host with odd characters": (
        "  url: https://gate%77ay.example.com/api/Messages\n",
        ":6:8: gateway.url has a host that is not a name or an address",
    ),
    "a URL too long": (
        "  url: https://gateway.example.com/" + "a" * 2100 + "\n",
        ":6:8: gateway.url is 2128 characters long; at most 2048 allowed",
    ),
    "a header name with a space": (
        "  url: http://127.0.0.1:PORT/api/Messages\n  headers:\n    x origin: grp\n",
        """:8:5: gateway.headers: '"x origin"' is not a header name: letters, digits and - """
        "(no spaces, colons or other punctuation)",
    ),
    "a header name with a colon": (
        "  url: http://127.0.0.1:PORT/api/Messages\n  headers:\n    'x-a: b': grp\n",
        """:8:5: gateway.headers: '"x-a: b"' is not a header name""",
    ),
    "a header written twice in other cases": (
        "  url: http://127.0.0.1:PORT/api/Messages\n  headers:\n    X-Group: a\n    x-group: b\n",
        ":9:5: gateway.headers: 'x-group' is the same header as 'X-Group' "
        "(header names ignore case)",
    ),
    "a literal apikey header": (
        f"  url: http://127.0.0.1:PORT/api/Messages\n  headers:\n    apikey: {SECRET}\n",
        f":8:5: gateway.headers: 'apikey' {RESERVED}",
    ),
    "an apikey header from a variable": (
        "  url: http://127.0.0.1:PORT/api/Messages\n  headers:\n    ApiKey: ${OTHER_KEY}\n",
        f":8:5: gateway.headers: 'ApiKey' {RESERVED}",
    ),
    "a header value with a line break": (
        f'  url: http://127.0.0.1:PORT/api/Messages\n  headers:\n    x-a: "{SECRET}\\nX-Evil: 1"\n',
        f":8:10: gateway.headers.x-a holds a line break; {NOT_PRINTABLE}",
    ),
    "a header value with NUL": (
        f'  url: http://127.0.0.1:PORT/api/Messages\n  headers:\n    x-a: "{SECRET}\\0"\n',
        f":8:10: gateway.headers.x-a holds a NUL character; {NOT_PRINTABLE}",
    ),
    "a header value with a terminal escape": (
        f'  url: http://127.0.0.1:PORT/api/Messages\n  headers:\n    x-a: "\\e[31m{SECRET}"\n',
        f":8:10: gateway.headers.x-a holds a control character; {NOT_PRINTABLE}",
    ),
    "a header value outside latin-1": (
        f"  url: http://127.0.0.1:PORT/api/Messages\n  headers:\n    x-a: {SECRET}€\n",
        f":8:10: gateway.headers.x-a holds a character outside ASCII; {NOT_PRINTABLE}",
    ),
    "a header value reading the apikey's variable": (
        f"  url: http://127.0.0.1:PORT/api/Messages\n  headers:\n    x-copy: ${{{APIKEY_ENV}}}\n",
        f":8:13: gateway.headers.x-copy reads ${{{APIKEY_ENV}}}, the apikey's own variable: the "
        "apikey only ever goes in the apikey header, which the runner sets",
    ),
    "a header value with a broken variable": (
        "  url: http://127.0.0.1:PORT/api/Messages\n  headers:\n    x-a: ${ORIGIN\n",
        ":8:10: gateway.headers.x-a has '${' that is not a variable: write ${NAME} "
        "(letters, digits and _)",
    ),
    "a version with a line break": (
        f'  url: http://127.0.0.1:PORT/api/Messages\n  version: "4.0\\r\\n{SECRET}"\n',
        f":7:12: gateway.version holds a line break; {NOT_PRINTABLE}",
    ),
    "an apikey parameter": (
        f"  url: http://127.0.0.1:PORT/api/Messages\n  params:\n    apikey: {SECRET}\n",
        ":8:5: gateway.params: 'apikey' would carry the apikey: it goes in the apikey header only",
    ),
    "a parameter value with a line break": (
        f'  url: http://127.0.0.1:PORT/api/Messages\n  params:\n    phone_id: "1\\n{SECRET}"\n',
        f":8:15: gateway.params.phone_id holds a line break; {NOT_PRINTABLE}",
    ),
    "a variable in the URL": (
        "  url: https://${GATEWAY_HOST}/api/Messages\n",
        ":6:8: gateway.url is sent as written: ${NAME} is read only in gateway.headers (ops pin "
        "the gateway with CAMPAIGN_GATEWAY_URL)",
    ),
    "a variable in the version": (
        '  url: http://127.0.0.1:PORT/api/Messages\n  version: "${VERSION}"\n',
        ":7:12: gateway.version is sent as written: ${NAME} is read only in gateway.headers",
    ),
    "a variable in a parameter": (
        "  url: http://127.0.0.1:PORT/api/Messages\n  params:\n    phone_id: ${PHONE_ID}\n",
        ":8:15: gateway.params.phone_id is sent as written: ${NAME} is read only in "
        "gateway.headers",
    ),
    "an empty parameter name": (
        '  url: http://127.0.0.1:PORT/api/Messages\n  params:\n    "": "1"\n',
        ":8:5: gateway.params: '\"\"' is empty: a parameter needs a name",
    ),
}


@pytest.mark.parametrize(
    "reserved",
    [
        "Host",
        "content-length",
        "Transfer-Encoding",
        "CONNECTION",
        "Version",
        "idempotency-key",
        "Content-Type",
    ],
)
def test_a_header_the_runner_sets_is_refused(reserved, sandbox, tmp_path):
    gateway = f"  url: {sandbox.messages_url}\n  headers:\n    {reserved}: x\n"
    path = campaign_text(tmp_path, gateway)
    result = run(path, tmp_path)
    assert result.exit_code == 2
    assert result.output == f"{path}:8:5: gateway.headers: '{reserved}' {RESERVED}\n"
    assert sandbox.messages() == []


@pytest.mark.parametrize("gateway, expected", BAD_GATEWAYS.values(), ids=BAD_GATEWAYS.keys())
def test_a_bad_gateway_section_is_refused_when_the_campaign_loads(
    gateway, expected, sandbox, tmp_path
):
    path = campaign_text(tmp_path, gateway.replace("PORT", str(sandbox.url.rsplit(":", 1)[1])))
    checked = cli(["validate", path], env=env_for(tmp_path))
    ran = run(path, tmp_path, CAMPAIGN_ALLOWED_ENV=f"OTHER_KEY,{APIKEY_ENV}", OTHER_KEY=SECRET)
    for result in (checked, ran):
        assert result.exit_code == 2
        assert result.output.startswith(f"{path}{expected}"), result.output
        assert len(result.output.splitlines()) == 1, result.output
        assert SECRET not in result.output
    assert sandbox.messages() == []
    assert not (tmp_path / "r.csv").exists()


def test_preview_and_status_refuse_the_same_gateway(tmp_path):
    path = campaign_text(tmp_path, f"  url: https://ops:{SECRET}@gateway.example.com/api\n")
    for command in (["preview", path], ["preview", path, "--format", "jsonl"], ["status", path]):
        result = cli(command, env=env_for(tmp_path))
        assert result.exit_code == 2
        assert result.output.startswith(f"{path}:6:8: gateway.url must not carry a user name")
        assert SECRET not in result.output


def test_the_default_gateway_and_loopback_gateways_are_accepted(tmp_path):
    for url in (
        None,
        "https://api-cerberus-kong.socialminer.tech/api/Messages?phone_id=1",
        "http://localhost:8787/api/Messages",
        "http://127.8.0.1:8787/api/Messages",
        "http://[::1]:8787/api/Messages",
        "https://[2001:db8::1]/api/Messages",
    ):
        path = write_campaign(tmp_path, gateway_url=url)
        result = cli(["validate", path], env=env_for(tmp_path))
        assert result.exit_code == 0, (url, result.output)


# ---- what the environment holds, checked when a run reads it ---------------------------


@pytest.mark.parametrize(
    "apikey, reason",
    [
        (f"{SECRET}\nX-Evil: 1", "holds a line break; " + NOT_PRINTABLE),
        (f"{SECRET}\r\n{SECRET}", "holds a line break; " + NOT_PRINTABLE),
        (f"{SECRET}\x1b[2J", "holds a control character; " + NOT_PRINTABLE),
        (f"{SECRET}é", "holds a character outside ASCII; " + NOT_PRINTABLE),
        (SECRET * 300, "is 4500 characters long; at most 4096 allowed"),
    ],
)
def test_an_apikey_that_cannot_be_a_header_is_an_error_naming_the_variable(
    apikey, reason, sandbox, tmp_path
):
    path = write_campaign(tmp_path, gateway_url=sandbox.messages_url)
    result = run(path, tmp_path, apikey=apikey)
    assert result.exit_code == 2
    assert result.output == (
        f"{path}:6:15: the apikey in the environment variable {APIKEY_ENV} {reason}\n"
    )
    assert sandbox.messages() == [] and not (tmp_path / "r.csv").exists()


def test_spaces_and_a_line_end_around_the_apikey_are_dropped(sandbox_factory, tmp_path):
    """`export KEY=$(cat keyfile)` keeps a Windows line end; the key itself is fine."""
    gateway = sandbox_factory(apikey=SECRET)
    path = write_campaign(tmp_path, gateway_url=gateway.messages_url)
    result = run(path, tmp_path, apikey=f" {SECRET}\r\n")
    assert result.exit_code == 0, result.output
    assert len(gateway.messages()) == 2 and SECRET not in result.output


@pytest.mark.parametrize("apikey", ["", "   ", "\n"])
def test_an_empty_apikey_is_an_error(apikey, sandbox, tmp_path):
    path = write_campaign(tmp_path, gateway_url=sandbox.messages_url)
    result = run(path, tmp_path, apikey=apikey)
    assert result.exit_code == 2
    assert result.output == (
        f"{path}:6:15: the apikey is read from the environment variable {APIKEY_ENV}, which is "
        f"empty; export {APIKEY_ENV}=... (or use --dry-run or --sandbox)\n"
    )
    assert sandbox.messages() == []


def header_campaign(tmp_path: Path, url: str, value: str = "${GROUP}") -> Path:
    return write_campaign(tmp_path, gateway_url=url, gateway={"headers": {"x-group": value}})


@pytest.mark.parametrize(
    "value, reason",
    [
        (f"{SECRET}\nX-Evil: 1", "holds a line break; " + NOT_PRINTABLE),
        (f"{SECRET}\r\n", "holds a line break; " + NOT_PRINTABLE),
        (f"{SECRET}\x7f", "holds a control character; " + NOT_PRINTABLE),
        (f"{SECRET}😀", "holds a character outside ASCII; " + NOT_PRINTABLE),
        (SECRET * 300, "is 4500 characters long; at most 4096 allowed"),
        ("", "is empty"),
        ("  ", "is empty"),
    ],
)
def test_a_header_variable_that_cannot_be_sent_is_an_error_naming_it(
    value, reason, sandbox, tmp_path
):
    path = header_campaign(tmp_path, sandbox.messages_url)
    result = run(path, tmp_path, CAMPAIGN_ALLOWED_ENV="GROUP", GROUP=value)
    assert result.exit_code == 2
    assert result.output == (
        f"{path}:9:14: gateway.headers.x-group reads the environment variable GROUP, "
        f"which {reason}\n"
    )
    assert sandbox.messages() == [] and not (tmp_path / "r.csv").exists()


def test_two_variables_that_fit_alone_but_not_together_are_an_error(sandbox, tmp_path):
    path = header_campaign(tmp_path, sandbox.messages_url, "${A}${B}")
    result = run(path, tmp_path, CAMPAIGN_ALLOWED_ENV="A,B", A="a" * 3000, B="b" * 3000)
    assert result.exit_code == 2
    assert result.output == (
        f"{path}:9:14: gateway.headers.x-group once expanded is 6000 characters long; "
        "at most 4096 allowed\n"
    )
    assert sandbox.messages() == []


@pytest.mark.parametrize("allowed", [None, "", "OTHER", "GROUPS, ROUP", " ,OTHER"])
def test_a_variable_ops_have_not_allowed_is_not_read(allowed, sandbox, tmp_path):
    path = header_campaign(tmp_path, sandbox.messages_url)
    extra = {} if allowed is None else {"CAMPAIGN_ALLOWED_ENV": allowed}
    result = run(path, tmp_path, GROUP=SECRET, **extra)
    assert result.exit_code == 2
    assert result.output == (
        f"{path}:9:14: gateway.headers.x-group reads the environment variable GROUP, which "
        "ops have not allowed: ops list the variables a campaign may read in "
        "CAMPAIGN_ALLOWED_ENV=GROUP,...\n"
    )
    assert SECRET not in result.output and sandbox.messages() == []


def test_the_apikey_variable_is_never_readable_through_a_header(sandbox, tmp_path):
    """Even listed by ops: the apikey only ever goes in the apikey header."""
    path = header_campaign(tmp_path, sandbox.messages_url, f"Bearer ${{{APIKEY_ENV}}}")
    result = run(path, tmp_path, apikey=SECRET, CAMPAIGN_ALLOWED_ENV=APIKEY_ENV)
    assert result.exit_code == 2
    assert f"{path}:9:14: gateway.headers.x-group reads ${{{APIKEY_ENV}}}" in result.output
    assert SECRET not in result.output and sandbox.messages() == []


def test_a_bad_allowed_list_is_an_error_without_its_contents(sandbox, tmp_path):
    path = header_campaign(tmp_path, sandbox.messages_url)
    result = run(path, tmp_path, CAMPAIGN_ALLOWED_ENV=f"GROUP,{SECRET}!", GROUP="g")
    assert result.exit_code == 2
    assert result.output == (
        "CAMPAIGN_ALLOWED_ENV: entry 2 is not a variable name (letters, digits and _)\n"
    )
    assert sandbox.messages() == []


def test_every_environment_problem_is_said_at_once(sandbox, tmp_path):
    path = header_campaign(tmp_path, sandbox.messages_url)
    result = run(path, tmp_path, apikey=f"{SECRET}\nx", GROUP=SECRET, CAMPAIGN_GATEWAY_URL="")
    assert result.exit_code == 2
    lines = result.output.splitlines()
    assert (
        lines[0]
        == "CAMPAIGN_GATEWAY_URL: the pinned gateway URL is empty: unset it, or give the URL"
    )
    assert lines[1].startswith(f"{path}:6:15: the apikey in the environment variable")
    assert lines[2].startswith(f"{path}:9:14: gateway.headers.x-group reads the environment")
    assert len(lines) == 3 and SECRET not in result.output


def test_allowed_variables_are_read(sandbox_factory, tmp_path):
    """test_run.py's recording gateway shows such a header arriving as written."""
    gateway = sandbox_factory()
    path = header_campaign(tmp_path, gateway.messages_url, "grp-${GROUP}-${REGION}")
    result = run(path, tmp_path, CAMPAIGN_ALLOWED_ENV=" GROUP , REGION ", GROUP="7", REGION="sp")
    assert result.exit_code == 0, result.output
    assert len(gateway.messages()) == 2


# ---- ops pin the gateway -----------------------------------------------------------------


def test_a_pin_sends_a_campaign_without_a_url_to_the_pinned_gateway(sandbox, tmp_path):
    path = write_campaign(tmp_path)  # the default, production gateway
    result = run(path, tmp_path, CAMPAIGN_GATEWAY_URL=sandbox.messages_url)
    assert result.exit_code == 0, result.output
    assert len(sandbox.messages()) == 2


def test_a_campaign_naming_another_gateway_than_the_pin_is_refused(sandbox, tmp_path):
    path = write_campaign(tmp_path, gateway_url="https://collector.example.net/api/Messages")
    result = run(path, tmp_path, CAMPAIGN_GATEWAY_URL=sandbox.messages_url)
    assert result.exit_code == 2
    assert result.output == (
        f"{path}:7:8: gateway.url differs from the gateway ops pinned with CAMPAIGN_GATEWAY_URL: "
        "remove gateway.url from the campaign, or make it the same (the pin decides where "
        "messages go)\n"
    )
    assert sandbox.messages() == [] and not (tmp_path / "r.csv").exists()


def test_the_pin_closes_an_apikey_env_that_names_another_secret(sandbox, tmp_path):
    """A campaign cannot send AWS_SECRET_ACCESS_KEY to a collector of its choosing: plain
    http to it is refused on load, and https to it is refused by the pin."""
    aws = {"AWS_SECRET_ACCESS_KEY": SECRET}
    http = write_campaign(
        tmp_path / "http",
        gateway_url="http://collector.example.net/api/Messages",
        gateway={"apikey_env": "AWS_SECRET_ACCESS_KEY"},
    )
    https = write_campaign(
        tmp_path / "https",
        gateway_url="https://collector.example.net/api/Messages",
        gateway={"apikey_env": "AWS_SECRET_ACCESS_KEY"},
    )
    refused = run(http, tmp_path, **aws)
    pinned = run(https, tmp_path, CAMPAIGN_GATEWAY_URL=sandbox.messages_url, **aws)
    assert refused.exit_code == 2 and "gateway.url must use https://" in refused.output
    assert pinned.exit_code == 2 and "differs from the gateway ops pinned" in pinned.output
    assert SECRET not in refused.output + pinned.output


def test_the_same_url_as_the_pin_is_accepted(sandbox, tmp_path):
    path = write_campaign(tmp_path, gateway_url=sandbox.messages_url)
    result = run(path, tmp_path, CAMPAIGN_GATEWAY_URL=sandbox.messages_url)
    assert result.exit_code == 0, result.output
    assert len(sandbox.messages()) == 2


def test_the_option_pins_the_gateway_over_the_environment(sandbox_factory, tmp_path):
    ops, other = sandbox_factory(), sandbox_factory()
    path = write_campaign(tmp_path)
    result = run(
        path, tmp_path, "--gateway-url", ops.messages_url, CAMPAIGN_GATEWAY_URL=other.messages_url
    )
    assert result.exit_code == 0, result.output
    assert len(ops.messages()) == 2 and other.messages() == []


@pytest.mark.parametrize(
    "pin, reason",
    [
        (f"https://ops:{SECRET}@gateway.example.com/api", "must not carry a user name or password"),
        ("http://gateway.example.com/api", "must use https:// to reach another machine"),
        (f"https://gateway.example.com/api#{SECRET}", "must not have a #fragment"),
        (f"https://gateway.example.com/api?apikey={SECRET}", "must not carry the apikey"),
        ("  ", "is empty: unset it, or give the URL"),
    ],
)
def test_a_bad_pin_is_refused_without_showing_it(pin, reason, sandbox, tmp_path):
    path = write_campaign(tmp_path)
    by_env = run(path, tmp_path, CAMPAIGN_GATEWAY_URL=pin)
    by_option = run(path, tmp_path, "--gateway-url", pin)
    for result, where in ((by_env, "CAMPAIGN_GATEWAY_URL"), (by_option, "--gateway-url")):
        assert result.exit_code == 2
        assert result.output.startswith(f"{where}: the pinned gateway URL {reason}"), result.output
        assert SECRET not in result.output
    assert sandbox.messages() == []


def test_a_rehearsal_and_a_dry_run_do_not_need_the_pin(tmp_path):
    path = write_campaign(tmp_path, gateway_url="https://staging.example.com/api/Messages")
    env = {"CAMPAIGN_GATEWAY_URL": "https://gateway.example.com/api/Messages"}
    dry = run(path, tmp_path, "--dry-run", **env)
    rehearsal = cli(
        ["run", path, "--sandbox", "--report", tmp_path / "s.csv"], env=env_for(tmp_path, **env)
    )
    assert dry.exit_code == 0 and rehearsal.exit_code == 0, dry.output + rehearsal.output


def test_the_question_names_the_pinned_gateway(sandbox, tmp_path):
    path = write_campaign(tmp_path)
    returncode, question, _ = on_a_terminal(
        ["run", path, "--report", tmp_path / "r.csv"],
        env_for(tmp_path, CAMPAIGN_GATEWAY_URL=sandbox.messages_url),
        streams=("stdin", "stderr"),
        answer="n",
    )
    plan = question.split("[y/N]")[0]
    assert f"gateway: {sandbox.messages_url}" in plan and "to 2 recipient(s) now?" in plan
    assert returncode == 2 and sandbox.messages() == []


def test_the_question_is_not_asked_when_the_environment_is_wrong(sandbox, tmp_path):
    path = header_campaign(tmp_path, sandbox.messages_url)
    returncode, terminal, _ = on_a_terminal(
        ["run", path, "--report", tmp_path / "r.csv"],
        env_for(tmp_path, GROUP=SECRET),
        streams=("stdin", "stderr"),
        answer="y",
    )
    assert returncode == 2 and "[y/N]" not in terminal
    assert "which ops have not allowed" in terminal and SECRET not in terminal
    assert sandbox.messages() == []


# ---- the sandbox's records -----------------------------------------------------------------


def test_with_a_key_the_sandbox_wants_it_for_its_records(sandbox_factory):
    gateway = sandbox_factory(apikey=SECRET)
    body = {
        "messaging_product": "whatsapp",
        "to": "+5511948489500",
        "type": "text",
        "text": {"body": "Olá Ana"},
    }
    with httpx.Client(timeout=5) as client:
        headers = {"apikey": SECRET, "version": "4.0"}
        assert client.post(gateway.messages_url, json=body, headers=headers).status_code == 200
        answers = {
            "no key": client.get(gateway.url + "/messages"),
            "key in the query": client.get(gateway.url + f"/messages?apikey={SECRET}"),
            "wrong key": client.get(gateway.url + "/messages", headers={"apikey": "guess"}),
            "delete, no key": client.delete(gateway.url + "/messages"),
            "delete, wrong key": client.delete(gateway.url + "/messages", headers={"apikey": "x"}),
        }
        kept = client.get(gateway.url + "/messages", headers={"apikey": SECRET})
    no_key = {"message": "No API key found in request"}
    bad_key = {"message": "Invalid authentication credentials"}
    assert {name: (a.status_code, a.json()) for name, a in answers.items()} == {
        "no key": (401, no_key),
        "key in the query": (401, no_key),
        "wrong key": (401, bad_key),
        "delete, no key": (401, no_key),
        "delete, wrong key": (401, bad_key),
    }
    assert answers["no key"].headers["www-authenticate"] == 'Key realm="kong"'
    assert kept.status_code == 200 and [r["to"] for r in kept.json()] == ["+5511948489500"]
    assert "Ana" not in json.dumps([a.json() for a in answers.values()])


def test_without_a_key_the_sandbox_serves_its_records_on_loopback(sandbox_factory):
    gateway = sandbox_factory(apikey=None)
    with httpx.Client(timeout=5) as client:
        assert client.get(gateway.url + "/messages").status_code == 200
        assert client.delete(gateway.url + "/messages").status_code == 200


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "", "localhost.example.com"])
def test_without_a_key_the_sandbox_refuses_to_listen_beyond_loopback(host, tmp_path):
    done = campaign_process(["sandbox", "--host", host, "--port", "0"])
    assert done.returncode == 2
    assert (
        f"Error: host '{host}' is not this machine: without an apikey the sandbox listens only "
        "on loopback (127.0.0.1, ::1, localhost), because GET /messages shows every "
        "recipient's phone and message; give --apikey KEY to listen on another address"
    ) in done.stderr
    assert done.stdout == ""


@pytest.mark.parametrize(
    "apikey, reason",
    [("", "is empty"), ("  ", "is empty"), (f"{SECRET}\n", "holds a line break")],
)
def test_the_sandbox_refuses_an_apikey_it_could_never_match(apikey, reason):
    done = campaign_process(["sandbox", "--port", "0", "--apikey", apikey])
    assert done.returncode == 2
    assert f"Error: the sandbox's apikey {reason}" in done.stderr
    assert SECRET not in done.stdout + done.stderr


def test_with_a_key_the_sandbox_may_listen_on_every_address():
    process = start_process(["sandbox", "--host", "0.0.0.0", "--port", "0", "--apikey", SECRET])
    try:
        banner = process.stdout.readline() if process.stdout else ""
    finally:
        process.terminate()
        out, err = process.communicate(timeout=30)
    assert banner.startswith("sandbox gateway listening on http://0.0.0.0:")
    assert "(apikey: the configured key only)" in banner
    assert SECRET not in banner + out + err


# ---- one campaign end to end: the secrets show nowhere -----------------------------------


def test_no_secret_shows_in_any_output_of_a_whole_campaign(sandbox_factory, tmp_path):
    apikey, header_secret = "APIKEY-0f9c2b7e-SECRET", "HEADER-7d1e44a0-SECRET"
    gateway = sandbox_factory(apikey=apikey, record=tmp_path / "gateway.jsonl")
    path = header_campaign(tmp_path, gateway.messages_url, "Bearer ${GATEWAY_TOKEN}")
    env = env_for(
        tmp_path, apikey=apikey, GATEWAY_TOKEN=header_secret, CAMPAIGN_ALLOWED_ENV="GATEWAY_TOKEN"
    )
    html = tmp_path / "preview.html"
    commands = {
        "validate": (["validate", path], 0),
        "preview text": (["preview", path], 0),
        "preview jsonl": (["preview", path, "--format", "jsonl"], 0),
        "preview html": (["preview", path, "--format", "html", "--output", html], 0),
        "dry run": (["run", path, "--dry-run", "--report", tmp_path / "dry.csv"], 0),
        "rehearsal": (["run", path, "--sandbox", "--report", tmp_path / "rehearsal.csv"], 0),
        "run": (["run", path, "--report", tmp_path / "run.csv"], 0),
        "run again": (["run", path, "--report", tmp_path / "again.csv"], 0),
        "status": (["status", path], 0),
        "status json": (["status", path, "--json"], 0),
        "bad values": (["run", path, "--report", tmp_path / "bad.csv"], 2),
    }
    streams = []
    for name, (args, code) in commands.items():
        if name == "bad values":  # a refused value must not be echoed either
            env = {
                **env,
                APIKEY_ENV: f"{apikey}\nX: 1",
                "GATEWAY_TOKEN": f"{header_secret}\r\nX: 1",
            }
        done = campaign_process(args, env=env)
        assert done.returncode == code, (name, done.stdout, done.stderr)
        streams += [done.stdout, done.stderr]
    assert len(gateway.messages()) == 2
    assert [row["status"] for row in read_report(tmp_path / "again.csv")] == ["already-sent"] * 2
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    names = {p.name for p in written}
    assert {"run.csv", "run.json", "rehearsal.sandbox.jsonl", "gateway.jsonl", "preview.html"} <= (
        names
    )
    assert any(p.suffix == ".sqlite" for p in written)
    for secret in (apikey, header_secret):
        for text in streams:
            assert secret not in text
        for file in written:
            assert secret.encode() not in file.read_bytes(), file
