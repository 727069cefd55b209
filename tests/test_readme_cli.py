"""The README's command-line synopsis says what `--help` says: every command and every option
of every command is on the command's line, and every option the synopsis names exists: with
the choices it lists, repeatable where it says `[...]...`, required where it is not in brackets.

The commands are read from the click tree (`jobobs.cli.base.main`), not by running them.
"""

import re
from pathlib import Path

import click
import pytest

from jobobs.cli.base import main

README = (Path(__file__).parents[1] / "README.md").read_text()
OPTION = re.compile(r"(?<![\w-])--?[a-zA-Z][\w-]*")
WORD = re.compile(r"[a-z][a-z-]*")


def _synopsis() -> str:
    section = re.search(r"^## Command line\n(.*?)(?=^## |\Z)", README,
                        flags=re.DOTALL | re.MULTILINE)
    assert section, "the README has no '## Command line' section"
    block = re.search(r"```sh\n(.*?)```", section.group(1), flags=re.DOTALL)
    assert block, "the README's '## Command line' has no sh block"
    return block.group(1)


def _entries() -> dict[tuple[str, ...], str]:
    """The synopsis by command path: a line starting with `jobobs` (then the command's
    words) and the lines indented under it, comments left out."""
    entries: dict[tuple[str, ...], str] = {}
    path: tuple[str, ...] | None = None
    for line in _synopsis().splitlines():
        text = re.sub(r"\s#\s.*$", "", line)
        if line.startswith("jobobs"):
            words = text.split()[1:]
            path = ()
            while len(path) < len(words) and WORD.fullmatch(words[len(path)]):
                path = (*path, words[len(path)])
            text = " ".join(words[len(path):])
        elif not line.strip():
            continue
        assert path is not None, f"a synopsis line before the first command: {line!r}"
        entries[path] = f"{entries.get(path, '')} {text}"
    return entries


def _commands(command: click.Command = main,
              path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], click.Command]]:
    found = [(path, command)]
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            if not sub.hidden:
                found += _commands(sub, (*path, name))
    return found


COMMANDS = dict(_commands())
ROOT_OPTIONS = {name for param in main.params for name in param.opts}
OPTIONS = [(path, param) for path, command in COMMANDS.items()
           for param in command.params
           if isinstance(param, click.Option) and not param.hidden
           and not (path and set(param.opts) <= ROOT_OPTIONS)]  # --db: on the root's line


def _label(path: tuple[str, ...]) -> str:
    return " ".join(("jobobs", *path))


def _mentions(text: str) -> list[re.Match]:
    return list(OPTION.finditer(text))


def _brackets(text: str, index: int) -> tuple[int, int] | None:
    """The innermost [...] around ``text[index]``: where it opens and closes, or None."""
    depth = 0
    for start in range(index, -1, -1):
        if text[start] == "]":
            depth += 1
        elif text[start] == "[":
            if depth == 0:
                break
            depth -= 1
    else:
        return None
    depth = 0
    for end in range(start, len(text)):
        if text[end] == "[":
            depth += 1
        elif text[end] == "]":
            depth -= 1
            if depth == 0:
                return start, end
    raise AssertionError(f"an unclosed [ in {text!r}")


def _param(path: tuple[str, ...], name: str) -> click.Parameter | None:
    for param in COMMANDS[path].params:
        if name in param.opts or name in param.secondary_opts:
            return param
    return None


def test_the_synopsis_is_read():
    entries = _entries()
    assert ("serve",) in entries and ("watermark", "show") in entries
    assert "--stall-timeout" in entries[("serve",)]


@pytest.mark.parametrize("path", [path for path, command in COMMANDS.items()
                                  if not isinstance(command, click.Group)], ids=_label)
def test_every_command_has_a_line(path):
    assert path in _entries(), f"README's synopsis has no line for `{_label(path)}`"


def test_every_line_is_a_command():
    unknown = [_label(path) for path in _entries() if path not in COMMANDS]
    assert not unknown, f"README's synopsis names commands that do not exist: {unknown}"


@pytest.mark.parametrize("path, param", OPTIONS,
                         ids=[f"{_label(path)} {param.opts[0]}" for path, param in OPTIONS])
def test_every_option_is_on_its_commands_line(path, param):
    mentioned = {m.group() for m in _mentions(_entries().get(path, ""))}
    assert mentioned & set(param.opts), \
        f"README's synopsis of `{_label(path)}` lacks {param.opts[0]}"


@pytest.mark.parametrize("path", sorted(_entries()), ids=_label)
def test_every_option_on_a_line_exists_as_written(path):
    assert path in COMMANDS, f"no command `{_label(path)}`"
    text = _entries()[path]
    for mention in _mentions(text):
        name = mention.group()
        if name == "--help":
            continue
        param = _param(path, name)
        assert param is not None, f"`{_label(path)}` has no option {name}"
        around = _brackets(text, mention.start())
        if param.required:
            assert around is None, f"`{_label(path)} {name}` is required, not [optional]"
        if around is not None:
            repeated = text[around[1] + 1:].startswith("...")
            assert repeated == bool(param.multiple), (
                f"`{_label(path)} {name}`: " +
                ("repeatable, write [...]..." if param.multiple else "not repeatable"))
        choices = re.match(r"\s+([a-z0-9-]+(?:\|[a-z0-9-]+)+)(?=[\]\s]|$)",
                           text[mention.end():])
        if choices and isinstance(param.type, click.Choice):
            assert choices.group(1).split("|") == list(param.type.choices), \
                f"`{_label(path)} {name}` takes {'|'.join(param.type.choices)}"
