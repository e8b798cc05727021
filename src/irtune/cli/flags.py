"""Parameter -> flag: library errors name the API's parameters (`errors.ParameterError`); the
command line shows the flag the user typed instead."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# API parameters that commands spell otherwise: the names of the command parameters that set them
COMMAND_PARAMETERS = {
    "datasets": ("dataset", "train"),
    "name_or_path": ("dataset",),
    "dataset": ("dataset", "train"),
    "split_files": ("heldout", "split_file"),
    "index_params": ("index_param",),
    "out": ("out_dir", "out_path"),
    "columns": ("col",),
    "generator_model": ("model",),
    "format": ("format_",),
    "timeout_s": ("timeout",),
    "max_retries": ("retries",),
    "max_tokens": ("max_new_tokens",),
}


def command_flags(root: object, args: list[str]) -> Callable[[str], str]:
    """parameter -> the flag that sets it in the command `args` name under `root` (a click
    command, typer's bundled click or click's own): `batch_size` -> `--batch-size`, `out_dir`
    -> `--out`; a parameter no flag sets keeps its name (a study's keys in `irtune run`)."""
    command: Any = root
    for word in args:
        if word not in getattr(command, "commands", {}):
            break
        command = command.commands[word]
    flags = {
        param.name: max((o for o in param.opts if o.startswith("--")), key=len)
        for param in getattr(command, "params", [])
        if param.param_type_name == "option" and any(o.startswith("--") for o in param.opts)
    }

    def flag(parameter: str) -> str:
        found = (flags[n] for n in (parameter, *COMMAND_PARAMETERS.get(parameter, ())) if n in flags)
        return next(found, parameter)

    return flag
