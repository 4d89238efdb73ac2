"""The docs stay true: every relative link and picture in README.md and docs/ exists (headings too), every flag the docs
show exists in the parser of the command it is given to and every THINKEDIT_* variable they name is one ThinkEdit
reads; the other way round, every flag of the commands and every setting is documented; and the tables of backends,
trajectory fields and stop reasons list what the code has."""

from __future__ import annotations

import argparse
import ast
import dataclasses
import importlib.util
import itertools
import re
import shlex
from collections.abc import Callable, Iterator
from pathlib import Path
from unittest import mock

import pytest

from thinkedit import cli, loop, schema
from thinkedit.config import NOT_FROM_ENVIRONMENT, ROLES, Settings
from thinkedit.editors import EDITORS
from thinkedit.evaluate import official
from thinkedit.judges import JUDGES
from thinkedit.registry import backend_rows
from thinkedit.thinkers import THINKERS

PROJECT = Path(__file__).resolve().parent.parent
PAGES = [PROJECT / "README.md", *sorted((PROJECT / "docs").glob("*.md"))]
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9_]*(?:-[a-z0-9_]+)*")
VARIABLE = re.compile(r"\bTHINKEDIT_[A-Z0-9_]+")
LINK = re.compile(r"!?\[(?:[^\]\\]|\\.)*\]\(([^)\s]+)\)|<img [^>]*src=\"([^\"]+)\"")
CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.DOTALL)
FENCE = re.compile(r"^\s*```")
# Commands of other tools the docs quote (their flags are theirs): a code span or block starting with one is not ours.
FOREIGN = {"hf", "huggingface-cli", "git", "vllm", "pip", "curl", "gradio", "accelerate", "torchrun", "apt-get", "ruff"}
FOREIGN |= {"bash", "export"}  # shell scripts take no argparse flags; `export` sets variables


# Reading a page


def split_page(text: str) -> tuple[list[str], list[str]]:
    """(prose lines, code lines) of a Markdown page: code lines are those of its fenced blocks."""
    prose, code, fenced = [], [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
        elif fenced:
            code.append(line)
        else:
            prose.append(line)
    return prose, code


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    for line in split_page(path.read_text(encoding="utf-8"))[0]:
        if match := re.match(r"#{1,6} (.+)", line):
            base = slug(match[1])
            name, n = base, 0
            while name in found:  # GitHub numbers repeated headings: name, name-1, name-2, …
                n += 1
                name = f"{base}-{n}"
            found.add(name)
    return found


def broken_links(path: Path) -> list[str]:
    """The relative links and pictures of `path` whose file, or heading, does not exist."""
    broken = []
    prose = "\n".join(split_page(path.read_text(encoding="utf-8"))[0])
    for match in LINK.finditer(CODE_SPAN.sub("", prose)):
        target = match[1] or match[2]
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:: not checked offline
            continue
        file, _, anchor = target.partition("#")
        linked = (path.parent / file).resolve() if file else path
        if not linked.exists():
            broken.append(f"{path.name}: {target} (no such file)")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{path.name}: {target} (no such heading)")
    return broken


# What the commands take


class Parsed(Exception):
    """Raised instead of parsing: carries the parser a `main()` built."""


def parser_of(main: Callable[[list[str]], object]) -> argparse.ArgumentParser:
    """The argparse parser `main` builds, caught as it is about to parse (nothing of `main` runs after that)."""

    def caught(parser, *args, **kwargs):
        raise Parsed(parser)

    with mock.patch.object(argparse.ArgumentParser, "parse_args", caught), pytest.raises(Parsed) as raised:
        main([])
    return raised.value.args[0]


def flags_of(parser: argparse.ArgumentParser, name: str) -> Iterator[tuple[str, set[str]]]:
    """(command, its flags) for `parser` and every subcommand under it."""
    yield name, {o for a in parser._actions for o in a.option_strings if o.startswith("--")} - {"--help"}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub, subparser in action.choices.items():
                yield from flags_of(subparser, f"{name} {sub}")


def app_main() -> Callable[[list[str]], object]:
    spec = importlib.util.spec_from_file_location("thinkedit_app_for_docs", PROJECT / "app.py")
    app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app)
    app.limit_malloc_arenas = app.stop_on_signals = lambda: None  # no process-wide changes in the test process
    return app.main


def script_flags(path: Path) -> set[str]:
    """The flags a script's `add_argument` calls declare (read, not run: scripts may need a GPU)."""
    return {
        arg.value
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "add_argument"
        for arg in node.args
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and arg.value.startswith("--")
    }


@pytest.fixture(scope="module")
def commands() -> dict[str, set[str]]:
    """Every command the docs may show, with its flags: `thinkedit …` (each subcommand), `app.py`,
    `thinkedit.evaluate.official` and `scripts/NAME.py`."""
    found = dict(flags_of(parser_of(cli.main), "thinkedit"))
    found |= dict(flags_of(parser_of(app_main()), "app.py"))
    found |= dict(flags_of(parser_of(official.main), "thinkedit.evaluate.official"))
    found |= {f"scripts/{path.name}": script_flags(path) for path in sorted((PROJECT / "scripts").glob("*.py"))}
    return found


def invoked(words: list[str], commands: dict[str, set[str]]) -> tuple[str, list[str]] | None:
    """(the command of ours that `words` run, the words given to it), or None when it runs another tool's."""
    for i, word in enumerate(words):
        if word == "-m" and i + 1 < len(words):
            if words[i + 1] == "thinkedit.evaluate.official":
                return words[i + 1], words[i + 2 :]
            return subcommand("thinkedit", words[i + 2 :], commands) if words[i + 1] == "thinkedit" else None
        if i == 0 and word == "thinkedit":
            return subcommand("thinkedit", words[1:], commands)
        if word.endswith("app.py") and i and re.search(r"python3?$", words[i - 1]):
            return "app.py", words[i + 1 :]
        if re.fullmatch(r"(\./)?scripts/\w+\.py", word):
            return word.removeprefix("./"), words[i + 1 :]
    return None


def subcommand(name: str, words: list[str], commands: dict[str, set[str]]) -> tuple[str, list[str]]:
    while words and f"{name} {words[0]}" in commands:
        name, words = f"{name} {words[0]}", words[1:]
    return name, words


def shell_commands(line: str) -> Iterator[list[str]]:
    """The words of each command on a shell line (split at &&, ;, | and &; leading VAR=value dropped)."""
    try:
        words = shlex.split(line, comments=True)
    except ValueError:
        words = line.split()
    command: list[str] = []
    for word in [*words, ";"]:
        if word in ("&&", "||", ";", "|", "&"):
            while command and re.fullmatch(r"[A-Z_][A-Z0-9_]*=\S*", command[0]):
                command.pop(0)
            if command:
                yield command
            command = []
        else:
            command.append(word.rstrip(";"))


def flags_in(words: list[str]) -> set[str]:
    return {word.partition("=")[0] for word in words if FLAG.fullmatch(word.partition("=")[0])}


def stale_flags(text: str, commands: dict[str, set[str]]) -> list[str]:
    """Each flag `text` shows that its command does not take: in code blocks and code spans given to a command of
    ours, that command's flags; anywhere else in the prose, any command's of ours."""
    ours = set().union(*commands.values())
    stale = []
    prose, code = split_page(text)
    logical = re.sub(r"\\\n\s*", " ", "\n".join(code)).splitlines()  # backslash continuations joined
    prose_text = "\n".join(prose)  # a code span may go on on the next line
    spans = [" ".join(match[2].split()) for match in CODE_SPAN.finditer(prose_text)]
    for line, in_code in [*((line, True) for line in logical), *((span, False) for span in spans)]:
        for words in shell_commands(line):
            command = invoked(words, commands)
            if command is not None:
                name, given = command
                if name not in commands:
                    stale.append(f"{name} (no such command)")
                    continue
                stale += [f"{flag} (not a flag of {name})" for flag in sorted(flags_in(given) - commands[name])]
            elif not in_code and words[0] not in FOREIGN and not re.search(r"python3?$", words[0]):
                stale += [f"{flag} (no command takes it)" for flag in sorted(flags_in(words) - ours)]
    bare = CODE_SPAN.sub("", prose_text)
    stale += [f"{flag} (no command takes it)" for flag in FLAG.findall(bare) if flag not in ours]
    return stale


# What ThinkEdit reads from the environment


def environment_variables() -> set[str]:
    """Every THINKEDIT_* variable ThinkEdit reads: one per setting, the settings file's, and the API keys of the roles
    that have an OpenAI-compatible backend (`thinkers/openai_chat.py` reads THINKEDIT_<ROLE>_API_KEY)."""
    settings = {
        f"THINKEDIT_{f.name.upper()}" for f in dataclasses.fields(Settings) if f.name not in NOT_FROM_ENVIRONMENT
    }
    tables = {"editor": EDITORS, "thinker": THINKERS, "judge": JUDGES}
    keys = {f"THINKEDIT_{role.upper()}_API_KEY" for role in ROLES if "openai" in tables[role]}
    return settings | keys | {"THINKEDIT_SETTINGS_FILE"}


def unknown_variables(text: str) -> set[str]:
    return set(VARIABLE.findall(text)) - environment_variables()


def all_docs() -> str:
    return "\n".join(page.read_text(encoding="utf-8") for page in PAGES)


# The tests


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_link_and_picture_exists(page):
    assert broken_links(page) == []


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_flag_the_docs_show_exists(page, commands):
    assert stale_flags(page.read_text(encoding="utf-8"), commands) == []


def test_every_flag_of_the_commands_is_documented(commands):
    documented = set(FLAG.findall(all_docs()))
    undocumented = {
        f"{name} {flag}"
        for name, flags in commands.items()
        if not name.startswith("scripts/")  # the scripts are the developers' tools; their --help says the rest
        for flag in flags - documented
    }
    assert undocumented == set()


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_variable_the_docs_name_is_read(page):
    assert unknown_variables(page.read_text(encoding="utf-8")) == set()


def test_every_setting_is_documented():
    assert environment_variables() - set(VARIABLE.findall(all_docs())) == set()


def test_every_variable_named_in_the_code_is_one_thinkedit_reads():
    """So that a variable read outside `Settings` (like THINKEDIT_SETTINGS_FILE) cannot be added unnoticed."""
    sources = [*sorted((PROJECT / "thinkedit").rglob("*.py")), PROJECT / "app.py"]
    named = {name for path in sources for name in re.findall(r"THINKEDIT_[A-Z0-9_]*[A-Z0-9]", path.read_text())}
    assert named - environment_variables() == set()


def table_rows(page: str, heading: str) -> dict[str, str]:
    """The rows of the first table under `heading` in docs/`page`, by the name in their first column."""
    section = (PROJECT / "docs" / page).read_text(encoding="utf-8").split(f"\n{heading}\n", 1)[1]
    lines = section.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    table = list(itertools.takewhile(lambda line: line.startswith("|"), lines[start:]))[2:]  # after the header
    return {match[1]: line for line in table if (match := re.match(r"\| `([^`]+)`", line))}


@pytest.mark.parametrize(
    ("role", "heading", "table"),
    [("editor", "## Editors", EDITORS), ("thinker", "## Thinkers", THINKERS), ("judge", "## Judges", JUDGES)],
)
def test_the_backend_tables_list_every_backend_with_its_default_model(role, heading, table):
    """Every backend the page's dropdowns, `thinkedit backends` and MCP's `list_backends` offer (`backend_rows`)."""
    rows = table_rows("backends.md", heading)
    offered = {row["name"] for row in backend_rows(Settings()) if row["role"] == role}
    assert set(rows) == offered == set(table)
    for name, spec in table.items():
        assert spec.model is None or spec.model in rows[name], f"{name}'s row does not name {spec.model}"


PROJECT_PATH = re.compile(
    r"(?<![\w$/.-])((?:scripts|tests|thinkedit|spaces_config|assets|\.ci)/[\w./-]*\w)(?:::(\w+))?"
)
EXAMPLE_FILES = {"thinkedit/editors/magicbrush.py"}  # the file docs/architecture.md shows how to add


def missing_paths(text: str) -> list[str]:
    """The files of the project (and tests, `file.py::name`) that `text` names but that do not exist."""
    missing = []
    for match in PROJECT_PATH.finditer(text):
        path, test = PROJECT / match[1], match[2]
        if match[1] in EXAMPLE_FILES:
            continue
        if not path.exists():
            missing.append(match[1])
        elif test and not re.search(rf"^def {test}\(", path.read_text(encoding="utf-8"), re.MULTILINE):
            missing.append(match[0])
    return missing


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_file_of_the_project_the_docs_name_exists(page):
    assert missing_paths(page.read_text(encoding="utf-8")) == []


def test_every_field_of_trajectory_json_is_documented():
    page = (PROJECT / "docs" / "runs.md").read_text(encoding="utf-8")
    fields = {*schema.RECORD, *schema.TURN, *schema.SETTINGS, *schema.STAGE, *schema.FEEDBACK}
    assert {name for name in fields if f"`{name}`" not in page and f'"{name}"' not in page} == set()


def test_every_stop_reason_is_in_the_table():
    assert set(table_rows("loop.md", "## Why a run stopped")) == set(loop.STOP_REASONS)


def test_the_checks_fail_on_stale_docs(tmp_path, commands):
    """A link, a heading, a flag and a variable that went stale are each reported."""
    (tmp_path / "other.md").write_text("# Here\n", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text(
        "See [gone](missing.md), [there](other.md#here), [not there](other.md#elsewhere) and ![a picture](x.png).\n"
        "Use `--max-turns 3` and `--no-such-flag`; `THINKEDIT_RUNS_DIR` and `THINKEDIT_NO_SUCH`.\n"
        "```bash\npython -m thinkedit edit --image a.png \\\n    --bench gedit   # eval's flag, not edit's\n"
        "hf download REPO --repo-type dataset   # another tool's\n```\n",
        encoding="utf-8",
    )
    assert broken_links(page) == [
        "page.md: missing.md (no such file)",
        "page.md: other.md#elsewhere (no such heading)",
        "page.md: x.png (no such file)",
    ]
    assert stale_flags(page.read_text(), commands) == [
        "--bench (not a flag of thinkedit edit)",
        "--no-such-flag (no command takes it)",
    ]
    assert unknown_variables(page.read_text()) == {"THINKEDIT_NO_SUCH"}
    named = "`scripts/soak.py`, `scripts/no_such.py`, `tests/test_docs.py::test_the_checks_fail_on_stale_docs`, "
    named += "`tests/test_docs.py::test_no_such_test` and `$HF_HOME/thinkedit/templates/`"
    assert missing_paths(named) == ["scripts/no_such.py", "tests/test_docs.py::test_no_such_test"]
