"""
The one structure every inference rule reads and writes: the labels of one encoded view.

A *view* is what the backbone encoded (the whole cloud, or the focus box around the positive
clicks). After ``PinPoint3D.decode`` the session fills a :class:`ViewLabels` with the decoder's
logits and the clicks that fall inside the view; the configured rules (``inference/rules.py``)
then set ``object_labels`` and ``part_labels`` in order, and ``labels`` reads the result.
"""

import dataclasses
from typing import Dict, List, Optional, Tuple

import numpy as np
from pinpoint3d_core.inference.graph import NeighbourGraph
import torch


@dataclasses.dataclass(frozen=True)
class ViewClick:
    """A click inside the view: its view voxel and what it says (ids as the caller's)."""

    voxel: int
    object_id: int
    part_id: int
    positive: bool


@dataclasses.dataclass
class ViewLabels:
    """
    Decoder output and labels of one view; columns follow ``DecodeOutput``.

    Object columns: 0 = background, ``i + 1`` = ``object_ids[i]``. Part columns of object k:
    0 = no part, ``j + 1`` = ``part_ids[k][j]``. Labels are per view voxel (V,) column indices.
    """

    clicks: List[ViewClick]                    # in click order
    graph: NeighbourGraph                      # links between the view's voxels
    voxel_size: float
    object_ids: List[int]
    object_logits: torch.Tensor                # (V, 1+K), object logit bias already added
    part_ids: Dict[int, List[int]]
    part_logits: Dict[int, torch.Tensor]       # object id -> (V, 1+P)
    object_labels: Optional[torch.Tensor] = None            # (V,) long object column
    part_labels: Dict[int, torch.Tensor] = dataclasses.field(default_factory=dict)

    def object_column(self, object_id: int) -> int:
        """Return the object column of ``object_id``."""
        return self.object_ids.index(object_id) + 1

    def click_object_columns(self) -> List[int]:
        """Per click, the object column it asks for (0 for a negative click)."""
        col = {k: i + 1 for i, k in enumerate(self.object_ids)}
        return [col[c.object_id] if c.positive else 0 for c in self.clicks]

    def click_part_columns(self, object_id: int) -> List[int]:
        """Per click, its part column in ``object_id`` (0 = no part), -1 = not that object's."""
        parts = self.part_ids[object_id]
        return [(parts.index(c.part_id) + 1 if c.part_id else 0)
                if c.positive and c.object_id == object_id else -1 for c in self.clicks]

    def labels(self) -> Tuple[np.ndarray, np.ndarray]:
        """Return per-voxel (object id, part id) arrays, uint32, in the caller's ids."""
        cols = self.object_labels
        ids = np.asarray([0] + self.object_ids, dtype=np.uint32)
        parts = torch.zeros_like(cols)
        for k, pcol in self.part_labels.items():
            pids = torch.as_tensor([0] + self.part_ids[k], dtype=torch.long, device=pcol.device)
            parts = torch.where(cols == self.object_column(k), pids[pcol], parts)
        return ids[cols.cpu().numpy()], parts.cpu().numpy().astype(np.uint32)
