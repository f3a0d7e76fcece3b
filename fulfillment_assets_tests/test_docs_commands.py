"""Every command the docs show for the demo API and `scripts/demo.sh` parses with that program's
own argparse parser: a flag of one program never appears with the other (the README once gave
`--api-fault 500`, a flag of `scripts/demo.sh`, where readers ran the demo API), and a flag of
either never stands alone in a code span, where the reader cannot tell whose it is."""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import shlex
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fulfillment_assets import settings
from fulfillment_assets.demo.job import build_parser as demo_job_parser
from fulfillment_assets.demo_api.__main__ import build_parser as demo_api_parser

PAGES = sorted(
    [
        settings.PROJECT_ROOT / "README.md",
        settings.PROJECT_ROOT / "benchmarks" / "README.md",
        *(settings.PROJECT_ROOT / "docs").glob("*.md"),
    ]
)
# How a command names each program, and its parser.
PROGRAMS: dict[str, Callable[[], argparse.ArgumentParser]] = {
    "fulfillment_assets.demo_api": demo_api_parser,
    "fulfillment_assets.demo.job": demo_job_parser,
    "scripts/demo.sh": demo_job_parser,
}
# Placeholders the docs write for a value, and a value of that kind.
PLACEHOLDERS = {"N": "1000", "STATUS": "500"}
SEPARATORS = {";", "&", "&&", "|", "||"}
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"`([^`]+)`")
FLAG = re.compile(r"--[a-z][a-z-]*")


def _shown(page: Path) -> str:
    return str(page.relative_to(settings.PROJECT_ROOT))


def code_texts(page: Path) -> Iterator[str]:
    """Each line of the page's fenced blocks, and each inline code span (whitespace collapsed:
    a span may break across lines)."""
    text = page.read_text()
    for block in FENCE.findall(text):
        yield from block.splitlines()[1:-1]
    for span in CODE_SPAN.findall(FENCE.sub("", text)):
        yield " ".join(span.split())


def commands(text: str) -> Iterator[list[str]]:
    """The shell commands of a line (`kill %1; python -m ... &  # comment`), as words."""
    lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    command: list[str] = []
    for word in lexer:
        if word in SEPARATORS:
            yield command
            command = []
        else:
            command.append(word)
    yield command


def program_and_arguments(command: list[str]) -> tuple[str, list[str]] | None:
    """Which of the demo programs a command runs, and the arguments it gives it."""
    for position, word in enumerate(command):
        named = word.removeprefix("./")
        if named in PROGRAMS and (named.endswith(".sh") or command[position - 1] == "-m"):
            return named, [
                PLACEHOLDERS.get(argument, argument) for argument in command[position + 1 :]
            ]
    return None


def shown_commands() -> list[tuple[str, str, list[str]]]:
    """(page, program, arguments) of every command of a demo program the docs show."""
    found = []
    for page in PAGES:
        for text in code_texts(page):
            if not any(program in text for program in PROGRAMS):
                continue  # prose and other tools' commands, which need not lex as shell
            for command in commands(text):
                invocation = program_and_arguments(command)
                if invocation:
                    found.append((_shown(page), *invocation))
    return found


def parse(program: str, arguments: list[str]) -> str:
    """The parser's complaint about the arguments; empty when it accepts them (`--help` too)."""
    errors = io.StringIO()
    with contextlib.redirect_stderr(errors), contextlib.redirect_stdout(io.StringIO()):
        try:
            PROGRAMS[program]().parse_args(arguments)
        except SystemExit as exited:
            return errors.getvalue() if exited.code else ""
    return ""


def test_the_docs_show_commands_of_both_programs() -> None:
    programs = {program for _, program, _ in shown_commands()}
    assert {"fulfillment_assets.demo_api", "scripts/demo.sh"} <= programs, programs


@pytest.mark.parametrize(
    ("page", "program", "arguments"),
    shown_commands(),
    ids=lambda value: " ".join(value) if isinstance(value, list) else str(value),
)
def test_each_command_the_docs_show_parses_with_its_programs_parser(
    page: str, program: str, arguments: list[str]
) -> None:
    complaint = parse(program, arguments)
    assert not complaint, f"{page}: {program} {' '.join(arguments)}\n{complaint}"


def test_no_flag_of_either_program_stands_alone_in_a_code_span() -> None:
    flags = {flag for build in PROGRAMS.values() for flag in FLAG.findall(build().format_help())}
    assert {"--api-fault", "--fail-status", "--records", "--help"} <= flags
    alone = [
        f"{_shown(page)}: `{text}`"
        for page in PAGES
        for text in code_texts(page)
        if text.split() and text.split()[0] in flags
    ]
    assert not alone, f"show the command with the flag: {alone}"


def test_a_flag_given_to_the_wrong_program_is_refused() -> None:
    # What the README once led to: the demo job's fault flag given to the demo API.
    assert "unrecognized arguments: --api-fault 500" in parse(
        "fulfillment_assets.demo_api", ["--api-fault", "500"]
    )
    assert parse("fulfillment_assets.demo_api", ["--fail-status", "500"]) == ""
