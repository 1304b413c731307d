"""Command groups whose commands are built when first asked for, not when the group is.

Typer turns every registered function into a Click command (reading its signature and
annotations) when it builds a group, the whole tree at once: ~200 M instructions for idsvc's 76
commands, paid by ``idsvc verify`` and ``idsvc --help`` alike, which use one command or only
the groups' own help lines. Here a group's ``commands`` is a ``BuiltOnUse`` mapping: its
names are known up front (``list_commands``, the help listing), and each command is built by
Typer's own builders (``get_command_from_info``, ``get_group_from_info``) the first time it is
read. A sub-group is built empty by the same builder, so its help line, callback and settings
are exactly Typer's, then given the same lazy mapping over its own commands.

The root group (idsvc/cli/app.py) also imports the command modules lazily: ``ROOT_COMMANDS``
says which modules register each root entry.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, MutableMapping

from typer import _click  # Typer's own Click: the types its groups hold
from typer.main import Typer, get_command_from_info, get_command_name, get_group_from_info
from typer.models import CommandInfo, TyperInfo

Build = Callable[[str], _click.Command | None]


class BuiltOnUse(MutableMapping[str, _click.Command]):
    """A group's commands by name, in listing order, each built by ``build`` when first read.

    Iterating gives the names without building anything; reading a value builds that entry
    alone. ``TyperGroup.list_commands`` reads the values (``items()``), so a group listing its
    own help builds its commands, which that screen shows anyway."""

    def __init__(self, names: list[str], build: Build) -> None:
        self._names = list(names)
        self._build = build
        self._built: dict[str, _click.Command] = {}

    def __getitem__(self, name: str) -> _click.Command:
        found = self._built.get(name)
        if found is None:
            if name not in self._names:
                raise KeyError(name)
            found = self._build(name)
            if found is None:
                raise KeyError(name)
            self._built[name] = found
        return found

    def __setitem__(self, name: str, command: _click.Command) -> None:
        if name not in self._names:
            self._names.append(name)
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        self._names.remove(name)
        self._built.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


def command_name(info: CommandInfo) -> str:
    """The name Typer gives a registered command (``get_command_from_info``'s rule)."""
    assert info.callback is not None, "a command has a callback"
    return info.name or get_command_name(info.callback.__name__)


def entries(typer: Typer) -> dict[str, CommandInfo | TyperInfo]:
    """What ``typer`` registered, by name, in Typer's order: commands, then groups."""
    found: dict[str, CommandInfo | TyperInfo] = {
        command_name(c): c for c in typer.registered_commands
    }
    for group in typer.registered_groups:
        assert isinstance(group.name, str), "every idsvc sub-group is added with a name"
        found[group.name] = group
    return found


def build_entry(root: Typer, entry: CommandInfo | TyperInfo) -> _click.Command:
    """One registered command, or a sub-group whose own commands come on use, built as Typer
    builds it under ``root`` (its exception and markup settings)."""
    if isinstance(entry, CommandInfo):
        return get_command_from_info(
            entry,
            pretty_exceptions_short=root.pretty_exceptions_short,
            rich_markup_mode=root.rich_markup_mode,
        )
    source = entry.typer_instance
    assert isinstance(source, Typer), "a sub-group has its Typer"
    # Typer's builder on a copy with nothing registered: the group itself (help, callback,
    # options), none of its commands; they come from the real registrations below.
    bare = copy.copy(source)
    bare.registered_commands = []
    bare.registered_groups = []
    shell = copy.copy(entry)
    shell.typer_instance = bare
    group = get_group_from_info(
        shell,
        pretty_exceptions_short=root.pretty_exceptions_short,
        rich_markup_mode=root.rich_markup_mode,
        suggest_commands=root.suggest_commands,
    )
    own = entries(source)
    group.commands = BuiltOnUse(list(own), lambda name: build_entry(root, own[name]))
    return group
