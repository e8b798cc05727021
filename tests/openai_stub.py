"""A local stand-in for an OpenAI-compatible endpoint (vLLM, Ollama, llama.cpp server...).

It answers `/v1/chat/completions` and `/v1/completions` with a query made from the prompt's
last words, after playing a script of faults first (HTTP errors, Retry-After, malformed JSON,
slow replies), and records every request with its headers, so tests see what the client did.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from hub_stub import serving


@dataclass(frozen=True)
class Fault:
    status: int = 200
    body: bytes | None = None  # None: the normal answer
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


def answer_for(prompt: str) -> str:
    """A deterministic 'query' about the document in the prompt: its first four words as a question."""
    document = prompt.rsplit("Passage:", 1)[-1].rsplit("Document:", 1)[-1]
    words = re.findall(r"[A-Za-z]+", document)[:4]
    return "what about " + " ".join(words).lower() + "?"


class OpenAIStub(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, faults: list[Fault]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.faults = list(faults)
        self.lock = threading.Lock()
        self.requests: list[dict] = []

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/v1"

    def next_fault(self) -> Fault:
        with self.lock:
            return self.faults.pop(0) if self.faults else Fault()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: OpenAIStub

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        request = json.loads(self.rfile.read(length) or b"{}")
        with self.server.lock:
            headers = {k.lower(): v for k, v in self.headers.items()}
            self.server.requests.append({"path": self.path, "headers": headers, "body": request})
        fault = self.server.next_fault()
        if fault.delay_s:
            time.sleep(fault.delay_s)
        body = fault.body if fault.body is not None else self._answer(request)
        try:
            self.send_response(fault.status)
            for name, value in {"Content-Type": "application/json", **fault.headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client timed out and left

    def _answer(self, request: dict) -> bytes:
        if self.path.endswith("/chat/completions"):
            text = answer_for(request["messages"][-1]["content"])
            choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
            kind = "chat.completion"
        else:
            choice = {"index": 0, "text": answer_for(request["prompt"]), "finish_reason": "stop"}
            kind = "text_completion"
        reply = {
            "id": "x",
            "object": kind,
            "created": 0,
            "model": request.get("model", ""),
            "choices": [choice],
        }
        return json.dumps(reply).encode()

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def serve_openai(faults: list[Fault] | None = None) -> Iterator[OpenAIStub]:
    with serving(OpenAIStub(faults or [])) as server:
        yield server
