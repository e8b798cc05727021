"""Every relative link in README.md and docs/*.md points to a file that exists, and to a heading
that exists when it names one (`docs/benchmarks.md#hybrid-retrieval`), as GitHub renders them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

FENCED_BLOCK = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


def prose(markdown: str) -> str:
    """The text outside code: links and headings inside code blocks or spans are not links."""
    return CODE_SPAN.sub("", FENCED_BLOCK.sub("", markdown))


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lowercased, punctuation dropped, spaces as hyphens."""
    text = CODE_SPAN.sub(lambda span: span.group(0).strip("`"), heading)
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def anchors(document: Path) -> set[str]:
    """Every heading anchor of a document, a repeated heading numbered as GitHub numbers it."""
    seen: dict[str, int] = {}
    for heading in HEADING.findall(FENCED_BLOCK.sub("", document.read_text(encoding="utf-8"))):
        anchor = github_anchor(heading)
        count = seen.get(anchor, 0)
        seen[anchor] = count + 1
        if count:
            seen[f"{anchor}-{count}"] = 1
    return set(seen)


def relative_links(document: Path) -> list[str]:
    return [
        target
        for target in LINK.findall(prose(document.read_text(encoding="utf-8")))
        if not re.match(r"[a-z][a-z0-9+.-]*:", target)
    ]


def broken_links(document: Path) -> list[str]:
    broken = []
    for target in relative_links(document):
        path_part, _, anchor = target.partition("#")
        linked = (document.parent / path_part).resolve() if path_part else document
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target}: no heading #{anchor} in {path_part or document.name}")
    return broken


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_relative_link_points_to_an_existing_file_and_heading(document: Path) -> None:
    assert broken_links(document) == []


def test_the_checker_sees_links_and_misses_code(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# A title: with `code`\n\n## Again\n\n## Again\n", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text(
        "# Here\n\n[ok](other.md#a-title-with-code) [twice](other.md#again-1) [self](#here)\n"
        "[gone](missing.md) [bad anchor](other.md#nowhere) [web](https://example.org/x)\n"
        "`[in code](nowhere.md)`\n\n```\n[in a block](nowhere.md)\n```\n",
        encoding="utf-8",
    )
    assert relative_links(page) == [
        "other.md#a-title-with-code",
        "other.md#again-1",
        "#here",
        "missing.md",
        "other.md#nowhere",
    ]
    assert broken_links(page) == [
        "missing.md: no such file",
        "other.md#nowhere: no heading #nowhere in other.md",
    ]
