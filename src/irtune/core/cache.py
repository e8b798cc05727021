"""Where irtune's caches live: embeddings, mined negatives and models installed in parts, under
one folder (IRTUNE_CACHE_DIR, else the user's cache directory)."""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_cache_dir

CACHE_DIR_ENV = "IRTUNE_CACHE_DIR"


def default_cache_dir() -> Path:
    env = os.environ.get(CACHE_DIR_ENV)
    return Path(env) if env else Path(user_cache_dir("irtune")) / "cache"
