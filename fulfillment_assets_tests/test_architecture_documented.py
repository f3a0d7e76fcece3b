"""Every module of the package is named in docs/architecture.md, under its own folder.

The module list in "How it works" is where a newcomer learns which module holds what; a module
added without a line there is one they cannot find. Each bullet of that section starts with the
folder (or module) it describes, `fulfillment_assets/<folder>/`, and names that folder's modules
as `name.py`: a module counts as named only in a bullet of its own folder (`assets.py`, `sql.py`
and `progress.py` are in two folders each). Reads files only: no Dagster, no dlt.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import PurePosixPath

from fulfillment_assets import settings

PACKAGE = settings.PROJECT_ROOT / "fulfillment_assets"
ARCHITECTURE = settings.PROJECT_ROOT / "docs" / "architecture.md"
SECTION = "## How it works"
# A bullet's leading path: `fulfillment_assets/source/` or `fulfillment_assets/settings.py`.
_BULLET = re.compile(r"^- `(fulfillment_assets/[\w/]*?(?:\w+\.py)?)`")
_MODULE = re.compile(r"`(\w+\.py)`")


def _named_modules() -> dict[PurePosixPath, set[str]]:
    """Folder (relative to the package) -> the module files its bullets name."""
    text = ARCHITECTURE.read_text()
    section = text[text.index(SECTION) + len(SECTION) :]
    section = section[: section.index("\n## ")] if "\n## " in section else section
    named: dict[PurePosixPath, set[str]] = defaultdict(set)
    folder: PurePosixPath | None = None
    for line in section.splitlines():
        bullet = _BULLET.match(line)
        if bullet:
            path = PurePosixPath(bullet.group(1)).relative_to("fulfillment_assets")
            folder = path.parent if path.suffix == ".py" else path
            if path.suffix == ".py":
                named[folder].add(path.name)
        elif not line.startswith("  "):  # a bullet's text ends at the next unindented line
            folder = None
        if folder is not None:
            named[folder].update(_MODULE.findall(line))
    return named


def test_every_module_of_the_package_is_named_in_the_architecture_page() -> None:
    named = _named_modules()
    modules = sorted(
        path.relative_to(PACKAGE)
        for path in PACKAGE.rglob("*.py")
        if path.name != "__init__.py" and "__pycache__" not in path.parts
    )
    assert len(modules) > 60, modules  # the package was found
    missing = [
        str(module)
        for module in modules
        if module.name not in named.get(PurePosixPath(module.parent.as_posix()), set())
    ]
    assert not missing, (
        f"modules not named in {ARCHITECTURE.name}'s '{SECTION[3:]}' under their folder's "
        f"bullet (`fulfillment_assets/<folder>/`): {missing}"
    )


def test_a_module_counts_as_named_under_its_own_folder_only() -> None:
    # The parser is what the first test relies on: a module named only under another folder
    # does not count, and one named under its own does.
    named = _named_modules()
    assert "http.py" in named[PurePosixPath("source")]
    assert "assets.py" in named[PurePosixPath("models")]
    assert "http.py" not in named[PurePosixPath("ingest")]
    assert "settings.py" in named[PurePosixPath(".")]
