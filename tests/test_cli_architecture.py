"""The command line is a layer over the API: every job goes through `irtune.api`, so the CLI
and Python users get the same checks and the same numbers. Its modules' imports are parsed
(lazy ones too; those under TYPE_CHECKING only name types) and held to an allow-list."""

from __future__ import annotations

import ast
from pathlib import Path

CLI = Path(__file__).resolve().parent.parent / "src" / "irtune" / "cli"

# what a layer over the API may import: the API, its own modules, presentation, errors
ALLOWED_MODULES = {
    "irtune.api",
    "irtune.errors",
    "irtune.core.allocator",  # the re-exec under mimalloc at start
    "irtune.core.configs",  # reading a --config TOML
    "irtune.reporting.tables",
    "irtune.reporting.seeds",
    "irtune.reporting.queries_console",
}
# Names still taken from around the API, each for a reason the API does not cover yet: remove an
# entry when it does (a stale entry fails below, so the list only shrinks).
AROUND_THE_API = {
    ("irtune.training.config", "TrainConfig"): "the train command's flags are generated from it",
    ("irtune.retrieval.registry", "retriever_names"): "--retriever's help lists the registry",
    ("irtune.generation.filters", "FilterSettings"): "generate_queries' `filters` takes this type",
    ("irtune.results.compare", "load_comparisons"): "api.compare has no default baseline (a sweep's)",
    ("irtune.core.checks", "output_file"): "compare --json: api.compare writes nothing",
    ("irtune.core.files", "write_json_atomic"): "compare --json: api.compare writes nothing",
    ("irtune.results.tracking", "Tracking"): "eval/compare --mlflow: only api.train takes tracking",
    ("irtune.results.tracking", "log_results"): "eval --mlflow: api.evaluate/frontier log nothing",
    ("irtune.results.tracking", "log_comparisons"): "compare --mlflow: api.compare logs nothing",
    ("irtune.data.beir", "load_qrels"): "import's summary: api.import_data returns no manifest",
    ("irtune.data.import_manifest", "qrels_summary"): "import's summary: api.import_data returns no manifest",
}


def _type_checking_blocks(tree: ast.Module) -> set[int]:
    """ids of the import nodes under `if TYPE_CHECKING:`."""
    return {
        id(child)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
        for statement in node.body
        for child in ast.walk(statement)
    }


def imported_names(source: str) -> set[tuple[str, str]]:
    """(module, name) of every irtune import that runs (`import irtune.x`: name "")."""
    tree = ast.parse(source)
    typing_only = _type_checking_blocks(tree)
    found: set[tuple[str, str]] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found |= {(alias.name, "") for alias in node.names if alias.name.startswith("irtune")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("irtune"):
            found |= {(node.module, alias.name) for alias in node.names}
    return found


def outside_the_allow_list(names: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """Imports a CLI module may not make: constants (UPPER_CASE names: file names, keys) do no
    work, and `from irtune import api` is the API itself."""
    return {
        (module, name)
        for module, name in names
        if module not in ALLOWED_MODULES
        and not module.startswith("irtune.cli")
        and (module, name) != ("irtune", "api")
        and not name.isupper()
        and (module, name) not in AROUND_THE_API
    }


def cli_imports() -> dict[str, set[tuple[str, str]]]:
    return {path.name: imported_names(path.read_text("utf-8")) for path in sorted(CLI.glob("*.py"))}


def test_the_cli_calls_the_api_and_nothing_else_that_does_work():
    found = {module: outside_the_allow_list(names) for module, names in cli_imports().items()}
    assert {module: names for module, names in found.items() if names} == {}


def test_every_exception_to_the_rule_is_still_needed():
    used = set().union(*cli_imports().values())
    assert set(AROUND_THE_API) - used == set()


def test_the_check_sees_an_import_around_the_api():
    source = """
from typing import TYPE_CHECKING
from irtune import api
from irtune.data.splits import LEFT_OUT_FOR_CLUSTERS
if TYPE_CHECKING:
    from irtune.results.compare import Comparison

def command():
    from irtune.data.download import fetch_dataset
    import irtune.study.runner
"""
    assert outside_the_allow_list(imported_names(source)) == {
        ("irtune.data.download", "fetch_dataset"),
        ("irtune.study.runner", ""),
    }
