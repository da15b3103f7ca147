"""
Boundary levels: which click owns a voxel when the boundary between them is sure.

Nearest-click labelling sums link costs along a path, so many weak boundary responses inside
an object (noise of the boundary network) can add up to more than one sure boundary crossed
next to a competing click: a correction click on one of two touching cans then takes a large
part of the other can. A *bottleneck* view asks instead how strong the weakest cut between
a voxel and a click is. ``BoundaryLevels`` keeps, for a few thresholds on P(boundary), the
connected pieces of the surface graph whose links all stay below the threshold (support
planes out). Per click set, a voxel goes to a click's object at the lowest threshold where
its piece holds clicks of that object only; voxels whose piece never separates the competing
clicks keep the nearest-click label (the summed costs decide where the bottleneck cannot).
The pieces depend on the cloud only, so they are built once at encode; a click costs one
pass per level over the voxels.
"""

from typing import Sequence

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components, minimum_spanning_tree


class BoundaryLevels:
    """Per threshold on P(boundary), each voxel's piece (-1 = support plane, out)."""

    def __init__(self, size: int, src: np.ndarray, dst: np.ndarray, probability: np.ndarray,
                 keep: np.ndarray, thresholds: Sequence[float]):
        """Build the pieces of the links ``src``-``dst`` (L,) between ``keep`` (V,) voxels."""
        self.thresholds = tuple(sorted(float(t) for t in thresholds))
        p = np.asarray(probability, dtype=np.float64)
        ok = keep[src] & keep[dst]
        # The pieces below a threshold are those of the minimum spanning forest's links below
        # it, so one forest serves every level (a sparse matrix drops zeros: offset them).
        forest = minimum_spanning_tree(csr_matrix((p[ok] + 1e-6, (src[ok], dst[ok])),
                                                  shape=(size, size))).tocoo()
        self.pieces = np.full((len(self.thresholds), size), -1, dtype=np.int64)
        for i, t in enumerate(self.thresholds):
            low = forest.data <= t + 1e-6
            graph = csr_matrix((np.ones(int(low.sum()), dtype=np.int8),
                                (forest.row[low], forest.col[low])), shape=(size, size))
            _, piece = connected_components(graph, directed=False)
            self.pieces[i] = np.where(keep, piece, -1)

    def relabel(self, labels: np.ndarray, seeds: np.ndarray, ids: np.ndarray,
                eligible: np.ndarray):
        """
        Return (labels, decided): the lowest separating level's labels, and where it decided.

        ``labels`` elsewhere, ``decided`` (V,) bool.

        ``seeds`` (C,) are the clicks' voxels, ``ids`` (C,) their object ids (0 = negative);
        only ``eligible`` ((V,) bool) voxels change (those the nearest-click rule reached).
        """
        out = labels.copy()
        done = np.zeros(len(labels), dtype=bool)
        for piece in self.pieces:
            own = piece[seeds]
            on = own >= 0
            if not on.any():
                continue
            names, first = np.unique(own[on], return_inverse=True)
            # a piece is decided when all its clicks share one object id
            lo = np.full(len(names), np.iinfo(np.int64).max)
            hi = np.full(len(names), np.iinfo(np.int64).min)
            np.minimum.at(lo, first, ids[on].astype(np.int64))
            np.maximum.at(hi, first, ids[on].astype(np.int64))
            single = lo == hi
            if not single.any():
                continue
            owner = np.full(len(names), -1, dtype=np.int64)
            owner[single] = lo[single]
            index = np.searchsorted(names, piece)
            index = np.minimum(index, len(names) - 1)
            hit = (names[index] == piece) & (piece >= 0)
            take = hit & ~done & eligible
            take[take] = owner[index[take]] >= 0
            out[take] = owner[index[take]]
            done |= take
        return out, done
