"""Which weights ship: the best epoch on dev, then the best interpolation between the base
and that epoch (WiSE-FT style: alpha 0 is the base, 1 the tuned model). The base is always
a candidate, so a fine-tuning run never ships weights that score below the base on dev."""

from __future__ import annotations

import logging
from typing import Any

import torch

from irtune.errors import InvalidValueError, IrtuneError
from irtune.models.loading import LoadedModel
from irtune.training import dev
from irtune.training.run import TrainingRun
from irtune.training.selection import SELECTION_KEY, DevSet, interpolated_state
from irtune.training.state import AlphaPoint, CurvePoint, TrainingState

log = logging.getLogger(__name__)

BASE_WEIGHTS_SHIPPED = (
    "note: the shipped weights are the base model's, unchanged: no fine-tuned candidate "
    "(epoch or interpolation) beat it on dev (alpha 0 chosen)"
)


def _dev_score(point: CurvePoint) -> float:
    if point.dev is None:
        raise InvalidValueError("epoch {epoch} has no dev scores; use a new {out_dir}", epoch=point.epoch)
    return point.dev[SELECTION_KEY]


def select_and_interpolate(
    run: TrainingRun,
    base: LoadedModel,
    base_state: dict[str, torch.Tensor],
    state: TrainingState,
    dev_sets: list[DevSet],
) -> dict[str, Any]:
    """Load the chosen weights into `base.model`; return the `selected` record."""
    config, out_dir = run.config, run.out_dir
    curve = state.curve
    if not curve:
        raise IrtuneError("no epoch was trained (max_steps too small?)")
    if not dev_sets:
        epoch = curve[-1].epoch
        base.model.load_state_dict(torch.load(run.epoch_dir(epoch) / "weights.pt", weights_only=True))
        return {"epoch": epoch, "alpha": 1.0, "criterion": "last epoch (no dev queries)"}
    if state.base_dev is None:
        raise InvalidValueError(
            "{path}: the base model's dev scores are missing; use a new {out_dir}", path=out_dir
        )
    best = max(curve, key=lambda p: (_dev_score(p), -p.epoch))
    tuned_state = torch.load(run.epoch_dir(best.epoch) / "weights.pt", weights_only=True)
    grid = state.interpolation
    known = {g.alpha for g in grid}
    for alpha in sorted({0.0, *config.interpolation_alphas}):  # the base is always a candidate
        if alpha in known:
            continue
        if alpha == 0.0:
            scores = state.base_dev
        elif alpha == 1.0:
            scores = best.dev or {}
        else:
            base.model.load_state_dict(interpolated_state(base_state, tuned_state, alpha))
            base.refresh_hash()
            scores = dev.score(base, dev_sets, config, run.work / "cache")
        grid.append(AlphaPoint(alpha=alpha, dev=scores))
        log.info("interpolation alpha=%.2f: dev %s %.4f", alpha, SELECTION_KEY, scores[SELECTION_KEY])
        state.save(out_dir)
    chosen = max(grid, key=lambda g: (round(g.dev[SELECTION_KEY], 12), -g.alpha))
    base.model.load_state_dict(interpolated_state(base_state, tuned_state, chosen.alpha))
    if chosen.alpha == 0:
        log.warning(BASE_WEIGHTS_SHIPPED)
    return {
        "epoch": best.epoch,
        "alpha": chosen.alpha,
        "shipped": "fine-tuned" if chosen.alpha > 0 else "base",
        "dev": chosen.dev,
        "base_dev": state.base_dev,
        "criterion": f"dev {SELECTION_KEY}, every candidate and the base scored on the same documents",
        "dev_documents": {found.dataset.name: found.documents for found in dev_sets},
        "interpolation": [g.to_json() for g in sorted(grid, key=lambda g: g.alpha)],
    }
