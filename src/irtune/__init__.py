"""irtune: evaluate and honestly fine-tune text-embedding models for retrieval.

The Python API (see `irtune.api`): `fetch_dataset`, `load_dataset`, `dataset_info`, `import_data`,
`split`, `load_model`, `generate_queries`, `evaluate`, `frontier`, `train`, `compare`, `report`,
`inspect`, `export`, `push`, `run`. They are imported on first use, so `import irtune` stays light.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("irtune")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = [
    "__version__",
    "compare",
    "dataset_info",
    "evaluate",
    "export",
    "fetch_dataset",
    "frontier",
    "generate_queries",
    "import_data",
    "inspect",
    "load_dataset",
    "load_model",
    "push",
    "report",
    "run",
    "split",
    "train",
]

if TYPE_CHECKING:
    from irtune.api import (
        compare,
        dataset_info,
        evaluate,
        export,
        fetch_dataset,
        frontier,
        generate_queries,
        import_data,
        inspect,
        load_dataset,
        load_model,
        push,
        report,
        run,
        split,
        train,
    )


def __getattr__(name: str) -> Any:
    if name in __all__:
        from irtune import api

        return getattr(api, name)
    raise AttributeError(f"module 'irtune' has no attribute {name!r}")
