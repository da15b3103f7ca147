"""
The inference rules: one small function each, over :class:`ViewLabels`, applied in order.

A rule reads the decoder's logits, the clicks and the neighbour graph, and sets
``view.object_labels`` or ``view.part_labels``. ``inference/pipeline.py`` decides which rules
run (a rule that is off is not in its list); docs/model.md explains and measures each one.
"""

from typing import Dict, List

import numpy as np
from pinpoint3d_core.inference.view import ViewLabels
import torch

# Geodesic distances beyond this many voxel sizes all read as "far": the part prior then
# leaves the choice between two far parts to the decoder, and each Dijkstra stays local.
PART_PRIOR_REACH_VOXELS = 20.0


def argmax_objects(view: ViewLabels) -> None:
    """Each voxel takes the object column of the highest logit."""
    view.object_labels = view.object_logits.argmax(dim=1)


def override_clicked_objects(view: ViewLabels) -> None:
    """Clicked voxels take their click's object (0 for a negative click), as the reference."""
    for c, col in zip(view.clicks, view.click_object_columns()):
        view.object_labels[c.voxel] = col


def keep_clicked_pieces(view: ViewLabels) -> None:
    """Pieces of an object that none of its positive clicks reaches read background."""
    seeds: Dict[int, List[int]] = {}
    for c, col in zip(view.clicks, view.click_object_columns()):
        if c.positive:
            seeds.setdefault(col, []).append(c.voxel)
    labels = view.graph.clicked_pieces(view.object_labels.cpu().numpy(), seeds)
    view.object_labels = torch.as_tensor(labels, device=view.object_labels.device)


def argmax_parts(view: ViewLabels) -> None:
    """Each voxel takes, per decoded object, the part column of the highest logit."""
    view.part_labels = {k: logits.argmax(dim=1) for k, logits in view.part_logits.items()}


def part_prior(view: ViewLabels, temperature_voxels: float) -> None:
    """
    Per voxel and object, the part column of decoder log-probability plus a geodesic prior.

    Every ``temperature_voxels`` voxel sizes a voxel lies farther (along the graph's links)
    from a column's nearest click than from the nearest click of any part costs that column
    one unit of log-probability, so one click per part already splits an object where the
    decoder is unsure, without overriding it where it is confident (docs/model.md, "Part
    prior"). Columns without clicks are not penalised; fewer than two clicked columns (or no
    graph) leave the decoder's argmax.
    """
    graph, size = view.graph, view.voxel_size
    reach = PART_PRIOR_REACH_VOXELS
    view.part_labels = {}
    for k, logits in view.part_logits.items():
        columns: Dict[int, List[int]] = {}
        for c, j in zip(view.clicks, view.click_part_columns(k)):
            if j >= 0:
                columns.setdefault(j, []).append(c.voxel)
        if not graph.enabled or len(columns) < 2:
            view.part_labels[k] = logits.argmax(dim=1)
            continue
        cols = sorted(columns)
        # Part labels are read only inside the object's mask (ViewLabels.labels): once that
        # is set, the prior is computed on its voxels alone (row by row, the same numbers).
        rows = None
        if view.object_labels is not None:
            rows = torch.nonzero(view.object_labels == view.object_column(k)).view(-1)
        at = slice(None) if rows is None else rows.cpu().numpy()
        dist = np.stack([np.minimum(graph.seed_distance(columns[j], reach * size)[at] / size,
                                    reach) for j in cols])
        prior = np.zeros((logits.shape[1], dist.shape[1]), dtype=np.float32)
        prior[cols] = -(dist - dist.min(axis=0)) / temperature_voxels
        prior = torch.as_tensor(prior.T, device=logits.device)
        mine = logits if rows is None else logits[rows]
        choice = (torch.log_softmax(mine.float(), dim=1) + prior).argmax(dim=1)
        if rows is not None:
            choice = torch.zeros(len(logits), dtype=choice.dtype,
                                 device=choice.device).index_copy_(0, rows, choice)
        view.part_labels[k] = choice


def override_clicked_parts(view: ViewLabels) -> None:
    """Voxels of an object's positive clicks take the clicked part (0 = no part)."""
    for k, pcol in view.part_labels.items():
        for c, j in zip(view.clicks, view.click_part_columns(k)):
            if j >= 0:
                pcol[c.voxel] = j


def claim_near_part_clicks(view: ViewLabels, radius_voxels: float) -> None:
    """
    Give each click's part column to the voxels within ``radius_voxels`` of it (geodesic).

    Every click takes part in the nearest-click contest (last click wins on a shared voxel);
    only positive clicks of the object change its parts, and object masks are left alone
    (docs/model.md, "Click claim").
    """
    if not view.part_labels:
        return
    owner = view.graph.nearest_seed([c.voxel for c in view.clicks],
                                    radius_voxels * view.voxel_size)
    for k, pcol in view.part_labels.items():
        owner_t = torch.as_tensor(owner, device=pcol.device)
        own = torch.as_tensor(view.click_part_columns(k), device=pcol.device)
        own = own[owner_t.clamp(min=0)]
        view.part_labels[k] = torch.where((owner_t >= 0) & (own >= 0), own, pcol)
