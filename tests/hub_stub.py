"""A tiny stand-in for the Hugging Face Hub HTTP API, serving local folders as model repos.

Tests point HF_ENDPOINT at it so that the real huggingface_hub download code runs (revision
lookup, tree listing, HEAD + GET of `resolve/` URLs, cache snapshots) without any network.
Only what huggingface_hub asks for when downloading a model is implemented: the repo's
revision info, its recursive tree, and its files; any other path is a 404 and is recorded in
`unexpected`, so that a test notices when the client starts asking for something new.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TypeVar
from urllib.parse import unquote, urlsplit

REQUEST_TIMEOUT_S = 10  # a stuck client connection cannot hold a handler thread for longer


def git_blob_id(data: bytes) -> str:
    """The id git gives a file's content, which is what the Hub reports as a file's `oid`."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def folder_files(folder: Path) -> dict[str, bytes]:
    """Repo path ('/'-separated) -> content of every file under `folder`."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def commit_id(files: dict[str, bytes]) -> str:
    """A stable 40-hex commit id for a set of files, so that the same folder is the same commit."""
    digest = hashlib.sha1()
    for path, data in sorted(files.items()):
        digest.update(path.encode() + b"\0" + git_blob_id(data).encode())
    return digest.hexdigest()


def tree_entries(files: dict[str, bytes]) -> list[dict]:
    """The recursive tree listing of `/api/models/{repo}/tree/{rev}`: folders, then files."""
    folders = sorted({"/".join(path.split("/")[:i]) for path in files for i in range(1, path.count("/") + 1)})
    return [{"type": "directory", "path": f, "oid": "0" * 40, "size": 0} for f in folders] + [
        {"type": "file", "path": p, "oid": git_blob_id(data), "size": len(data)} for p, data in files.items()
    ]


@dataclass
class HubRepo:
    """One model (or dataset) repo at one commit; `main` is its only branch."""

    repo_id: str
    files: dict[str, bytes]
    kind: str = "models"  # or "datasets"
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        self.sha = commit_id(self.files)

    def knows(self, revision: str) -> bool:
        return revision in ("main", self.sha)


@dataclass
class Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def json_reply(data: object, headers: dict[str, str] | None = None) -> Reply:
    return Reply(200, json.dumps(data).encode(), {"Content-Type": "application/json", **(headers or {})})


def error_reply(code: str, headers: dict[str, str] | None = None) -> Reply:
    """A Hub error: huggingface_hub tells a missing repo, revision or file apart by X-Error-Code."""
    return Reply(404, json.dumps({"error": code}).encode(), {"X-Error-Code": code, **(headers or {})})


def route(repos: dict[str, HubRepo], path: str) -> Reply | None:
    """The reply to a GET or HEAD of `path`; None for a path this stub does not implement."""
    for kind in ("models", "datasets"):
        if path.startswith(f"/api/{kind}/"):
            of_kind = {k: r for k, r in repos.items() if r.kind == kind}
            return _api_route(of_kind, path.removeprefix(f"/api/{kind}/"))
    for repo in repos.values():
        url_prefix = (
            f"/{repo.repo_id}/resolve/" if repo.kind == "models" else f"/datasets/{repo.repo_id}/resolve/"
        )
        if path.startswith(url_prefix):
            return _file_route(repo, path.removeprefix(url_prefix))
    return None


def _api_route(repos: dict[str, HubRepo], rest: str) -> Reply | None:
    """`{repo}[/revision/{rev}]` (info: commit sha and files) and `{repo}/tree/{rev}[/{folder}]`."""
    repo = next((r for r in repos.values() if rest == r.repo_id or rest.startswith(r.repo_id + "/")), None)
    if repo is None:
        return error_reply("RepoNotFound")
    parts = rest.removeprefix(repo.repo_id).strip("/").split("/")
    if parts == [""]:  # no revision: the default branch
        parts = ["revision", "main"]
    if parts[0] not in ("revision", "tree") or len(parts) < 2:
        return None
    if not repo.knows(parts[1]):
        return error_reply("RevisionNotFound")
    if parts[0] == "revision":
        siblings = [{"rfilename": p} for p in repo.files]
        return json_reply({"id": repo.repo_id, "sha": repo.sha, "siblings": siblings})
    under = "/".join(parts[2:])
    return json_reply([e for e in tree_entries(repo.files) if not under or e["path"].startswith(under + "/")])


def _file_route(repo: HubRepo, rest: str) -> Reply:
    """`{rev}/{path}`: the headers hf_hub_download checks (X-Repo-Commit, ETag) and the content."""
    revision, _, file_path = rest.partition("/")
    if not repo.knows(revision):
        return error_reply("RevisionNotFound")
    commit = {"X-Repo-Commit": repo.sha}
    if file_path not in repo.files:
        return error_reply("EntryNotFound", commit)
    data = repo.files[file_path]
    etag = f'"{git_blob_id(data)}"'
    return Reply(200, data, {**commit, "ETag": etag, "Content-Type": "application/octet-stream"})


def post_route(server: HubStub, path: str, body: bytes) -> Reply | None:
    """What `HfApi.create_repo` and `upload_folder` send: create, preupload (every file is
    answered "regular", so its content comes inline in the commit) and the NDJSON commit."""
    if path == "/api/validate-yaml":  # the README's metadata, parsed as the Hub would (model-index included)
        from huggingface_hub import ModelCard

        try:
            ModelCard(json.loads(body)["content"], ignore_metadata_errors=False)
        except Exception as exc:  # any parse failure is the client's 400
            server.invalid_cards.append(str(exc))
            return Reply(
                400, json.dumps({"errors": [{"message": str(exc)}]}).encode(), {"X-Error-Code": "BadRequest"}
            )
        return json_reply({"errors": [], "warnings": []})
    if path == "/api/repos/create":
        request = json.loads(body)
        repo_id = (
            f"{request['organization']}/{request['name']}" if request.get("organization") else request["name"]
        )
        server.created.append({"repo_id": repo_id, "visibility": request.get("visibility")})
        server.repos.setdefault(repo_id, HubRepo(repo_id, {}))
        return json_reply({"url": f"{server.url}/{repo_id}", "name": repo_id})
    for repo in server.repos.values():
        prefix = f"/api/{repo.kind}/{repo.repo_id}/"
        if not path.startswith(prefix):
            continue
        action = path.removeprefix(prefix).split("/")[0]
        if action == "preupload":
            files = json.loads(body)["files"]
            return json_reply(
                {
                    "files": [
                        {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files
                    ]
                }
            )
        if action == "commit":
            lines = [json.loads(line) for line in body.splitlines() if line.strip()]
            for line in lines:
                if line["key"] == "file":
                    repo.files[line["value"]["path"]] = base64.b64decode(line["value"]["content"])
            repo.sha = commit_id(repo.files)
            server.commits.append({"repo_id": repo.repo_id, "header": lines[0]["value"]})
            return json_reply(
                {"commitUrl": f"{server.url}/{repo.repo_id}/commit/{repo.sha}", "commitOid": repo.sha}
            )
    return None


class HubStub(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, repos: dict[str, HubRepo], token: str | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.repos = repos
        self.token = token  # when set, a POST must carry it as a bearer token
        self.requests: list[tuple[str, str]] = []
        self.unexpected: list[tuple[str, str]] = []
        self.created: list[dict] = []
        self.commits: list[dict] = []
        self.invalid_cards: list[str] = []

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def downloaded(self, repo_id: str) -> set[str]:
        """Paths of `repo_id` whose content was fetched (GET of a `resolve/` URL)."""
        prefix = f"/{repo_id}/resolve/"
        return {
            p.removeprefix(prefix).partition("/")[2]
            for m, p in self.requests
            if m == "GET" and p.startswith(prefix)
        }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as httpx expects; every reply carries Content-Length
    timeout = REQUEST_TIMEOUT_S
    server: HubStub

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def do_POST(self) -> None:
        path = unquote(urlsplit(self.path).path)
        self.server.requests.append((self.command, path))
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if (
            self.server.token is not None
            and self.headers.get("Authorization") != f"Bearer {self.server.token}"
        ):
            reply = Reply(
                401, b'{"error": "Invalid credentials"}', {"X-Error-Message": "Invalid credentials"}
            )
        else:
            reply = post_route(self.server, path, body) or error_reply("NotImplementedByStub")
            if reply.status == 404:
                self.server.unexpected.append((self.command, path))
        self._send(reply, send_body=True)

    def _answer(self, send_body: bool) -> None:
        path = unquote(urlsplit(self.path).path)
        self.server.requests.append((self.command, path))
        reply = route(self.server.repos, path)
        if reply is None:
            self.server.unexpected.append((self.command, path))
            reply = error_reply("NotImplementedByStub")
        self._send(reply, send_body)

    def _send(self, reply: Reply, send_body: bool) -> None:
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if send_body:
            self.wfile.write(reply.body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # requests are recorded on the server; keep test output clean


@contextmanager
def serve_repos(
    folders: dict[str, Path], datasets: dict[str, Path] | None = None, *, token: str | None = None
) -> Iterator[HubStub]:
    """Serve each folder as the model repo named by its key (and each of `datasets` as a
    dataset repo), on 127.0.0.1 (a free port), until the block ends."""
    repos = {repo_id: HubRepo(repo_id, folder_files(f)) for repo_id, f in folders.items()}
    for repo_id, folder in (datasets or {}).items():
        repos[f"datasets/{repo_id}"] = HubRepo(repo_id, folder_files(folder), kind="datasets")
    with serving(HubStub(repos, token)) as server:
        yield server


S = TypeVar("S", bound=ThreadingHTTPServer)


@contextmanager
def serving(server: S) -> Iterator[S]:
    """Run a local test server in a thread until the block ends (shared by the test stubs)."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=REQUEST_TIMEOUT_S)


def hub_env(endpoint: str, hf_home: Path, offline: bool) -> dict[str, str]:
    """The child's environment: huggingface_hub reads these once, at import time."""
    hub_vars = ("HF_", "HUGGINGFACE_", "TRANSFORMERS_OFFLINE", "SENTENCE_TRANSFORMERS_HOME")
    env = {
        k: v for k, v in os.environ.items() if not k.upper().startswith(hub_vars) and "proxy" not in k.lower()
    }
    env.update(
        HF_ENDPOINT=endpoint,
        HF_HOME=str(hf_home),
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_DISABLE_PROGRESS_BARS="1",
        HF_HUB_OFFLINE="1" if offline else "0",
        NO_PROXY="127.0.0.1,localhost",
    )
    return env
