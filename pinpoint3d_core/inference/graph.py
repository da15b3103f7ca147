"""
The voxel neighbour graph that the inference rules and the non-learned baseline walk.

Mask connectivity (``clicked_pieces``): an object the user clicked is one connected piece that
holds the click. The decoder scores every voxel independently, so a mask can also light up a
look-alike a few metres away (the next parked car, the next barrier in a row). Pieces of a
label that no positive click of that label reaches are handed back to the background. Reach is
over the graph linking each voxel to its k nearest voxels no farther than the gap, keeping the
links whose two ends carry the same label. The graph is built once per encoded cloud, so a
click costs one connected-components pass. Nearest neighbours adapt to point density (the rings
of a car 15 m from a 32-beam sensor stay linked), and two dense pieces count as one only where
they (nearly) touch, which is what splits neighbours in a row. Its limit: rings farther apart
than a voxel's k nearest neighbours along its own ring (about 0.4 m at 0.1 m voxels; a car
beyond ~25 m for 32 beams) are separate pieces, and the user needs a click per ring. Geodesic
distances (``seed_distance``, ``nearest_seed``) run over the same links; the baseline gives its
links costs (``with_link_costs``) so that paths prefer one smooth surface.
"""

from typing import Optional

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components, dijkstra
from scipy.spatial import cKDTree

NEIGHBOURS = 8
# Bounded Dijkstras run on the ball around their seeds when the graph has at least this many
# nodes and the ball holds less than this share of them (below, the cut costs more than it saves).
BALL_MIN_NODES = 2000
BALL_MAX_SHARE = 0.5
DISTANCES_KEPT = 16      # seed_distance results a graph keeps (one (V,) float64 array each)


class NeighbourGraph:
    """
    The k-nearest-neighbour links (up to ``max_gap`` long) between voxel positions.

    ``src``/``dst`` (L,) are the links, ``src`` sorted (k per node at most, nearest first);
    ``length`` (L,) is what a path pays for a link: metres, times a cost when the baseline
    set one with ``with_link_costs``.
    """

    def __init__(self, xyz: np.ndarray, max_gap: float, neighbours: int = NEIGHBOURS):
        """Link every position (V, 3) to its nearest neighbours; none when ``max_gap`` <= 0."""
        xyz = np.asarray(xyz, dtype=np.float64)
        self.size = len(xyz)
        self.src = self.dst = np.zeros(0, dtype=np.int64)
        self.length = np.zeros(0)
        self.neighbours = 0
        self._matrix = None
        self._pairs = None
        self._starts = None
        self._tree = None        # the positions' kd-tree while lengths are metres
        self._distances = {}     # (seeds, limit) -> seed_distance, the last few
        self._kept = None        # (kept nodes, their links' matrix) of the last nearest_seed
        k = min(neighbours + 1, self.size)
        if max_gap <= 0 or k < 2:
            self.enabled = max_gap > 0
            return
        self.enabled = True
        self.neighbours = k - 1
        # workers=-1: the queries are independent, so every core may take a share (same result)
        self._tree = cKDTree(xyz)
        dist, nbr = self._tree.query(xyz, k, workers=-1)
        near = (dist[:, 1:] <= max_gap).ravel()
        self.src = np.repeat(np.arange(self.size), k - 1)[near]
        self.dst = nbr[:, 1:].ravel()[near]
        self.length = dist[:, 1:].ravel()[near]

    @property
    def complete(self) -> bool:
        """Return whether every node kept all its k links (``dst`` reshapes to (V, k))."""
        return len(self.dst) == self.size * self.neighbours

    def undirected_pairs(self):
        """
        Return (``first`` (U,), ``pair`` (L,)): one link per undirected pair, and each link's pair.

        Most kNN links come in both directions; a quantity that is symmetric in a link's two
        ends (every link feature, the boundary network's logit) is computed once per pair at
        ``first`` and read back with ``pair`` (``values[pair]``), which halves that work.
        """
        if self._pairs is None:
            self._pairs = _undirected_pairs(self.src, self.dst, self.size, self.neighbours,
                                            self.complete)
        return self._pairs

    def with_link_costs(self, cost: np.ndarray) -> 'NeighbourGraph':
        """Return a copy whose link lengths are multiplied by ``cost`` (L,) >= 0."""
        out = object.__new__(NeighbourGraph)
        out.__dict__.update(self.__dict__)
        out.length = self.length * np.asarray(cost, dtype=np.float64)
        out._matrix = out._tree = out._kept = None
        out._distances = {}
        return out

    def with_link_lengths(self, length: np.ndarray) -> 'NeighbourGraph':
        """Return a copy whose links cost ``length`` (L,) >= 0 instead of their lengths."""
        out = object.__new__(NeighbourGraph)
        out.__dict__.update(self.__dict__)
        out.length = np.asarray(length, dtype=np.float64)
        out._matrix = out._tree = out._kept = None
        out._distances = {}
        return out

    def restricted(self, keep: np.ndarray) -> 'NeighbourGraph':
        """Return a copy with only the links whose two ends are kept ((V,) bool)."""
        out = object.__new__(NeighbourGraph)
        out.__dict__.update(self.__dict__)
        nodes = np.flatnonzero(keep)
        if len(nodes) < self.size // 2:      # few kept: gather their links (same ones, in order)
            ok = self._links_from(nodes)
            ok = ok[keep[self.dst[ok]]]
        else:
            ok = keep[self.src] & keep[self.dst]
        out.src, out.dst, out.length = self.src[ok], self.dst[ok], self.length[ok]
        out._matrix = out._pairs = out._starts = out._kept = None
        out._distances = {}
        return out

    def restricted_to(self, nodes: np.ndarray, keep: np.ndarray) -> 'NeighbourGraph':
        """
        Return ``restricted(keep)`` cut down to ``nodes`` (sorted, holding every kept node).

        Node ``i`` of the result is ``nodes[i]``. The relabelling keeps the node order and the
        links' order, so a Dijkstra on it does the same steps as on ``restricted(keep)`` (same
        distances, same tie-breaks) while its cost follows ``len(nodes)``, not the whole graph.
        """
        nodes = np.asarray(nodes, dtype=np.int64)
        links = self._links_from(nodes)
        links = links[keep[self.src[links]] & keep[self.dst[links]]]
        local = np.full(self.size, -1, dtype=np.int64)
        local[nodes] = np.arange(len(nodes))
        out = object.__new__(NeighbourGraph)
        out.__dict__.update(self.__dict__)
        out.size = len(nodes)
        out.src, out.dst = local[self.src[links]], local[self.dst[links]]
        out.length = self.length[links]
        out._matrix = out._pairs = out._starts = out._tree = out._kept = None
        out._distances = {}
        return out

    def _links_from(self, nodes: np.ndarray) -> np.ndarray:
        """Return the indices of the links leaving ``nodes`` (sorted), in link order."""
        starts = self._link_starts()
        first, count = starts[nodes], starts[nodes + 1] - starts[nodes]
        ends = np.cumsum(count)
        return np.repeat(first - ends + count, count) + np.arange(ends[-1] if len(ends) else 0)

    def _link_starts(self) -> np.ndarray:
        """Return (V + 1,): node i's links are ``starts[i]:starts[i + 1]`` (``src`` sorted)."""
        if self._starts is None:
            self._starts = np.searchsorted(self.src, np.arange(self.size + 1))
        return self._starts

    def clicked_pieces(self, labels: np.ndarray, seeds: dict) -> np.ndarray:
        """
        Return a copy of ``labels`` where pieces no seed of their label reaches read 0.

        ``labels`` (V,) ints, 0 = background; ``seeds`` maps a label to the indices of its
        positive clicks. A label none of whose seeds carries it is left alone.
        """
        labels = np.asarray(labels)
        out = labels.copy()
        if not self.enabled or not seeds:
            return out
        # Only voxels of clicked labels matter: the graph is cut down to them (the object is
        # usually a small part of the box), links kept where both ends share the label.
        seeded = np.isin(labels, np.fromiter(seeds, dtype=labels.dtype))
        nodes = np.flatnonzero(seeded)
        links = self._links_from(nodes)
        links = links[labels[self.src[links]] == labels[self.dst[links]]]
        local = np.full(self.size, -1, dtype=np.int64)
        local[nodes] = np.arange(len(nodes))
        src, dst = local[self.src[links]], local[self.dst[links]]   # src stays sorted
        indptr = np.zeros(len(nodes) + 1, dtype=np.int64)
        np.cumsum(np.bincount(src, minlength=len(nodes)), out=indptr[1:])
        graph = csr_matrix((np.ones(len(dst), dtype=np.int8), dst, indptr),
                           shape=(len(nodes), len(nodes)))
        # weak components of the directed kNN links = components of the undirected graph,
        # without symmetrising the matrix first
        _, piece = connected_components(graph, directed=True, connection='weak')
        for label, rows in seeds.items():
            rows = np.asarray(rows, dtype=np.int64)
            rows = rows[labels[rows] == label]
            if len(rows) == 0:
                continue
            members = nodes[labels[nodes] == label]
            reached = np.isin(piece[local[members]], piece[local[rows]])
            out[members[~reached]] = 0
        return out

    def _links(self):
        """Return the links as a sparse matrix of lengths (built on first use)."""
        if self._matrix is None:
            # zero-length links (duplicate positions) would vanish from a sparse matrix
            w = np.maximum(self.length, 1e-9)
            self._matrix = csr_matrix((w, (self.src, self.dst)), shape=(self.size, self.size))
        return self._matrix

    def _kept_links(self, keep: np.ndarray) -> csr_matrix:
        """Return the matrix of the links between kept nodes (the last one is kept)."""
        keep = np.asarray(keep, dtype=bool)
        if self._kept is None or not np.array_equal(self._kept[0], keep):
            self._kept = keep.copy(), _kept_entries(self._links(), keep)
        return self._kept[1]

    def seed_distance(self, seeds: np.ndarray, limit: float) -> np.ndarray:
        """Geodesic distance from every node to its nearest seed (inf beyond ``limit``)."""
        seeds = np.unique(np.asarray(seeds, dtype=np.int64))
        if not self.enabled or len(seeds) == 0:
            return np.full(self.size, np.inf)
        # A click usually changes one part's seeds: the other parts' distances are reused.
        key = (seeds.tobytes(), float(limit))
        out = self._distances.pop(key, None)
        if out is None:
            out = self._bounded_distance(seeds, limit)
            out.flags.writeable = False
        self._distances[key] = out            # the newest last; the oldest go first
        while len(self._distances) > DISTANCES_KEPT:
            del self._distances[next(iter(self._distances))]
        return out

    def _bounded_distance(self, seeds: np.ndarray, limit: float) -> np.ndarray:
        near = self._within(seeds, limit)
        if near is None:
            return dijkstra(self._links(), directed=False, indices=seeds, limit=limit,
                            min_only=True)
        nodes = np.flatnonzero(near)
        out = np.full(self.size, np.inf)
        out[nodes] = dijkstra(self.restricted_to(nodes, near)._links(), directed=False,
                              indices=np.searchsorted(nodes, seeds), limit=limit,
                              min_only=True)
        return out

    def _within(self, seeds: np.ndarray, limit: float):
        """
        Return (V,) bool: nodes within straight-line ``limit`` of a seed (None: no shortcut).

        With metric lengths no path of at most ``limit`` leaves that ball, so a Dijkstra
        bounded by ``limit`` never touches a node outside it: running it on the ball alone
        gives the same distances. Only worth it when the ball is a small part of the graph.
        """
        if self._tree is None or not np.isfinite(limit) or self.size < BALL_MIN_NODES:
            return None
        reach = limit * (1.0 + 1e-6) + 1e-9            # margin for rounding in the sums
        balls = self._tree.query_ball_point(self._tree.data[seeds], reach)
        near = np.zeros(self.size, dtype=bool)
        for ball in balls:
            near[ball] = True
        return near if np.count_nonzero(near) < BALL_MAX_SHARE * self.size else None

    def nearest_seed(self, seeds: np.ndarray, radius: float,
                     keep: Optional[np.ndarray] = None) -> np.ndarray:
        """
        Return, per node, the position in ``seeds`` of the nearest seed along the links.

        Distance is the geodesic length over the (undirected) links; nodes farther than
        ``radius`` from every seed read -1. When several seeds share a node the last wins,
        as the last click on a voxel decides its label. ``keep`` ((V,) bool) walks only the
        links between kept nodes, as ``restricted(keep).nearest_seed`` does; the matrix of
        the last ``keep`` is kept, and a new one is cut from this graph's (no link lists).
        """
        out = np.full(self.size, -1, dtype=np.int64)
        seeds = np.asarray(seeds, dtype=np.int64)
        if not self.enabled or radius <= 0 or len(seeds) == 0:
            return out
        nodes, first_from_end = np.unique(seeds[::-1], return_index=True)
        position = np.full(self.size, -1, dtype=np.int64)
        position[nodes] = len(seeds) - 1 - first_from_end
        _, _, source = dijkstra(self._links() if keep is None else self._kept_links(keep),
                                directed=False, indices=nodes, limit=radius, min_only=True,
                                return_predecessors=True)
        reached = source >= 0
        out[reached] = position[source[reached]]
        return out


def _kept_entries(matrix: csr_matrix, keep: np.ndarray) -> csr_matrix:
    """Return the CSR ``matrix`` without the entries of rows or columns not kept (sorted)."""
    rows = np.repeat(keep, np.diff(matrix.indptr))
    ok = rows & keep[matrix.indices]
    kept = np.zeros(len(ok) + 1, dtype=matrix.indptr.dtype)
    np.cumsum(ok, out=kept[1:])
    out = csr_matrix((matrix.data[ok], matrix.indices[ok], kept[matrix.indptr]),
                     shape=matrix.shape)
    out.has_sorted_indices = matrix.has_sorted_indices
    return out


def _undirected_pairs(src: np.ndarray, dst: np.ndarray, size: int, k: int, complete: bool):
    """Links that stand for each undirected pair (first of the two), and each link's pair."""
    rep = np.arange(len(src))
    if complete and k > 0:
        # (i, j) with i > j: its reverse (j, i) is link j * k + m when i is j's m-th neighbour
        later = np.flatnonzero(src > dst)
        rows = dst[later]
        hit, m = np.nonzero(dst.astype(np.int32).reshape(size, k)[rows]
                            == src[later, None].astype(np.int32))  # one hit a row at most
        rep[later[hit]] = rows[hit] * k + m
    elif len(src):
        lo, hi = np.minimum(src, dst), np.maximum(src, dst)
        _, first, inverse = np.unique(lo * size + hi, return_index=True, return_inverse=True)
        rep = first[inverse.reshape(-1)]
    first = np.flatnonzero(rep == np.arange(len(src)))
    position = np.zeros(len(src), dtype=np.int64)
    position[first] = np.arange(len(first))
    return first, position[rep]
