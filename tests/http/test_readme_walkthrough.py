"""The README's walkthrough ("A service's life, with curl" and "Maintenance, with curl") run as a
reader runs it: each command of the two `sh` blocks, verbatim, with bash and curl, against a local
server, in order. Only the base URL (`B=`) and the ids a reader copies from earlier answers (`S=`,
`C=`: the service_id the previous command printed) are substituted. Every command must succeed
(2xx, seen through a curl wrapper that only adds `-D <file>`, which prints nothing) and print
something; where the README writes the answer in a trailing comment (`# {"state_id":1}`, `# 204…`),
that is what it prints."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import tempfile

import pytest

from local.template import ROOT
from tests.support import running

README = (ROOT / "README.md").read_text()
SECTIONS = ("## A service's life, with curl\n", "### Maintenance, with curl\n")
ASSIGNMENT = re.compile(r"^([A-Z]+)=(\d+)\b")
BASE = re.compile(r"^B=(http://\S+?)(/genesys/1/cs)$")


def _block(heading: str) -> str:
    after = README[README.index(heading):]
    return after[after.index("```sh\n") + 6:after.index("```", after.index("```sh\n") + 6)]


def _commands(block: str) -> list[str]:
    """Command lines in order (continuations joined; comment-only and blank lines dropped)."""
    commands, pending = [], ""
    for line in block.splitlines():
        if pending:
            line, pending = pending + "\n" + line, ""
        if line.endswith("\\"):
            pending = line
            continue
        if line.strip() and not line.lstrip().startswith("#"):
            commands.append(line)
    return commands


def _comment(command: str) -> str | None:
    """The answer the README writes after the command (`# ...` outside quotes), if any."""
    quoted = re.sub(r"'[^']*'|\"[^\"]*\"", lambda m: "x" * len(m.group(0)), command)
    index = quoted.find(" #")
    return command[index + 2:].strip() if index >= 0 else None


COMMANDS = [command for heading in SECTIONS for command in _commands(_block(heading))]


def test_the_walkthrough_is_where_the_test_reads_it():
    assert BASE.match(COMMANDS[0]), "the first command sets B"
    assert sum(command.startswith("curl ") for command in COMMANDS) >= 14
    assert [c for c in COMMANDS if ASSIGNMENT.match(c)], "ids are copied from answers"


@pytest.fixture(scope="module")
def server():
    with tempfile.TemporaryDirectory(prefix="walkthrough-exports-") as exports, \
            running({"EXPORT_DIR": exports, "LOCAL_WARM": "1"}) as info:
        yield info


def test_every_step_answers_success_and_shows_something(server, tmp_path):
    headers = tmp_path / "headers"
    # The reader's shell: the variables set so far, and curl with -D added (headers to a file only).
    session = [f'curl() {{ command curl -D {shlex.quote(str(headers))} "$@"; }}']
    ids: dict[str, str] = {}  # the README's example id -> the id this run printed
    last_output = ""
    ran = 0
    for command in COMMANDS:
        base = BASE.match(command)
        if base:
            session.append(f"B={server['url']}{base.group(2)}")
            continue
        assignment = ASSIGNMENT.match(command)
        if assignment:
            printed = re.search(r'"service_id":"(\d+)"', last_output)
            assert printed, f"{command}: the previous command printed no service_id:\n{last_output}"
            ids[assignment.group(2)] = printed.group(1)
            session.append(f"{assignment.group(1)}={printed.group(1)}")
            continue
        headers.write_text("")
        done = subprocess.run(["bash", "-c", "\n".join(session + [command])], capture_output=True, text=True,
                              timeout=120, env={**os.environ, "LC_ALL": "C"})
        statuses = re.findall(r"^HTTP/[\d.]+ (\d{3})", headers.read_text(), re.M)
        output = done.stdout.strip()
        assert done.returncode == 0 and statuses, f"{command}\n-> exit {done.returncode}: {done.stderr}"
        assert statuses[-1].startswith("2"), f"{command}\n-> {statuses[-1]}: {output}"
        assert output, f"{command}\n-> {statuses[-1]} and nothing printed"
        if output.startswith(("{", "[")):
            assert json.loads(output) not in ({}, []), f"{command}\n-> an empty answer: {output}"
        expected = _comment(command)
        if expected:
            for example, real in ids.items():
                expected = expected.replace(example, real)
            if re.match(r"\d{3}\b", expected):
                assert output.splitlines()[-1] == expected[:3], f"{command}\n-> {output}"
            elif expected.startswith(("{", "[")):
                assert json.loads(output) == json.loads(expected), f"{command}\n-> {output}"
        last_output, ran = output, ran + 1
    assert ran == sum(command.startswith("curl ") for command in COMMANDS)
