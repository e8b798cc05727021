"""`irtune data fetch` against a local HTTP server: good, corrupt and malicious zips."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import threading
import zipfile
from pathlib import Path

import pytest

from irtune.data.beir import BeirDataset
from irtune.data.download import fetch_dataset
from irtune.errors import IrtuneError


def make_zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


GOOD = make_zip(
    {
        "tiny/corpus.jsonl": b'{"_id": "d1", "title": "", "text": "hello"}\n',
        "tiny/queries.jsonl": b'{"_id": "q1", "text": "hi"}\n',
        "tiny/qrels/test.tsv": b"query-id\tcorpus-id\tscore\r\nq1\td1\t1\r\n",
    }
)
EVIL = make_zip({"tiny/qrels/test.tsv": b"x", "../escaped.txt": b"gotcha"})


@pytest.fixture()
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None  # type: ignore[method-assign]
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def test_good_zip_is_verified_and_extracted(server, tmp_path):
    root, url = server
    (root / "tiny.zip").write_bytes(GOOD)
    target = fetch_dataset("tiny", tmp_path / "data", mirror=url, md5=md5(GOOD), show_progress=False)
    assert target == tmp_path / "data" / "tiny"
    assert BeirDataset(target).qrels("test") == {"q1": {"d1": 1}}
    assert [p.name for p in (tmp_path / "data").iterdir()] == ["tiny"]  # no temp leftovers


def test_checksum_mismatch_leaves_nothing(server, tmp_path):
    root, url = server
    corrupt = GOOD[:-10] + b"0123456789"
    (root / "tiny.zip").write_bytes(corrupt)
    with pytest.raises(IrtuneError, match="md5 mismatch"):
        fetch_dataset("tiny", tmp_path / "data", mirror=url, md5=md5(GOOD), show_progress=False)
    assert not (tmp_path / "data").exists()  # not even the empty data folder it made


def test_member_escaping_the_target_is_refused(server, tmp_path):
    root, url = server
    (root / "tiny.zip").write_bytes(EVIL)
    with pytest.raises(IrtuneError, match=r"unsafe member path '\.\./escaped\.txt'"):
        fetch_dataset("tiny", tmp_path / "data", mirror=url, md5=md5(EVIL), show_progress=False)
    assert not (tmp_path / "escaped.txt").exists()
    assert not (tmp_path / "data").exists()


def test_known_dataset_uses_the_official_checksum(server, tmp_path):
    root, url = server
    (root / "scifact.zip").write_bytes(GOOD)  # not the real scifact zip: md5 must fail
    with pytest.raises(IrtuneError, match="expected 5f7d1de60b170fc8027bb7898e2efca1"):
        fetch_dataset("scifact", tmp_path / "data", mirror=url, show_progress=False)


def test_missing_file_and_unknown_dataset(server, tmp_path):
    _, url = server
    with pytest.raises(IrtuneError, match=r"cannot download .*/nothere\.zip"):
        fetch_dataset("nothere", tmp_path / "data", mirror=url, md5="0" * 32, show_progress=False)
    with pytest.raises(IrtuneError, match="no checksum known"):
        fetch_dataset("mystery", tmp_path / "data", mirror=url, show_progress=False)


def test_local_folder_mirror(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "tiny.zip").write_bytes(GOOD)
    target = fetch_dataset("tiny", tmp_path / "data", mirror=str(mirror), md5=md5(GOOD), show_progress=False)
    assert (target / "corpus.jsonl").read_bytes().startswith(b'{"_id": "d1"')
    assert Path(target / "qrels" / "test.tsv").is_file()


def test_a_zip_missing_from_a_mirror_folder_is_named(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    with pytest.raises(IrtuneError, match=r"tiny.zip: not found in the mirror folder"):
        fetch_dataset("tiny", tmp_path / "data", mirror=str(mirror), md5=md5(GOOD), show_progress=False)
    with pytest.raises(IrtuneError, match="neither a folder nor a URL"):
        fetch_dataset("tiny", tmp_path / "data", mirror=str(tmp_path / "nowhere"), md5=md5(GOOD))
    assert not (tmp_path / "data" / "tiny").exists()
