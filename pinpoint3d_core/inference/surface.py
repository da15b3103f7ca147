"""
The surface graph of a cloud: voxels at the sensor's scale, their links, normals, support planes.

Geodesic segmentation from clicks (``inference/geodesic.py``) walks this graph. It is built once
per cloud, numpy/scipy only, and serves both the non-learned baseline (link costs from normal
and colour change) and the learned model (link costs from a trained boundary classifier over
``link_features``). Support planes (a table, the ground, a floor) are found by RANSAC and are
taken out of the graph, so a click on an object does not flow into what it rests on.
"""

import dataclasses
import time
from typing import Dict, List, Optional, Tuple

import numpy as np
from pinpoint3d_core.inference.blas import one_blas_thread
from pinpoint3d_core.inference.graph import NeighbourGraph

# Names of the columns of ``SurfaceGraph.link_features``.
LINK_FEATURES = ('length_voxels', 'normal_change', 'crease', 'max_curvature',
                 'curvature_change', 'colour_change', 'plane_distance_voxels',
                 'plane_distance_change_voxels')
RANSAC_ITERATIONS = 200
RANSAC_SAMPLE = 20000
# Candidates whose approximate inlier count is this close to the best are counted exactly.
_RECOUNT_MARGIN = 3


@dataclasses.dataclass(frozen=True)
class Plane:
    """A support plane: unit ``normal`` (3,), a ``point`` on it, its voxel ``inliers``."""

    normal: np.ndarray
    point: np.ndarray
    inliers: np.ndarray            # (V,) bool

    def signed_distance(self, xyz: np.ndarray) -> np.ndarray:
        """Return the signed distance (m) of positions (N, 3) to the plane."""
        return (np.asarray(xyz, dtype=np.float64) - self.point) @ self.normal


def voxel_means(points: np.ndarray, voxel: float):
    """Return (mean position per voxel (V, 3), voxel of each point (N,), counts (V,))."""
    grid = np.floor(points / voxel).astype(np.int64)
    grid -= grid.min(axis=0)
    span = grid.max(axis=0) + 1
    if np.prod(span.astype(np.float64)) < 2.0 ** 62:     # one int64 key per point: fast
        keys = (grid[:, 0] * span[1] + grid[:, 1]) * span[2] + grid[:, 2]
        _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    else:
        _, inverse, counts = np.unique(grid, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    xyz = np.stack([np.bincount(inverse, points[:, i], len(counts)) for i in range(3)], axis=1)
    return xyz / counts[:, None], inverse, counts


def appearance(colors, intensity, rows, inverse, counts) -> np.ndarray:
    """Mean colour (0..1, 3 channels) or intensity (0..1, 1 channel) per voxel; (V, 0) if none."""
    if colors is not None:
        vals = np.asarray(colors, dtype=np.float64)[rows]
        vals = vals / 255.0 if vals.max(initial=0) > 1.0 else vals
    elif intensity is not None:
        vals = np.asarray(intensity, dtype=np.float64)[rows].reshape(-1, 1)
        vals = np.nan_to_num(vals)
        vals = vals / max(float(vals.max(initial=0)), 1.0) if vals.max(initial=0) > 1.0 \
            else vals
    else:
        return np.zeros((len(counts), 0))
    out = np.stack([np.bincount(inverse, vals[:, i], len(counts))
                    for i in range(vals.shape[1])], axis=1)
    return out / counts[:, None]


def normals_and_curvature(xyz: np.ndarray, neighbourhoods: np.ndarray):
    """Return unit normals (V, 3) and surface variation (V,) from each neighbourhood's PCA."""
    hood = xyz[neighbourhoods]
    local = hood - hood.mean(axis=1, keepdims=True)
    cov = np.einsum('nki,nkj->nij', local, local)
    values, vectors = np.linalg.eigh(cov)
    curvature = values[:, 0] / np.maximum(values.sum(axis=1), 1e-12)
    return vectors[:, :, 0], curvature


def fit_plane(xyz: np.ndarray, threshold: float, up: Optional[np.ndarray] = None,
              up_tolerance: float = 0.9, seed: int = 0) -> Optional[Tuple[np.ndarray, np.ndarray]]:
    """
    Return (normal, point) of the plane with the most positions within ``threshold`` (RANSAC).

    With ``up`` only planes whose normal is within acos(``up_tolerance``) of it count (the
    ground under a LiDAR). The winner is refined by least squares over its inliers.
    """
    rng = np.random.default_rng(seed)
    if len(xyz) < 3:
        return None
    sample = xyz
    if len(xyz) > RANSAC_SAMPLE:
        sample = xyz[rng.choice(len(xyz), RANSAC_SAMPLE, replace=False)]
    draws = np.array([rng.choice(len(sample), 3, replace=False)
                      for _ in range(RANSAC_ITERATIONS)])
    p0, p1, p2 = (sample[draws[:, i]] for i in range(3))
    crosses = _cross(p1 - p0, p2 - p0)
    candidates = []                      # (normal, point) in draw order
    for normal, point in zip(crosses, p0):
        norm = np.linalg.norm(normal)
        if norm < 1e-12:
            continue
        normal /= norm
        if up is not None and abs(normal @ up) < up_tolerance:
            continue
        candidates.append((normal, point))
    best = _most_inliers(sample, candidates, threshold)
    if best is None:
        return None
    inliers = xyz[np.abs((xyz - best[1]) @ best[0]) < threshold]
    centre = inliers.mean(axis=0)
    normal = np.linalg.svd(inliers - centre, full_matrices=False)[2][2]
    return normal, centre


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cross products of (M, 3) arrays, term for term as ``np.cross`` (same bits)."""
    out = np.empty_like(a)
    out[:, 0] = a[:, 1] * b[:, 2] - a[:, 2] * b[:, 1]
    out[:, 1] = a[:, 2] * b[:, 0] - a[:, 0] * b[:, 2]
    out[:, 2] = a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]
    return out


def _most_inliers(sample: np.ndarray, candidates, threshold: float):
    """
    Return the first candidate plane with the most ``sample`` positions within ``threshold``.

    All candidates are scored in one matrix product (sample . n - p . n); that can differ
    from (sample - p) . n in the last bit, so the few candidates whose count is near the best
    are counted again the exact way before the winner is chosen (the same winner as one exact
    count per candidate, at a fraction of the time).
    """
    if not candidates:
        return None
    normals = np.array([c[0] for c in candidates])
    offsets = np.einsum('ij,ij->i', normals, np.array([c[1] for c in candidates]))
    approx = np.zeros(len(candidates), dtype=np.int64)
    columns = np.ascontiguousarray(sample.T)
    for lo in range(0, len(candidates), 50):
        dist = normals[lo:lo + 50] @ columns
        dist -= offsets[lo:lo + 50, None]
        np.abs(dist, out=dist)
        approx[lo:lo + 50] = np.count_nonzero(dist < threshold, axis=1)
    best, best_count = None, 0
    for i in np.flatnonzero(approx >= approx.max() - _RECOUNT_MARGIN):
        normal, point = candidates[i]
        count = np.count_nonzero(np.abs((sample - point) @ normal) < threshold)
        if count > best_count:
            best, best_count = candidates[i], count
    return best


def support_planes(xyz: np.ndarray, threshold: float, count: int, min_fraction: float,
                   up: Optional[np.ndarray] = None) -> List[Plane]:
    """Up to ``count`` planes, each holding at least ``min_fraction`` of the voxels."""
    planes: List[Plane] = []
    free = np.ones(len(xyz), dtype=bool)
    for i in range(count):
        fit = fit_plane(xyz[free], threshold, up, seed=i)
        if fit is None:
            break
        normal, point = fit
        inliers = free & (np.abs((xyz - point) @ normal) < threshold)
        if inliers.sum() < min_fraction * len(xyz):
            break
        planes.append(Plane(normal, point, inliers))
        free &= ~inliers
    return planes


def pair_concavity(a: np.ndarray, b: np.ndarray, na: np.ndarray, nb: np.ndarray,
                   sensor=(0.0, 0.0, 0.0)) -> np.ndarray:
    """
    Return (P,) how concave the step from a to b is seen from ``sensor`` (> 0 a groove).

    (n_a - n_b) . u with both normals turned towards the sensor and u the unit direction from
    a to b: the definition of ``SurfaceGraph.link_concavity``, for any pairs of voxels.
    """
    sensor = np.asarray(sensor, dtype=np.float64)
    na = na * np.where(np.einsum('ij,ij->i', na, sensor - a) >= 0, 1.0, -1.0)[:, None]
    nb = nb * np.where(np.einsum('ij,ij->i', nb, sensor - b) >= 0, 1.0, -1.0)[:, None]
    d = b - a
    u = d / np.maximum(np.linalg.norm(d, axis=1), 1e-12)[:, None]
    return np.einsum('ij,ij->i', na - nb, u)


def large_pieces(plane: Plane, links: NeighbourGraph, min_share: float) -> Plane:
    """
    Return ``plane`` without the pieces of its inliers smaller than ``min_share`` of them.

    A piece is a connected set of inliers over the graph links. A small one is usually not
    the table but a surface at its height inside an object (the inner bottom of a bowl), which
    the object needs to stay connected.
    """
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components
    inside = plane.inliers[links.src] & plane.inliers[links.dst]
    size = len(plane.inliers)
    graph = csr_matrix((np.ones(int(inside.sum()), dtype=np.int8),
                        (links.src[inside], links.dst[inside])), shape=(size, size))
    _, piece = connected_components(graph, directed=False)
    counts = np.bincount(piece[plane.inliers], minlength=piece.max() + 1)
    keep = plane.inliers & (counts[piece] >= min_share * plane.inliers.sum())
    return Plane(plane.normal, plane.point, keep)


class StageClock:
    """Wall and process-CPU ms of consecutive stages (``stages``: name -> (wall, cpu))."""

    def __init__(self):
        self.stages: Dict[str, Tuple[float, float]] = {}
        self._wall, self._cpu = time.perf_counter(), time.process_time()

    def lap(self, name: str) -> None:
        """Close the stage ``name`` (time since the previous lap) and start the next."""
        wall, cpu = time.perf_counter(), time.process_time()
        self.stages[name] = ((wall - self._wall) * 1e3, (cpu - self._cpu) * 1e3)
        self._wall, self._cpu = wall, cpu


class SurfaceGraph:
    """
    One cloud on the graph grid: voxel positions, links, per-link features, support planes.

    ``xyz`` (V, 3) mean positions; ``voxel_of_row`` (N,) voxel of each caller row (-1 for NaN
    rows); ``links`` the k-nearest-neighbour NeighbourGraph (lengths in metres);
    ``link_features`` (L, 8) float32 in LINK_FEATURES order; ``planes`` the support planes and
    ``on_plane`` (V,) bool their union; ``timings`` the build's stages (StageClock).
    """

    def __init__(self, points: np.ndarray, colors=None, intensity=None, voxel: float = 0.05,
                 neighbours: int = 10, plane_threshold: float = 0.0, plane_count: int = 1,
                 plane_min_fraction: float = 0.1, up: Optional[np.ndarray] = None,
                 plane_piece_min: float = 0.0):
        self._plane_distance: Optional[np.ndarray] = None
        self._concavity: Dict[Tuple[float, ...], np.ndarray] = {}
        with one_blas_thread():
            self._build(points, colors, intensity, voxel, neighbours, plane_threshold,
                        plane_count, plane_min_fraction, up, plane_piece_min)

    def _build(self, points, colors, intensity, voxel, neighbours, plane_threshold,
               plane_count, plane_min_fraction, up, plane_piece_min) -> None:
        clock = StageClock()
        points = np.asarray(points, dtype=np.float64)
        rows = np.flatnonzero(np.all(np.isfinite(points), axis=1))
        self.voxel = float(voxel)
        self.xyz, inverse, counts = voxel_means(points[rows], self.voxel)
        self.voxel_of_row = np.full(len(points), -1, dtype=np.int64)
        self.voxel_of_row[rows] = inverse
        # Each voxel's own grid cell (from one of its points): flooring the mean can land two
        # voxels in one cell when their points sit on a cell border (rounding).
        one_row = np.empty(len(counts), dtype=np.int64)
        one_row[inverse] = rows
        self.cells = np.floor(points[one_row] / self.voxel).astype(np.int32)
        self.appearance = appearance(colors, intensity, rows, inverse, counts)
        clock.lap('voxel_means')
        self.links = NeighbourGraph(self.xyz, np.inf, neighbours)
        clock.lap('knn')
        nv, k = len(self.xyz), self.links.neighbours
        hood = np.concatenate([np.arange(nv)[:, None], self.links.dst.reshape(nv, k)], axis=1) \
            if k else np.arange(nv)[:, None]
        self.normals, self.curvature = normals_and_curvature(self.xyz, hood)
        clock.lap('normals')
        self.planes: List[Plane] = []
        if plane_threshold > 0:
            self.planes = support_planes(self.xyz, plane_threshold, plane_count,
                                         plane_min_fraction, up)
            if plane_piece_min > 0:
                self.planes = [large_pieces(p, self.links, plane_piece_min)
                               for p in self.planes]
        self.on_plane = np.zeros(nv, dtype=bool)
        for plane in self.planes:
            self.on_plane |= plane.inliers
        clock.lap('planes')
        self.link_features = self._link_features()
        clock.lap('features')
        # Where the build time went (wall and process CPU ms per stage; `pinpoint3d bench`).
        self.timings = clock.stages

    @property
    def size(self) -> int:
        """Return the number of voxels V."""
        return len(self.xyz)

    def _link_features(self) -> np.ndarray:
        # Every feature is symmetric in the two ends (the reverse link gives the same bits),
        # so each undirected pair is computed once and copied to both of its links.
        first, pair = self.links.undirected_pairs()
        src, dst = self.links.src[first], self.links.dst[first]
        d = self.xyz[dst] - self.xyz[src]
        length = np.linalg.norm(d, axis=1)
        u = d / np.maximum(length, 1e-12)[:, None]
        n_src, n_dst = self.normals[src], self.normals[dst]
        along_src, along_dst = np.einsum('ij,ij->i', n_src, u), np.einsum('ij,ij->i', n_dst, u)
        crease = np.abs(along_src) + np.abs(along_dst)
        self._along = along_src, along_dst     # link_concavity reads the same products
        c_src, c_dst = self.curvature[src], self.curvature[dst]
        out = np.empty((len(first), len(LINK_FEATURES)), dtype=np.float32)
        out[:, 0] = length / self.voxel
        out[:, 1] = 1.0 - np.abs(np.einsum('ij,ij->i', n_src, n_dst))
        out[:, 2] = crease
        out[:, 3] = np.maximum(c_src, c_dst)
        out[:, 4] = np.abs(c_src - c_dst)
        app = self.appearance
        out[:, 5] = (np.linalg.norm(app[src] - app[dst], axis=1) / np.sqrt(app.shape[1])
                     if app.shape[1] else 0.0)
        plane_d = self.plane_distance()
        p_src, p_dst = plane_d[src], plane_d[dst]
        out[:, 6] = np.minimum(np.abs(p_src), np.abs(p_dst)) / self.voxel
        out[:, 7] = np.abs(p_src - p_dst) / self.voxel
        return out[pair]

    def plane_distance(self) -> np.ndarray:
        """Return (V,) the distance to the nearest support plane (a large value without one)."""
        if self._plane_distance is None:           # the features and the network both read it
            if not self.planes:
                dist = np.full(self.size, 1e3 * self.voxel)
            else:
                dist = np.min([np.abs(p.signed_distance(self.xyz)) for p in self.planes], axis=0)
            dist.flags.writeable = False
            self._plane_distance = dist
        return self._plane_distance

    def up_direction(self, sensor=(0.0, 0.0, 0.0)) -> Optional[np.ndarray]:
        """
        Return the unit normal of the largest support plane, pointing to the sensor's side.

        The gravity direction of a camera-frame cloud when the largest plane is the table or
        the floor (the documented fallback: None when no plane was found, and the caller's
        frame is then used as it is).
        """
        if not self.planes:
            return None
        plane = max(self.planes, key=lambda p: int(p.inliers.sum()))
        side = plane.signed_distance(np.asarray(sensor, dtype=np.float64)[None])[0]
        return plane.normal if side >= 0 else -plane.normal

    def link_concavity(self, sensor=(0.0, 0.0, 0.0)) -> np.ndarray:
        """
        Return (L,) how concave each link is seen from ``sensor`` (> 0 concave, < 0 convex).

        With both normals turned towards the sensor, (n_src - n_dst) . u for the link's unit
        direction u (src to dst): ends whose normals lean towards each other sit in a groove (the
        local-convexity test of LCCP-style segmentation; Stein et al., CVPR 2014). Read from
        the normal-along-link products the link features already computed.
        """
        key = tuple(float(v) for v in sensor)
        if key not in self._concavity:       # the prices, the network and the joins read it
            sensor = np.asarray(key)
            turn = np.where(np.einsum('ij,ij->i', self.normals, sensor[None] - self.xyz) >= 0,
                            1.0, -1.0)
            first, pair = self.links.undirected_pairs()
            along_src, along_dst = self._along
            value = (turn[self.links.src[first]] * along_src
                     - turn[self.links.dst[first]] * along_dst)[pair]
            value.flags.writeable = False
            self._concavity[key] = value
        return self._concavity[key]

    def handcrafted_costs(self, normal_weight: float, colour_weight: float,
                          concave_factor: float = 1.0,
                          concave_threshold: float = 0.05) -> np.ndarray:
        """
        Link lengths (m) x (1 + normal and colour/intensity change) (the baseline's prices).

        Links more concave than ``concave_threshold`` (``link_concavity``, seen from the
        frame's origin) cost ``concave_factor`` times as much; 1 = no concavity term.
        """
        f = self.link_features
        cost = self.links.length * (1.0 + normal_weight * f[:, 1] + colour_weight * f[:, 5])
        if concave_factor != 1.0:
            cost = np.where(self.link_concavity() > concave_threshold, concave_factor * cost,
                            cost)
        return cost

    def learned_costs(self, cut_probability: np.ndarray, weight: float,
                      base: Optional[np.ndarray] = None, power: float = 1.0) -> np.ndarray:
        """
        Return ``base`` (default: link lengths) + ``weight`` voxel sizes x (-log(1 - P))^power.

        With the handcrafted costs as ``base`` a weight of 0 is exactly the baseline, so the
        weight tuned on training scans can only add what the network knows. A power above 1
        keeps the many weak responses inside objects cheap and sure boundaries dear.
        """
        p = np.clip(np.asarray(cut_probability, dtype=np.float64), 0.0, 1.0 - 1e-6)
        base = self.links.length if base is None else base
        return base + weight * self.voxel * (-np.log1p(-p)) ** power
