"""`irtune generate` against a misbehaving endpoint, as a hostile-but-fair user meets one.

Each case of the table runs the real command line in a child process against a local stub
that plays a script of faults (see `openai_stub.py`), and asserts the exit code, one message
line without a traceback, how many requests the server really saw, that the API key appears
nowhere in the output, and that no split and no oversized journal was written. After the
table: real processes interrupted by Ctrl-C, and out of disk space.
"""

from __future__ import annotations

import json
import resource
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from openai_stub import Fault, serve_openai
from test_hostile_input import _says, _workspace

KEY = "sk-hostile-5e1f9c"
HUGE = json.dumps({"choices": [{"message": {"content": "x" * (2 << 20)}}]}).encode()


@dataclass(frozen=True)
class Endpoint:
    name: str
    faults: tuple[Fault, ...]
    args: tuple[str, ...]
    message: str | tuple[str, ...]  # expected in the `error:` line, in order ({url}: the stub's)
    requests: int  # what the server saw
    generator: str = "openai:{url}"


CASES = [
    Endpoint(
        "a byte every 0.5 s",
        (Fault(drip_s=0.5),),
        ("--timeout", "2", "--retries", "0"),
        ("{url}: no complete reply within the 2 s deadline (--timeout) after 1 attempt",),
        1,
    ),
    Endpoint(
        "a 2 MiB reply",
        (Fault(body=HUGE),) * 3,
        (),
        "{url}: reply larger than 1 MiB (1,048,576 bytes); refused",
        1,
    ),
    Endpoint(
        "401 echoing the key",
        (Fault(401, echo_authorization=True),),
        (),
        ("{url}: HTTP 401", "Bearer [redacted]"),
        1,
    ),
    Endpoint(
        "500 echoing the key, retried once",
        (Fault(500, echo_authorization=True),) * 2,
        ("--retries", "1"),
        ("HTTP 500", "[redacted]", "after 2 attempts"),
        2,
    ),
    Endpoint(
        "Retry-After: 3600",
        (Fault(429, b'{"error": "quota"}', {"Retry-After": "3600"}),),
        ("--retries", "1"),
        ("HTTP 429", "after 1 attempt: the server asks to wait 3600 s (Retry-After)", "try again later"),
        1,
    ),
    Endpoint(
        "503 and no retries",
        (Fault(503, b"{}", {"Retry-After": "1"}),),
        ("--retries", "0"),
        "{url}: HTTP 503 ({{}}) after 1 attempt",
        1,
    ),
    Endpoint(
        "malformed JSON twice",
        (Fault(body=b'{"choices": [{"mess'),) * 2,
        ("--retries", "1"),
        ("malformed reply", "after 2 attempts"),
        2,
    ),
    Endpoint(
        "a URL without a scheme",
        (),
        (),
        "--generator openai:localhost:8000/v1: the URL must start with http(s)://",
        0,
        generator="openai:localhost:8000/v1",
    ),
    Endpoint(
        "an IPv6 URL cut short",
        (),
        (),
        "--generator openai:http://[::1: not a URL irtune can use (Invalid IPv6 URL)",
        0,
        generator="openai:http://[::1",
    ),
]


def _generate(tmp: Path, generator: str, *args: str) -> list[str]:
    return [
        sys.executable, "-m", "irtune", "generate", "-d", "ds", "--generator", generator, "--model", "m",
        "--round-trip-k", "0", "--few-shot", "0", "--concurrency", "1", *args,
    ]  # fmt: skip


def _env(tmp: Path) -> dict[str, str]:
    env = _workspace(tmp)
    env.update(OPENAI_API_KEY=KEY, IRTUNE_ALLOCATOR="system")
    return {k: v for k, v in env.items() if "proxy" not in k.lower()}


@pytest.mark.parametrize("hostile", CASES, ids=[c.name for c in CASES])
def test_a_misbehaving_endpoint_is_one_line_and_loses_nothing(hostile: Endpoint, tmp_path: Path):
    env = _env(tmp_path)
    with serve_openai(list(hostile.faults)) as server:
        args = _generate(tmp_path, hostile.generator.format(url=server.url), *hostile.args)
        done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and KEY not in done.stderr + done.stdout
    lines = [line for line in done.stderr.splitlines() if line.startswith("error")]  # INFO lines above it
    assert len(lines) == 1 and done.stderr.strip().endswith(lines[0]), done.stderr
    message = hostile.message
    expected = tuple(
        m.replace("{url}", server.url) for m in ((message,) if isinstance(message, str) else message)
    )
    assert lines[0].startswith("error: ") and _says(lines[0], expected, tmp_path), done.stderr
    assert len(server.requests) == hostile.requests
    dataset = tmp_path / "data" / "ds"
    assert not (dataset / "synthetic").exists()
    assert all(p.stat().st_size < 1 << 20 for p in dataset.rglob("*") if p.is_file())


def test_the_table_covers_every_item_of_the_issue():
    assert len(CASES) >= 8 and len({c.name for c in CASES}) == len(CASES)


def test_ctrl_c_keeps_every_reply_received_and_the_rerun_asks_only_for_the_rest(tmp_path):
    """SIGINT while the third of four requests waits: the two replies received are journaled,
    and the re-run asks for the two other documents only."""
    env = _env(tmp_path)
    with serve_openai([Fault(), Fault(), Fault(delay_s=30)]) as server:
        process = subprocess.Popen(
            _generate(tmp_path, f"openai:{server.url}", "--min-words", "1"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        deadline = time.monotonic() + 300  # a cold start on a busy machine can take minutes
        while len(server.requests) < 3 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.1)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == 130, stderr
        assert "Traceback" not in stderr and "interrupted" in stderr.strip().splitlines()[-1]
        (journal,) = (tmp_path / "data" / "ds" / ".irtune-generate").glob("*.jsonl")
        assert len(journal.read_text().splitlines()) == 2
        asked_first = [r["body"]["messages"][0]["content"] for r in server.requests[:2]]
        rerun = subprocess.run(
            _generate(tmp_path, f"openai:{server.url}", "--min-words", "1"),
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
    assert rerun.returncode == 0, rerun.stderr
    asked_again = [r["body"]["messages"][0]["content"] for r in server.requests[3:]]
    assert len(asked_again) == 2 and not set(asked_again) & set(asked_first)
    manifest = json.loads((tmp_path / "data" / "ds" / "synthetic" / "manifest.json").read_text())
    assert manifest["documents"] == 4 and manifest["generation"]["generated_now"] == 2


def test_a_split_of_other_settings_is_replaced_only_with_force(tmp_path):
    env = _env(tmp_path)
    with serve_openai() as server:
        first = subprocess.run(
            _generate(tmp_path, f"openai:{server.url}", "--min-words", "1"),
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        assert first.returncode == 0, first.stderr
        again = _generate(
            tmp_path, f"openai:{server.url}", "--min-words", "1", "--sample", "3", "--seed", "5"
        )
        refused = subprocess.run(again, capture_output=True, text=True, env=env, timeout=300)
        asked = len(server.requests)
        replaced = subprocess.run([*again, "--force"], capture_output=True, text=True, env=env, timeout=300)
    split = tmp_path / "data" / "ds" / "synthetic"
    assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr
    assert refused.stderr.strip().splitlines()[-1] == (
        f"error: {split}: holds 4 generated queries made with other settings (sample, seed); generating now "
        "would replace them; pass --force to do so, or copy the dataset folder to keep them"
    )
    assert asked == 4  # the refused run asked nothing
    assert replaced.returncode == 0, replaced.stderr
    assert json.loads((split / "manifest.json").read_text())["documents"] == 3


def test_a_full_disk_names_the_journal(tmp_path):
    """The file-size limit makes writes fail like a full disk (EFBIG instead of ENOSPC)."""
    env = _env(tmp_path)

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (100, 100))

    with serve_openai() as server:
        done = subprocess.run(
            _generate(tmp_path, f"openai:{server.url}"),
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
            preexec_fn=small_files,
        )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    [line] = [line for line in done.stderr.splitlines() if line.startswith("error")]
    (journal,) = (tmp_path / "data" / "ds" / ".irtune-generate").glob("*.jsonl")
    assert f"error: {journal}: File too large" in line and "re-run" in line
