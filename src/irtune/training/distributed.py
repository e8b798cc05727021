"""This process's place in a torchrun/accelerate launch: every rank trains (DDP), rank 0
alone scores dev queries and writes files."""

from __future__ import annotations

import os
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Distributed:
    """Rank and world size from the launcher's environment (rank 0 of 1 when not launched)."""

    rank: int = field(default_factory=lambda: int(os.environ.get("RANK", "0")))
    world: int = field(default_factory=lambda: int(os.environ.get("WORLD_SIZE", "1")))

    @property
    def main(self) -> bool:
        return self.rank == 0
