"""
Simulated user: where the next click goes, given ground truth and the current prediction.

Training (iterative click rounds) and evaluation (NoC / IoU@k curves) must use the same user, so
this is the single implementation. The rule follows the reference protocol: error points are
grouped by their (true label, predicted label) pair, each group's "size" is the largest distance
from one of its points to the nearest point outside the group (a 3-D distance transform over the
point set), and the click goes to the point attaining it, i.e. the centre of the error region.
The click is positive for the true label there, or negative (background) when that label is 0.
Everything is deterministic: ties go to the lowest (true, predicted) pair, then to the first index.
"""

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

# Complement points farther than this from a region's bounding box are skipped when the depth
# is computed; a region deeper than this falls back to the full complement (exact either way).
_BOX_MARGIN = 0.5


@dataclass(frozen=True)
class SimulatedClick:
    """One simulated click: a point index into the arrays it was computed from."""

    index: int
    label: int
    positive: bool
    depth: float


@dataclass(frozen=True)
class ErrorRegion:
    """Error points sharing one (true, predicted) label pair, with their depth per point."""

    true_label: int
    pred_label: int
    indices: np.ndarray
    depth: np.ndarray

    @property
    def size(self):
        """Depth of the deepest point: how far the region's centre is from its boundary."""
        return float(self.depth.max())

    def centre(self):
        """Return the deepest point (the first one on ties)."""
        return int(self.indices[int(np.argmax(self.depth))])


def _depth(points, inside):
    """Distance from each point of ``inside`` (bool mask) to the nearest point outside it."""
    idx = np.flatnonzero(inside)
    sel = points[idx]
    outside = ~inside
    if not outside.any():
        # The whole cloud is one region: rank points by closeness to its centroid instead.
        d = np.linalg.norm(sel - sel.mean(axis=0), axis=1)
        return idx, (d.max() - d) + 1e9
    lo = sel.min(axis=0) - _BOX_MARGIN
    hi = sel.max(axis=0) + _BOX_MARGIN
    near = outside & np.all((points >= lo) & (points <= hi), axis=1)
    depth = np.full(len(idx), np.inf)
    if near.any():
        depth, _ = cKDTree(points[near]).query(sel, k=1, distance_upper_bound=_BOX_MARGIN)
    if not np.all(np.isfinite(depth)):
        depth, _ = cKDTree(points[outside]).query(sel, k=1)
    return idx, np.asarray(depth, dtype=np.float64)


def error_regions(points, gt, pred, exclude=None):
    """
    Return the error regions sorted largest first (ties: lowest label pair first).

    ``exclude`` lists point indices that never count as errors (points already clicked, so the
    user never clicks the same point twice even if the model ignores a click).
    """
    points = np.asarray(points, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.int64)
    pred = np.asarray(pred, dtype=np.int64)
    wrong = gt != pred
    if exclude is not None and len(exclude):
        wrong[np.asarray(exclude, dtype=np.int64)] = False
    if not wrong.any():
        return []
    pairs = np.unique(np.stack([gt[wrong], pred[wrong]], axis=1), axis=0)
    regions = []
    for t, p in pairs:
        inside = wrong & (gt == t) & (pred == p)
        idx, depth = _depth(points, inside)
        regions.append(ErrorRegion(int(t), int(p), idx, depth))
    # Stable sort keeps the (true, pred) order from np.unique for equal sizes.
    regions.sort(key=lambda r: -r.size)
    return regions


def _click(region):
    i = region.centre()
    return SimulatedClick(index=i, label=region.true_label, positive=region.true_label != 0,
                          depth=region.size)


def next_clicks(points, gt, pred, max_clicks=1, exclude=None):
    """Clicks at the centres of the ``max_clicks`` largest error regions (training rounds)."""
    regions = error_regions(points, gt, pred, exclude)
    return [_click(r) for r in regions[:max_clicks]]


def next_click(points, gt, pred, exclude=None):
    """Return the corrective click at the largest error region's centre (None if perfect)."""
    clicks = next_clicks(points, gt, pred, 1, exclude)
    return clicks[0] if clicks else None


def first_clicks(points, gt):
    """
    One positive click per target (label > 0), at the point deepest inside it.

    Equivalent to the reference's first round against an all-background prediction; returned in
    ascending label order.
    """
    gt = np.asarray(gt, dtype=np.int64)
    regions = error_regions(points, gt, np.zeros_like(gt))
    return sorted((_click(r) for r in regions), key=lambda c: c.label)
