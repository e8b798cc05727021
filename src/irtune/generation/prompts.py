"""Prompts that ask a language model for a query a document answers.

With real (query, document) training pairs, the prompt is few-shot in the InPars style
(the model continues the pattern of real queries). Without any, an instruction template
per domain. A `--prompt-file` replaces either: its text must hold `{document}` and may hold
`{examples}`. Small base models follow instructions loosely (Gemma 3 270M echoes the
instruction or continues the abstract about half the time), hence the filters downstream.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from irtune.errors import DataError, invalid

TEMPLATES = {
    "general": (
        "Below is a passage, followed by a question that a user could ask and that the passage "
        "answers.\n\nPassage: {document}\n\nQuestion:"
    ),
    "scientific": (
        "Below is a scientific abstract, followed by a question that a researcher could ask and "
        "that the abstract answers.\n\nAbstract: {document}\n\nQuestion:"
    ),
}
FEW_SHOT_TEMPLATE = "{examples}Example {next}:\nDocument: {document}\nRelevant query:"
EXAMPLE_TEMPLATE = "Example {number}:\nDocument: {document}\nRelevant query: {query}\n\n"
MAX_DOCUMENT_WORDS = 180
MAX_EXAMPLE_WORDS = 80


def truncate_words(text: str, limit: int) -> str:
    words = text.split()
    return " ".join(words[:limit])


@dataclass(frozen=True)
class Example:
    query_id: str
    query: str
    document: str


@dataclass(frozen=True)
class PromptBuilder:
    template: str
    source: str  # "few-shot (N real pairs)", "template: scientific", "file: PATH"
    examples: tuple[Example, ...] = ()
    max_document_words: int = MAX_DOCUMENT_WORDS

    def render(self, document: str) -> str:
        shots = "".join(
            EXAMPLE_TEMPLATE.format(
                number=i, document=truncate_words(e.document, MAX_EXAMPLE_WORDS), query=e.query
            )
            for i, e in enumerate(self.examples, start=1)
        )
        # str.replace, not str.format: documents and prompt files may hold braces
        return (
            self.template.replace("{examples}", shots)
            .replace("{next}", str(len(self.examples) + 1))
            .replace("{document}", truncate_words(document, self.max_document_words))
        )

    def fixed_texts(self) -> list[str]:
        """Text the model sees in every prompt (instruction, example queries): a generation
        that merely repeats it is no query."""
        parts = [self.template.replace("{examples}", "").replace("{document}", " ").replace("{next}", " ")]
        return parts + [e.query for e in self.examples]

    def describe(self) -> dict[str, object]:
        return {
            "source": self.source,
            "template": self.template,
            "example_query_ids": [e.query_id for e in self.examples],
            "max_document_words": self.max_document_words,
        }


def build_prompt(
    *, domain: str, examples: Sequence[Example] = (), prompt_file: Path | None = None
) -> PromptBuilder:
    if prompt_file is not None:
        try:
            template = prompt_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(prompt_file, f"cannot read prompt file ({exc})") from None
        if "{document}" not in template:
            raise DataError(prompt_file, "the prompt must contain {document} where the document goes")
        if "{examples}" not in template:
            examples = ()
        return PromptBuilder(template, f"file: {prompt_file}", tuple(examples))
    if examples:
        return PromptBuilder(
            FEW_SHOT_TEMPLATE, f"few-shot ({len(examples)} real training pairs)", tuple(examples)
        )
    if domain not in TEMPLATES:
        raise invalid(
            "domain", "must be one of {choices}, not {value!r}", choices=", ".join(TEMPLATES), value=domain
        )
    return PromptBuilder(TEMPLATES[domain], f"template: {domain}")
