"""Settings come through two documented paths, each setting in one row of docs/configuration.md.

The source's settings are dlt configuration (the `fulfillment` source's arguments, and the keys
read with `dlt.config.get`); everything else is an environment variable that only
`fulfillment_assets/settings.py` reads. The docs' links are checked here too: the settings moved
between pages, and a link to a heading that is gone fails silently in a browser.
"""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

from fulfillment_assets import settings
from fulfillment_assets.source import fulfillment

PACKAGE = settings.PROJECT_ROOT / "fulfillment_assets"
DOCS = settings.PROJECT_ROOT / "docs"
CONFIGURATION = DOCS / "configuration.md"
# The bundled demo API and the demo job are programs of their own: the demo API's CLI reads the
# variable its `--api-key-env` names, the demo job sets the source's variables for its run.
OWN_PROGRAMS = ("demo_api", "demo")
# Arguments the ingest asset passes itself: a run's config (`full_refresh`), the destination's
# needs (`text_without_nul`) and the unfinished walk it resumes (`walk_resume`), not settings.
PASSED_BY_THE_ASSET = {"full_refresh", "text_without_nul", "walk_resume"}


def _modules() -> list[Path]:
    return [
        path
        for path in PACKAGE.rglob("*.py")
        if path.relative_to(PACKAGE).parts[0] not in OWN_PROGRAMS
    ]


def _reads_environment(tree: ast.AST) -> list[int]:
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr in ("environ", "getenv", "environb")
        and isinstance(node.value, ast.Name)
        and node.value.id == "os"
    ]


def _table_rows(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("|") and "---" not in line]


def _settings_rows() -> list[str]:
    return _table_rows(CONFIGURATION.read_text().split("## Outgrowing one machine")[0])


def _environment_variables_of_settings_module() -> set[str]:
    tree = ast.parse((PACKAGE / "settings.py").read_text())
    pattern = re.compile(r"^(FULFILLMENT_[A-Z_]+|DESTINATION__[A-Z_]+)$")
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and pattern.match(node.value)
    }


DLT_CONFIG_GET = re.compile(r'dlt\.config\.get\(\s*f?"sources\.\{?[\w.]+\}?\.(\w+)"')


def _dlt_config_keys() -> set[str]:
    """`dlt.config.get("sources.fulfillment.<key>")` anywhere in the package."""
    return {key for path in _modules() for key in DLT_CONFIG_GET.findall(path.read_text())}


def test_only_the_settings_module_reads_the_environment() -> None:
    readers = {
        str(path.relative_to(PACKAGE)): lines
        for path in _modules()
        if (lines := _reads_environment(ast.parse(path.read_text())))
    }
    assert readers == {"settings.py": readers.get("settings.py", [])}
    assert readers["settings.py"], "settings.py reads the environment: the test looks for it"


def test_every_environment_variable_is_one_row_with_a_default() -> None:
    variables = _environment_variables_of_settings_module()
    assert {"FULFILLMENT_DATA_DIR", "FULFILLMENT_ALERT_WEBHOOK_URL"} <= variables  # the scan works
    rows = _settings_rows()
    for variable in variables:
        matching = [row for row in rows if f"`{variable}`" in row]
        assert len(matching) == 1, f"{variable}: {len(matching)} rows in {CONFIGURATION.name}"
        default = matching[0].strip().strip("|").split("|")[-1].strip()
        assert default, f"{variable}: no default in {CONFIGURATION.name}"


def test_every_setting_of_the_source_is_one_row_with_a_default() -> None:
    arguments = set(inspect.signature(fulfillment).parameters) - PASSED_BY_THE_ASSET
    keys = arguments | _dlt_config_keys()
    assert "max_delete_fraction" in keys and "page_limit" in keys  # both kinds found
    rows = _settings_rows()
    for key in keys:
        variable = f"SOURCES__FULFILLMENT__{key.upper()}"
        matching = [row for row in rows if f"`{variable}`" in row]
        assert len(matching) == 1, f"{key}: {len(matching)} rows in {CONFIGURATION.name}"
        assert f"`[sources.fulfillment] {key}`" in matching[0], key
        assert matching[0].strip().strip("|").split("|")[-1].strip(), f"{key}: no default"


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_link_between_the_docs_reaches_its_page_and_heading() -> None:
    pages = [settings.PROJECT_ROOT / "README.md", *DOCS.glob("*.md")]
    broken = []
    for page in pages:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if re.match(r"^[a-z]+:", target):
                continue  # a URL
            path_part, _, anchor = target.partition("#")
            linked = (page.parent / path_part).resolve() if path_part else page
            if not linked.exists():
                broken.append(f"{page.name}: {target} (no such file)")
            elif anchor and linked.suffix == ".md":
                headings = re.findall(r"^#+ (.+)$", linked.read_text(), flags=re.MULTILINE)
                if anchor not in {_anchor(heading) for heading in headings}:
                    broken.append(f"{page.name}: {target} (no such heading)")
    assert not broken, broken
