"""Every exception class of the project, and which of them an error table leaves unplaced.

Used by the tests of the two error tables (the CLI's exit codes in idsvc/cli/errors.py and the
HTTP answers in mobile_api/problems.py): a new error class must be placed in both on purpose,
not fall through to the root's catch-all row.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterator
from functools import cache

PACKAGES = ("idsvc", "cardio", "keys", "mobile_api")


@cache
def import_everything() -> None:
    """Import every module of the project, so that every exception class exists. A module that
    does not import fails the caller: its classes would otherwise go unchecked."""
    for top in PACKAGES:
        package = importlib.import_module(top)
        for found in pkgutil.walk_packages(package.__path__, f"{top}."):
            if ".migrations." in f"{found.name}.":  # Alembic's scripts, loaded by Alembic
                continue
            importlib.import_module(found.name)


def subclasses(root: type[BaseException]) -> Iterator[type[BaseException]]:
    """Every class below ``root``, each once."""
    seen: set[type[BaseException]] = set()
    stack = list(root.__subclasses__())
    while stack:
        kind = stack.pop()
        if kind not in seen:
            seen.add(kind)
            yield kind
            stack.extend(kind.__subclasses__())


def unplaced(
    root: type[BaseException],
    resolve: Callable[[type[BaseException]], type[BaseException] | None],
) -> list[str]:
    """The classes below ``root`` that ``resolve`` (a table's nearest-listed-class lookup) does
    not place, or places only through ``root``'s own catch-all row."""
    return sorted(
        f"{kind.__module__}.{kind.__qualname__}"
        for kind in subclasses(root)
        if resolve(kind) in (None, root)
    )
