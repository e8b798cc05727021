"""irtune's command line: the Typer app over the Python API (irtune.api), and `main`, which
turns errors, signals and a full disk into one line and an exit code."""

from __future__ import annotations

import errno
import logging
import os
import shlex
import signal
import sys
from collections.abc import Callable
from typing import NoReturn

import click
import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from typer.main import get_command

from irtune.cli import data, evaluate, generate, results, study, train
from irtune.cli.flags import command_flags
from irtune.core.allocator import reexec_with_mimalloc
from irtune.errors import IrtuneError, ParameterError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Evaluate and honestly fine-tune embedding models for retrieval.",
)
data_app = typer.Typer(no_args_is_help=True, help="BEIR datasets: fetch and inspect.")
app.add_typer(data_app, name="data")
data_app.command("fetch")(data.data_fetch)
data_app.command("info")(data.data_info)
data_app.command("import")(data.data_import)
app.command("eval")(evaluate.eval_command)
app.command("generate")(generate.generate_command)
app.command("split")(data.split_command)
app.command("train")(train.train_command)
app.command("compare")(results.compare_command)
app.command("report")(results.report_command)
app.command("inspect")(results.inspect_command)
app.command("export")(results.export_command)
app.command("push")(train.push_command)
app.command("run")(study.run_command)


def _quiet_libraries() -> None:
    """Through the environment, read when transformers is imported (if it ever is: compare
    and report never import it, and must not pay seconds to quiet it)."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def _click_errors() -> tuple[type[click.ClickException], ...]:
    """Usage-error classes: typer raises those of its bundled click (`typer._click`, pinned
    in pyproject), commands built on plain click raise click's own. Both have `show()` and
    `exit_code`; the bundled one is typed here as click's."""
    bundled = getattr(typer, "_click", click)
    return tuple({click.ClickException, bundled.ClickException})


# failures of the machine, not of irtune: disk full, quota, file size limit, read-only or
# forbidden paths. One line naming the path, exit 1; other OS errors are bugs and show a traceback.
ENVIRONMENT_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM}
)


def flag_names(args: list[str]) -> Callable[[str], str]:
    """parameter -> the flag of irtune's command in `args` that sets it (`cli.flags.command_flags`)."""
    return command_flags(get_command(app), args)


def _print_error(console: Console, message: str) -> None:
    console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)


# commands that train or encode: they run under mimalloc (irtune.core.allocator)
HEAVY_COMMANDS = frozenset({"run", "train", "eval", "generate"})


_terminated = False  # SIGTERM arrived (else a stop is Ctrl-C)


def _on_sigterm(signum: int, frame: object) -> None:
    """SIGTERM (kill, a scheduler's time limit) unwinds like Ctrl-C: the folders a command
    created and left empty are removed, and it says so in one line."""
    global _terminated
    _terminated = True
    raise KeyboardInterrupt


def _resume_hint(args: list[str]) -> str:
    """`train` continues an unfinished --out only when told to, under the options it started
    with: the hint is the exact command that resumes it."""
    if args[:1] == ["train"] and "--resume" not in args:
        return f"resume with: irtune {shlex.join([*args, '--resume'])}"
    return "re-run the same command to resume"


def _stopped(stderr: Console) -> NoReturn:
    word, code = ("terminated", 143) if _terminated else ("interrupted", 130)
    stderr.print(
        f"{word}: finished work (cached embeddings, completed stages and epochs) is kept; "
        + escape(_resume_hint(sys.argv[1:])),
        highlight=False,
        soft_wrap=True,
    )
    sys.exit(code)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] in HEAVY_COMMANDS:
        reexec_with_mimalloc()
    # irtune's own progress messages (stages, epochs, selection) at INFO; other libraries' warnings
    handler = RichHandler(console=Console(stderr=True), show_path=False, show_time=False, level=logging.INFO)
    logging.basicConfig(level=logging.WARNING, format="%(message)s", handlers=[handler])
    logging.getLogger("irtune").setLevel(logging.INFO)
    _quiet_libraries()
    stderr = Console(stderr=True)
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        code = app(standalone_mode=False)  # typer turns Ctrl-C into the exit code 130
    except ParameterError as exc:
        _print_error(stderr, exc.naming(flag_names(sys.argv[1:])))
        sys.exit(2)
    except IrtuneError as exc:
        _print_error(stderr, str(exc))
        sys.exit(2)
    except KeyboardInterrupt:
        _stopped(stderr)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:  # end of input at a prompt
        sys.exit(1)
    except _click_errors() as exc:
        exc.show()  # the usage line and one "Error:" line
        sys.exit(exc.exit_code)
    except OSError as exc:
        if exc.errno not in ENVIRONMENT_ERRNOS:
            raise
        where = escape(f"{exc.filename}: ") if exc.filename else ""
        stderr.print(
            f"[bold red]error:[/] {where}{exc.strerror}; nothing half-written was kept: free space "
            "(or fix the permissions) and re-run to resume",
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(1)
    if code == 130:
        _stopped(stderr)
    if isinstance(code, int) and code:
        sys.exit(code)
