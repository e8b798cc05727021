"""`irtune push`: a fine-tuned model folder to a Hugging Face Hub repo, card first updated
with its held-out test results.

huggingface_hub does the talking (create_repo, upload_folder); the token comes from the
environment (HF_TOKEN, or huggingface_hub's own login file), never from the command line, and
is never printed: errors are reported by their status and the Hub's message only."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path

from irtune.errors import IrtuneError, invalid
from irtune.models.lineage import TRAINING_METADATA
from irtune.results.schema import read_results
from irtune.training.card import add_test_results


def _transport_errors() -> tuple[type[BaseException], ...]:
    """Connection failures as huggingface_hub's HTTP client raises them (httpx2 or httpx
    depending on its version; neither is an OSError)."""
    errors: list[type[BaseException]] = [OSError]
    for name in ("httpx2", "httpx"):
        try:
            errors.append(importlib.import_module(name).HTTPError)
        except (ImportError, AttributeError):
            continue
    return tuple(errors)


# what a model folder may hold that is not the model: the training work folder (checkpoints,
# optimizer state) and lock files
IGNORED = ["_irtune_work/**", "checkpoint-*/**", ".lock*", "*.lock"]


def push_model(model_dir: Path, repo_id: str, *, results: Sequence[Path] = (), private: bool = False) -> str:
    """Upload `model_dir` to `repo_id` (created if missing); returns the commit URL."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError
    from huggingface_hub.utils import get_token

    if not (model_dir / TRAINING_METADATA).is_file():
        raise IrtuneError(
            f"{model_dir}: not an irtune model folder (no {TRAINING_METADATA}); train one first"
        )
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise invalid("repo_id", "{value!r}: expected OWNER/NAME", value=repo_id)
    loaded = [read_results(p) for p in results]  # checked before anything is written or sent
    if get_token() is None:
        raise IrtuneError("no Hugging Face token: set HF_TOKEN in the environment (or run `hf auth login`)")
    if loaded:
        add_test_results(model_dir, loaded)
    api = HfApi()
    try:
        api.create_repo(repo_id, private=True if private else None, exist_ok=True, repo_type="model")
        commit = api.upload_folder(
            folder_path=model_dir,
            repo_id=repo_id,
            repo_type="model",
            ignore_patterns=IGNORED,
            commit_message=f"irtune: upload {model_dir.name}",
        )
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "no response"
        message = (exc.server_message or str(exc).splitlines()[0]).strip()
        raise IrtuneError(f"push to {repo_id} failed ({status}): {message}") from None
    except ValueError as exc:  # the Hub refused the card's metadata
        raise IrtuneError(f"push to {repo_id} failed: {str(exc).splitlines()[0]}") from None
    except _transport_errors() as exc:  # connection refused, DNS, TLS, timeouts
        raise IrtuneError(
            f"push to {repo_id} failed: cannot reach the Hub ({exc.__class__.__name__})"
        ) from None
    return str(commit.commit_url)
