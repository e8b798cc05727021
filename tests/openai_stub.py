"""A local stand-in for an OpenAI-compatible endpoint (vLLM, Ollama, llama.cpp server...).

It answers `/v1/chat/completions` and `/v1/completions` with a query made from the prompt's
last words, after playing a script of faults first (HTTP errors, Retry-After, malformed JSON,
slow replies), and records every request with its headers, so tests see what the client did.
"""

from __future__ import annotations

import json
import re
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from hub_stub import serving


@dataclass(frozen=True)
class Fault:
    status: int = 200
    body: bytes | None = None  # None: the normal answer
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    drip_s: float = 0.0  # seconds between single bytes of the whole response, status line included
    echo_authorization: bool = False  # the body repeats the request's Authorization header
    on_request: Callable[[], None] | None = None  # called as the request arrives (e.g. a Ctrl-C)


def answer_for(prompt: str) -> str:
    """A deterministic 'query' about the document in the prompt: its first four words as a question."""
    document = prompt.rsplit("Passage:", 1)[-1].rsplit("Document:", 1)[-1]
    words = re.findall(r"[A-Za-z]+", document)[:4]
    return "what about " + " ".join(words).lower() + "?"


class OpenAIStub(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, faults: list[Fault], certificate: tuple[Path, Path] | None = None) -> None:
        """`certificate`: (certificate file, key file) to answer over HTTPS instead of HTTP."""
        super().__init__(("127.0.0.1", 0), _Handler)
        self.faults = list(faults)
        self.lock = threading.Lock()
        self.requests: list[dict] = []
        self.scheme = "http"
        if certificate:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*certificate)
            self.socket = context.wrap_socket(self.socket, server_side=True)
            self.scheme = "https"

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"{self.scheme}://{host}:{port}/v1"

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
        if fault.on_request:
            fault.on_request()
        if fault.delay_s:
            time.sleep(fault.delay_s)
        body = fault.body if fault.body is not None else self._answer(request)
        if fault.echo_authorization:
            body = json.dumps(
                {"error": {"message": f"invalid header {headers.get('authorization')}"}}
            ).encode()
        try:
            if fault.drip_s:
                self._drip(fault, body)
                return
            self.send_response(fault.status)
            for name, value in {"Content-Type": "application/json", **fault.headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass  # the client timed out and left

    def _drip(self, fault: Fault, body: bytes) -> None:
        head = (
            f"HTTP/1.1 {fault.status} X\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        )
        for byte in (head + "\r\n").encode() + body:
            self.wfile.write(bytes([byte]))
            self.wfile.flush()
            time.sleep(fault.drip_s)

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
def serve_openai(
    faults: list[Fault] | None = None, certificate: tuple[Path, Path] | None = None
) -> Iterator[OpenAIStub]:
    with serving(OpenAIStub(faults or [], certificate)) as server:
        yield server
