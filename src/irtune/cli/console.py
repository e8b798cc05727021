"""Where commands print their results (errors and logs go to stderr, from `cli.app`)."""

from __future__ import annotations

import sys

from rich.console import Console

# Piped output (logs, CI) gets a wide fixed layout instead of rich's 80-column fallback.
out = Console(width=None if sys.stdout.isatty() else 160)
