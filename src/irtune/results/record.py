"""The base of every typed record irtune writes into a results file."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Record(BaseModel):
    """Strict about what irtune itself writes, tolerant of fields added by newer versions."""

    model_config = ConfigDict(extra="allow", frozen=True)
