"""
Pieces of an object that an occluder cut off: hidden continuations seen from the sensor.

A box behind a can shows as two pieces left and right of the can. No surface path joins them
(the table between them is a support plane, out of the graph), so the geodesic rule leaves the
far piece as background. Seen from the sensor the gap between the pieces is *occluded space*:
a hidden surface may join them there without contradicting what the sensor measured. A free
gap (the sensor looked through it and saw something farther) rules that out.

``OcclusionJoin`` gives a piece that no click reaches to a clicked object when one of the
nearest voxel pairs between them is joined by a segment that (a) never passes in front of
what the sensor measured, and mostly lies behind it, and (b) continues one surface: both ends
face the same way and the gap runs along them (the space behind an object's silhouette is its
shadow, which runs along the view; a wall seen behind a box is not the box's hidden part).

It only holds for clouds seen from the origin of their frame (a camera or LiDAR frame as
published, not a fused room reconstruction or a cloud moved into base_link), so presets turn
it on per sensor (docs/model.md, "Occluded pieces"). On the real LiDAR sweeps it hurt, so
only the tabletop preset uses it.
"""

from typing import Optional

import numpy as np
from pinpoint3d_core.inference.surface import pair_concavity
from scipy.ndimage import minimum_filter
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

# Samples along a joining segment, the ends excluded.
_SEGMENT_SAMPLES = 24
# The depth image's side at most (cells); a finer sensor is binned coarser.
_MAX_CELLS = 4096
# Nearest voxel pairs tried per piece.
_PAIRS_TRIED = 8
# A rim join needs the ends' normals to diverge by this much along the gap (the concavity
# of the link, negative on a ridge) and the gap to make at least 32 degrees with the
# line of sight.
_RIDGE = 0.3
# Links more concave than this do not hold an unreached piece together.
_PIECE_GROOVE = 0.3
_ACROSS_VIEW = 0.85


class ViewDepth:
    """The nearest observed range per viewing direction from the origin (a depth image)."""

    def __init__(self, points: np.ndarray):
        p = np.asarray(points, dtype=np.float64)
        p = p[np.all(np.isfinite(p), axis=1)]
        rng = np.linalg.norm(p, axis=1)
        p, rng = p[rng > 1e-6], rng[rng > 1e-6]
        d = p / rng[:, None]
        mean = d.mean(axis=0) if len(d) else np.array([0.0, 0.0, 1.0])
        # One camera looks one way (perspective about its mean direction); a spinning LiDAR
        # looks all round (angles about its least-spread direction, the up axis).
        self.perspective = bool(np.linalg.norm(mean) > 0.5)
        if self.perspective:
            axis = mean / np.linalg.norm(mean)
        else:
            axis = np.linalg.eigh(np.cov(d.T))[1][:, 0] if len(d) > 3 else np.eye(3)[2]
        helper = np.eye(3)[int(np.argmin(np.abs(axis)))]
        e1 = np.cross(axis, helper)
        e1 /= np.linalg.norm(e1)
        self._basis = np.stack([e1, np.cross(axis, e1), axis])
        uv, ok = self._uv(p)
        uv, rng = uv[ok], rng[ok]
        self._lo = uv.min(axis=0) if len(uv) else np.zeros(2)
        extent = float(np.max(uv.max(axis=0) - self._lo)) if len(uv) else 0.0
        self.cell = max(self._pitch(uv) * 2.0, extent / _MAX_CELLS)
        ij = np.floor((uv - self._lo) / self.cell).astype(np.int64)
        self._shape = tuple(ij.max(axis=0) + 1) if len(ij) else (1, 1)
        self.depth = np.full(self._shape, np.inf)
        np.minimum.at(self.depth, (ij[:, 0], ij[:, 1]), rng)
        # A cell with no point of its own inside a measured surface (sampling jitter) takes
        # its neighbours' nearest range.
        self.depth = np.where(np.isfinite(self.depth), self.depth,
                              minimum_filter(self.depth, size=3, mode='nearest'))

    def _uv(self, p: np.ndarray):
        q = p @ self._basis.T
        if self.perspective:
            # Within about 78 degrees of the mean direction (beyond it the image would grow
            # without bound); points outside read as not seen.
            ok = q[:, 2] > 0.2 * np.linalg.norm(q, axis=1)
            return q[:, :2] / np.maximum(q[:, 2:3], 1e-6), ok
        az = np.arctan2(q[:, 1], q[:, 0])
        el = np.arctan2(q[:, 2], np.linalg.norm(q[:, :2], axis=1))
        return np.stack([az, el], axis=1), np.ones(len(p), dtype=bool)

    @staticmethod
    def _pitch(uv: np.ndarray) -> float:
        """Return the median spacing of neighbouring directions (the angular resolution)."""
        if len(uv) < 2:
            return 1e-3
        # A band of neighbouring columns has the density of the whole image at a tenth of
        # the tree's cost.
        order = np.argsort(uv[:, 0], kind='stable')
        mid, half = len(uv) // 2, min(len(uv), 20000) // 2
        band = uv[order[max(mid - half, 0):mid + half]]
        pick = np.random.default_rng(0).choice(len(band), min(len(band), 4000), replace=False)
        dist, _ = cKDTree(band).query(band[pick], k=2)
        pitch = float(np.median(dist[:, 1]))
        return pitch if pitch > 0 else 1e-3

    def observed(self, p: np.ndarray) -> np.ndarray:
        """Return the nearest observed range along the ray of each point (inf = none seen)."""
        uv, ok = self._uv(np.asarray(p, dtype=np.float64))
        ij = np.floor((uv - self._lo) / self.cell).astype(np.int64)
        inside = ok & np.all(ij >= 0, axis=1) & (ij[:, 0] < self._shape[0]) & \
            (ij[:, 1] < self._shape[1])
        out = np.full(len(p), np.inf)
        out[inside] = self.depth[ij[inside, 0], ij[inside, 1]]
        return out

    def hidden(self, a: np.ndarray, b: np.ndarray, tolerance: float) -> np.ndarray:
        """
        (P,) bool: nowhere along a->b did the sensor see past it, and mostly it saw in front.

        Rays without a return (a depth camera's shadow beside an occluder, a dark surface)
        neither join nor part; at least half the segment must lie behind a measured surface.
        """
        seen, reach = self._along_segments(a, b, tolerance)
        free = np.isfinite(seen) & (seen > reach)
        behind = seen <= reach
        return ~free.any(axis=1) & (behind.mean(axis=1) >= 0.5)

    def seen_through(self, a: np.ndarray, b: np.ndarray, tolerance: float) -> np.ndarray:
        """(P,) bool: somewhere along a->b the sensor saw a surface beyond the segment."""
        seen, reach = self._along_segments(a, b, tolerance)
        return (np.isfinite(seen) & (seen > reach)).any(axis=1)

    def _along_segments(self, a: np.ndarray, b: np.ndarray, tolerance: float):
        """Return (P, S) observed ranges at samples along a->b and the samples' ranges + tol."""
        t = (np.arange(_SEGMENT_SAMPLES) + 0.5) / _SEGMENT_SAMPLES
        flat = (a[:, None, :] + t[None, :, None] * (b - a)[:, None, :]).reshape(-1, 3)
        seen = self.observed(flat).reshape(len(a), _SEGMENT_SAMPLES)
        reach = np.linalg.norm(flat, axis=1).reshape(len(a), _SEGMENT_SAMPLES) + tolerance
        return seen, reach


class OcclusionJoin:
    """Gives unreached pieces to the clicked object they continue behind an occluder."""

    def __init__(self, view: ViewDepth, xyz: np.ndarray, normals: np.ndarray,
                 max_gap: float, tolerance: float, coplanar: float, min_voxels: int = 5,
                 rim_gap: float = 0.0, groove: Optional[np.ndarray] = None):
        self.view, self.xyz, self.normals = view, xyz, normals
        # (L,) bool per link of the surface graph: links that do not hold a piece together
        self.groove = groove
        self.max_gap = float(max_gap)
        self.rim_gap = float(rim_gap)
        self.tolerance = float(tolerance)
        self.coplanar = float(coplanar)
        self.min_voxels = int(min_voxels)

    def join(self, labels: np.ndarray, graph, unreached: np.ndarray) -> np.ndarray:
        """
        Return ``labels`` (V,) with hidden continuations of clicked objects filled in.

        ``graph`` is the surface graph the labels were walked on (its links in the order of
        ``groove``) and ``unreached`` (V,) bool its voxels that no click (positive or
        negative) reached.
        """
        out = labels.copy()
        owned = np.flatnonzero(labels > 0)
        if not unreached.any() or len(owned) == 0:
            return out
        nodes = np.flatnonzero(unreached)
        local = np.full(len(labels), -1, dtype=np.int64)
        local[nodes] = np.arange(len(nodes))
        keep = unreached[graph.src] & unreached[graph.dst]
        if self.groove is not None:
            keep &= ~self.groove
        m = csr_matrix((np.ones(int(keep.sum()), dtype=np.int8),
                        (local[graph.src[keep]], local[graph.dst[keep]])),
                       shape=(len(nodes), len(nodes)))
        _, piece = connected_components(m, directed=True, connection='weak')
        near = {}          # object -> (distance, nearest voxel of the object) per node
        for k in np.unique(labels[owned]):
            mine = owned[labels[owned] == k]
            dist, idx = cKDTree(self.xyz[mine]).query(self.xyz[nodes],
                                                      distance_upper_bound=self.max_gap)
            ok = np.isfinite(dist)
            near[int(k)] = (dist, np.where(ok, mine[np.minimum(idx, len(mine) - 1)], -1))
        sizes = np.bincount(piece)
        close = np.any([np.isfinite(d) for d, _ in near.values()], axis=0)
        for p in np.unique(piece[close]):
            if sizes[p] < self.min_voxels:
                continue
            best, target = np.inf, 0
            for k, (dist, owner) in near.items():
                mine = np.flatnonzero((piece == p) & np.isfinite(dist))
                if len(mine) == 0 or dist[mine].min() >= best:
                    continue
                order = mine[np.argsort(dist[mine])[:_PAIRS_TRIED]]
                gap = self._joined(nodes[order], owner[order])
                if gap < best:
                    best, target = gap, k
            if target:
                out[nodes[piece == p]] = target
        return out

    def _joined(self, ends: np.ndarray, owners: np.ndarray) -> float:
        """Return the shortest acceptable gap of these voxel pairs (inf = none joins)."""
        a, b = self.xyz[ends], self.xyz[owners]
        gap = np.linalg.norm(a - b, axis=1)
        u = (b - a) / np.maximum(gap, 1e-12)[:, None]
        na, nb = self.normals[ends], self.normals[owners]
        # One surface continued: both ends face the same way and the gap runs along it.
        flat = (np.abs(np.einsum('ij,ij->i', na, u)) <= self.coplanar) & \
            (np.abs(np.einsum('ij,ij->i', nb, u)) <= self.coplanar) & \
            (np.abs(np.einsum('ij,ij->i', na, nb)) >= 1.0 - self.coplanar)
        ok = flat & self.view.hidden(a, b, self.tolerance)
        if self.rim_gap > 0:
            ok |= self._rim(a, b, gap, u, na, nb)
        return float(gap[ok].min()) if ok.any() else np.inf

    def _rim(self, a, b, gap, u, na, nb) -> np.ndarray:
        """(P,) bool: a short gap across a ridge (a rim without returns), not a depth step."""
        ridge = pair_concavity(a, b, na, nb) < -_RIDGE
        ray = 0.5 * (a + b)
        ray /= np.maximum(np.linalg.norm(ray, axis=1), 1e-12)[:, None]
        across = np.abs(np.einsum('ij,ij->i', u, ray)) <= _ACROSS_VIEW
        ok = (gap <= self.rim_gap) & ridge & across
        if ok.any():
            ok[ok] = ~self.view.seen_through(a[ok], b[ok], self.tolerance)
        return ok


def occlusion_join(settings, points: np.ndarray, surface) -> Optional[OcclusionJoin]:
    """Return the OcclusionJoin the settings ask for (None when ``occlusion_gap`` is 0)."""
    if settings.occlusion_gap <= 0:
        return None
    # A piece is one surface: a k-NN link into a groove (to what stands behind or beside
    # it) does not make two surfaces one piece.
    return OcclusionJoin(ViewDepth(points), surface.xyz, surface.normals,
                         settings.occlusion_gap, 2.0 * settings.graph_voxel,
                         settings.occlusion_coplanar, rim_gap=settings.occlusion_rim_gap,
                         groove=surface.link_concavity() > _PIECE_GROOVE)
