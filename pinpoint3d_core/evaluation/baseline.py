"""
A non-learned interactive segmenter with the same session API as the model.

It gives the evaluation harness a floor to compare the learned model against. Every point takes
the label of the click it is closest to by geodesic distance on a k-NN graph of 5 cm voxels,
where an edge costs its length scaled up by normal and colour/intensity dissimilarity (so paths
prefer to stay on one smooth, uniformly coloured surface). Points nearest to a negative click,
or farther than ``max_distance`` from every click, are background.
"""

import time
from typing import List, Optional, Sequence

import numpy as np
from pinpoint3d_core.errors import InvalidCloudError
from pinpoint3d_core.inference.graph import NeighbourGraph
from pinpoint3d_core.interaction import (
    check_granularity, check_targets, Click, ClickBook, DEFAULT_MAX_CLICKS,
    MIN_DEFAULT_SNAP_RADIUS, Prediction, ResolvedClick, snap_radius_or_default)


def _voxelize(points, voxel):
    keys = np.floor(points / voxel).astype(np.int64)
    _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    counts = np.bincount(inverse)
    return first, inverse, counts


def _normals(xyz, nbr):
    """Estimate unit normals from the PCA of each voxel's k nearest neighbours."""
    local = xyz[nbr] - xyz[nbr].mean(axis=1, keepdims=True)
    cov = np.einsum('nki,nkj->nij', local, local)
    _, vecs = np.linalg.eigh(cov)
    return vecs[:, :, 0]


class GraphBaselineSegmenter:
    """Geodesic nearest-click segmentation on a k-NN voxel graph (no learning)."""

    source = 'baseline'
    untrained = False

    # Weights picked on three synthetic tuning scenes (seeds 1.8e9+), not on evaluation sets.
    def __init__(self, voxel_size=0.05, k=10, normal_weight=4.0, color_weight=12.0,
                 max_distance=1.2, max_clicks=DEFAULT_MAX_CLICKS):
        self.voxel_size = float(voxel_size)
        self.k = int(k)
        self.normal_weight = float(normal_weight)
        self.color_weight = float(color_weight)
        self.max_distance = float(max_distance)
        self.max_clicks = int(max_clicks)

    @classmethod
    def load(cls, checkpoint=None, device='auto', **kwargs) -> 'GraphBaselineSegmenter':
        """Mirror ``Segmenter.load``; the baseline has no weights."""
        return cls(**kwargs)

    def start(self, points: np.ndarray, colors: Optional[np.ndarray] = None,
              intensity: Optional[np.ndarray] = None) -> 'BaselineSession':
        """Build the voxel graph for one cloud and return a session."""
        return BaselineSession(self, points, colors, intensity)


def _voxel_features(pts, colors, intensity, valid, inverse, counts):
    """Mean colour (0..1) and/or intensity (0..1) per voxel; (V, 0) when there are none."""
    feat = np.zeros((len(pts), 0))
    if colors is not None:
        c = np.asarray(colors, dtype=np.float64)[valid]
        c = c / 255.0 if c.max(initial=0) > 1.0 else c
        feat = np.concatenate([feat, c], axis=1)
    if intensity is not None:
        i = np.asarray(intensity, dtype=np.float64)[valid].reshape(-1, 1)
        i = i / max(float(i.max(initial=0)), 1.0) if i.max(initial=0) > 1.0 else i
        feat = np.concatenate([feat, i], axis=1)
    out = np.zeros((len(counts), feat.shape[1]))
    if feat.shape[1]:
        np.add.at(out, inverse, feat)
        out /= counts[:, None]
    return out


def surface_graph(seg, xyz, feat):
    """
    Build the k-NN graph whose link lengths grow with normal and colour/intensity change.

    A link costs its length times 1 + normal_weight (1 - |n_a . n_b|) + colour_weight
    |f_a - f_b| / sqrt(channels), so paths prefer one smooth, uniformly coloured surface.
    """
    nv = len(xyz)
    k = min(seg.k, nv - 1)
    graph = NeighbourGraph(xyz, np.inf if k >= 1 else 0.0, neighbours=max(k, 1))
    if k < 1:
        return graph
    nbr = graph.dst.reshape(nv, k)
    normals = _normals(xyz, np.concatenate([np.arange(nv)[:, None], nbr], axis=1)) \
        if k >= 2 else np.zeros((nv, 3))
    cost = 1.0 + seg.normal_weight * (
        1.0 - np.abs(np.einsum('nd,nkd->nk', normals, normals[nbr])))
    if feat.shape[1]:
        diff = np.linalg.norm(feat[:, None, :] - feat[nbr], axis=2)
        cost += seg.color_weight * diff / np.sqrt(feat.shape[1])
    return graph.with_link_costs(cost.reshape(-1))


class BaselineSession:
    """Clicks and cached graph for one cloud (the same session contract as the model's)."""

    def __init__(self, seg, points, colors=None, intensity=None):
        t0 = time.perf_counter()
        points = np.asarray(points, dtype=np.float64)
        if points.ndim != 2 or points.shape[1] != 3 or len(points) == 0:
            raise InvalidCloudError('points must be a non-empty (N, 3) array')
        self.seg = seg
        self.n = len(points)
        self.valid = np.flatnonzero(np.all(np.isfinite(points), axis=1))
        if len(self.valid) == 0:
            raise InvalidCloudError('the cloud has no finite points')
        pts = points[self.valid]
        first, self.inverse, counts = _voxelize(pts, seg.voxel_size)
        xyz = np.zeros((len(first), 3))
        np.add.at(xyz, self.inverse, pts)
        xyz /= counts[:, None]
        feat = _voxel_features(pts, colors, intensity, self.valid, self.inverse, counts)
        self.graph = surface_graph(seg, xyz, feat)
        voxel_of_row = np.full(self.n, -1, dtype=np.int64)
        voxel_of_row[self.valid] = self.inverse
        self._book = ClickBook(points, voxel_of_row, seg.max_clicks)
        self.encode_ms = (time.perf_counter() - t0) * 1e3

    @property
    def num_points(self) -> int:
        """Return N, the rows the caller passed."""
        return self.n

    @property
    def clicks(self) -> List[ResolvedClick]:
        """Return the click history (resolved), oldest first."""
        return list(self._book.clicks)

    def default_snap_radius(self) -> float:
        """Snap radius used when add_clicks gets none: two voxels, at least 5 cm."""
        return max(MIN_DEFAULT_SNAP_RADIUS, 2.0 * self.seg.voxel_size)

    def add_clicks(self, clicks: Sequence[Click],
                   snap_radius: Optional[float] = None) -> List[int]:
        """Add clicks (all or none); returns their point indices in the caller's indexing."""
        radius = snap_radius_or_default(snap_radius, self.default_snap_radius())
        return [r.index for r in self._book.add(clicks, radius)]

    def undo(self) -> int:
        """Remove the last batch of clicks; returns how many it held."""
        return self._book.undo()

    def reset(self) -> None:
        """Remove all clicks."""
        self._book.reset()

    def predict(self, granularity: str = 'both',
                target_objects: Optional[Sequence[int]] = None) -> Prediction:
        """Label every point with its geodesically nearest click's object and part."""
        check_granularity(granularity)
        check_targets(target_objects, self._book.clicks)
        t0 = time.perf_counter()
        clicks = [(c.voxel, c.index, c.object_id if c.positive else 0,
                   c.part_id if c.positive else 0) for c in self._book.clicks]
        obj_v = np.zeros(self.graph.size, dtype=np.uint32)
        part_v = np.zeros_like(obj_v)
        if clicks:
            # later clicks win on a shared voxel
            source = self.graph.nearest_seed([v for v, _, _, _ in clicks], self.seg.max_distance)
            reached = source >= 0
            obj_v[reached] = [clicks[s][2] for s in source[reached]]
            part_v[reached] = [clicks[s][3] for s in source[reached]]
        obj = np.zeros(self.n, dtype=np.uint32)
        part = np.zeros(self.n, dtype=np.uint32)
        obj[self.valid] = obj_v[self.inverse]
        part[self.valid] = part_v[self.inverse]
        for _, i, o, p in clicks:  # a clicked point always gets its click's label
            obj[i], part[i] = o, p
        part[obj == 0] = 0
        if granularity == 'object':
            part[:] = 0
        objs = sorted({o for _, _, o, _ in clicks if o})
        parts = sorted({(o, p) for _, _, o, p in clicks if o and p})
        return Prediction(obj, part, dict.fromkeys(objs, 1.0), dict.fromkeys(parts, 1.0),
                          (time.perf_counter() - t0) * 1e3, granularity)
