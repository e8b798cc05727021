"""A stand-in for a much stronger generator, served as an OpenAI-compatible endpoint: for a
SciFact document it answers with a claim a human wrote for it (SciFact's *train* claims;
the test claims are never read), and with nothing for other documents.

It answers what a better generator would change, through the same code path as any real
endpoint (`--generator openai:URL`: prompts, filters, round trip, training, evaluation):
the ceiling of query generation for this corpus, with human-quality queries.

    python benchmarks/oracle_endpoint.py --port 8765 &
    python benchmarks/synthetic_queries.py --generator openai:http://127.0.0.1:8765/v1 \\
        --model oracle --sample 0 --work benchmarks/results/synthetic_oracle_work --name synthetic_oracle
"""

from __future__ import annotations

import argparse
import json
import re
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import irtune

from _common import data_dir


def claims_by_document_text() -> dict[str, str]:
    """First 30 words of a document's text -> one train claim judging it relevant."""
    scifact = irtune.load_dataset("scifact", data_dir=data_dir())
    found: dict[str, str] = {}
    for qid, judged in scifact.qrels("train").items():
        for doc, grade in judged.items():
            if grade > 0 and doc in scifact.corpus:
                found.setdefault(_key(scifact.corpus[doc].full_text()), scifact.queries[qid])
    return found


def _key(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower())[:30])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    claims = claims_by_document_text()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            prompt = request["messages"][-1]["content"]
            document = re.split(r"(?:Abstract|Passage|Document): ", prompt)[-1]
            answer = claims.get(_key(document), "")
            body = json.dumps(
                {
                    "id": "oracle",
                    "object": "chat.completion",
                    "created": 0,
                    "model": "oracle",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}}],
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    print(f"serving {len(claims)} documents' train claims on http://127.0.0.1:{args.port}/v1", flush=True)
    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
