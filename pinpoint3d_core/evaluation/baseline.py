"""
A non-learned interactive segmenter with the same session API as the model.

It gives the evaluation harness a floor to compare the learned model against. Every point takes
the label of the click it is closest to by geodesic distance on a k-NN graph of 5 cm voxels,
where an edge costs its length scaled up by normal and colour/intensity dissimilarity (so paths
prefer to stay on one smooth, uniformly coloured surface). Points nearest to a negative click,
or farther than ``max_distance`` from every click, are background.
"""

from dataclasses import dataclass, field
import time

import numpy as np
from pinpoint3d_core.errors import ClickError, InvalidCloudError
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree


@dataclass
class BaselinePrediction:
    """Prediction in the session API's shape (see docs/architecture.md)."""

    object_ids: np.ndarray
    part_ids: np.ndarray
    object_scores: dict = field(default_factory=dict)
    part_scores: dict = field(default_factory=dict)
    decode_ms: float = 0.0


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

    # Weights picked on three synthetic tuning scenes (seeds 1.8e9+), not on evaluation sets.
    def __init__(self, voxel_size=0.05, k=10, normal_weight=4.0, color_weight=12.0,
                 max_distance=1.2):
        self.voxel_size = float(voxel_size)
        self.k = int(k)
        self.normal_weight = float(normal_weight)
        self.color_weight = float(color_weight)
        self.max_distance = float(max_distance)

    @classmethod
    def load(cls, checkpoint=None, device='auto', **kwargs):
        """Mirror ``Segmenter.load``; the baseline has no weights."""
        return cls(**kwargs)

    def start(self, points, colors=None, intensity=None):
        """Build the voxel graph for one cloud and return a session."""
        return BaselineSession(self, points, colors, intensity)


class BaselineSession:
    """Clicks and cached graph for one cloud."""

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
        self.points = pts
        first, self.inverse, counts = _voxelize(pts, seg.voxel_size)
        nv = len(first)
        xyz = np.zeros((nv, 3))
        np.add.at(xyz, self.inverse, pts)
        xyz /= counts[:, None]
        feat = np.zeros((len(pts), 0))
        if colors is not None:
            c = np.asarray(colors, dtype=np.float64)[self.valid]
            c = c / 255.0 if c.max(initial=0) > 1.0 else c
            feat = np.concatenate([feat, c], axis=1)
        if intensity is not None:
            i = np.asarray(intensity, dtype=np.float64)[self.valid].reshape(-1, 1)
            i = i / max(float(i.max(initial=0)), 1.0) if i.max(initial=0) > 1.0 else i
            feat = np.concatenate([feat, i], axis=1)
        if feat.shape[1]:
            f = np.zeros((nv, feat.shape[1]))
            np.add.at(f, self.inverse, feat)
            feat = f / counts[:, None]
        k = min(seg.k, nv - 1)
        self.graph = csr_matrix((nv, nv))
        if k >= 1:
            dist, nbr = cKDTree(xyz).query(xyz, k=k + 1)
            dist, nbr = dist[:, 1:], nbr[:, 1:]
            normals = _normals(xyz, np.concatenate([np.arange(nv)[:, None], nbr], axis=1)) \
                if k >= 2 else np.zeros((nv, 3))
            cost = 1.0 + seg.normal_weight * (
                1.0 - np.abs(np.einsum('nd,nkd->nk', normals, normals[nbr])))
            if feat.shape[1]:
                diff = np.linalg.norm(feat[:, None, :] - feat[nbr], axis=2)
                cost += seg.color_weight * diff / np.sqrt(feat.shape[1])
            rows = np.repeat(np.arange(nv), k)
            w = np.maximum((dist * cost).reshape(-1), 1e-9)
            g = csr_matrix((w, (rows, nbr.reshape(-1))), shape=(nv, nv))
            self.graph = g.maximum(g.T).tocsr()
        self._tree = None
        self._batches = []
        self.encode_ms = (time.perf_counter() - t0) * 1e3

    def _point_index(self, click, snap_radius):
        if getattr(click, 'index', None) is not None:
            i = int(click.index)
            if not 0 <= i < self.n:
                raise ClickError(f'click index {i} is outside the cloud (0..{self.n - 1})')
            j = np.searchsorted(self.valid, i)
            if j >= len(self.valid) or self.valid[j] != i:
                raise ClickError(f'click index {i} is a non-finite point; click another one')
            return int(j)
        if getattr(click, 'position', None) is None:
            raise ClickError('a click needs an index or a position')
        if self._tree is None:
            self._tree = cKDTree(self.points)
        d, j = self._tree.query(np.asarray(click.position, dtype=np.float64))
        if snap_radius is not None and d > snap_radius:
            raise ClickError(f'click is {d:.3f} m from the nearest point (snap radius '
                             f'{snap_radius} m): click on the cloud')
        return int(j)

    def add_clicks(self, clicks, snap_radius=None):
        """Add clicks; returns their point indices in the caller's indexing."""
        batch = []
        for c in clicks:
            j = self._point_index(c, snap_radius)
            positive = bool(getattr(c, 'positive', True))
            obj = int(c.object_id) if positive else 0
            part = int(getattr(c, 'part_id', 0) or 0) if positive else 0
            batch.append((j, obj, part))
        self._batches.append(batch)
        return [int(self.valid[j]) for j, _, _ in batch]

    def undo(self):
        """Remove the last batch of clicks."""
        if self._batches:
            self._batches.pop()

    def reset(self):
        """Remove all clicks."""
        self._batches = []

    def predict(self, granularity='both'):
        """Label every point with its geodesically nearest click's object and part."""
        t0 = time.perf_counter()
        obj_v = np.zeros(self.graph.shape[0], dtype=np.uint32)
        part_v = np.zeros_like(obj_v)
        clicks = [c for b in self._batches for c in b]
        if clicks:
            label_of = {}
            for j, obj, part in clicks:
                label_of[int(self.inverse[j])] = (obj, part)  # later clicks win on a voxel
            sources = np.fromiter(label_of, dtype=np.int64)
            _, _, src = dijkstra(self.graph, indices=sources, min_only=True,
                                 return_predecessors=True, limit=self.seg.max_distance)
            reached = src >= 0
            obj_v[reached] = [label_of[s][0] for s in src[reached]]
            part_v[reached] = [label_of[s][1] for s in src[reached]]
        obj = np.zeros(self.n, dtype=np.uint32)
        part = np.zeros(self.n, dtype=np.uint32)
        obj[self.valid] = obj_v[self.inverse]
        part[self.valid] = part_v[self.inverse]
        for j, o, p in clicks:  # a clicked point always gets its click's label
            obj[self.valid[j]] = o
            part[self.valid[j]] = p
        part[obj == 0] = 0
        if granularity == 'object':
            part[:] = 0
        objs = sorted({int(o) for _, o, _ in clicks if o})
        parts = sorted({(int(o), int(p)) for _, o, p in clicks if o and p})
        return BaselinePrediction(
            object_ids=obj, part_ids=part,
            object_scores=dict.fromkeys(objs, 1.0), part_scores=dict.fromkeys(parts, 1.0),
            decode_ms=(time.perf_counter() - t0) * 1e3)
