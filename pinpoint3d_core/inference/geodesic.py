"""
Geodesic segmentation from clicks over a SurfaceGraph: every voxel takes its nearest click.

"Connected, smooth, near the click" holds on every sensor, which is why this rule transfers
from synthetic scenes to real ones where the network's masks alone do not (docs/model.md,
"Geodesic object masks"). A link costs what ``costs`` says (handcrafted for the baseline,
learned boundary probabilities for the model); voxels farther than ``cutoff`` from every click
are background. Support-plane voxels are out of the graph, except near a positive click that
lands on the plane's rim of an object (``rim_radius``), or entirely once an object is clicked
only on the plane (the user wants the table itself).
"""

import dataclasses
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from pinpoint3d_core.errors import InvalidCloudError
from pinpoint3d_core.inference.levels import BoundaryLevels
from pinpoint3d_core.inference.occlusion import occlusion_join, OcclusionJoin
from pinpoint3d_core.inference.surface import SurfaceGraph
from pinpoint3d_core.interaction import (
    check_granularity, check_targets, Click, ClickBook, DEFAULT_MAX_CLICKS,
    MIN_DEFAULT_SNAP_RADIUS, Prediction, ResolvedClick, snap_radius_or_default)

POCKET_SHARE = 0.9         # a clicked voxel this share of whose links end on the plane
PART_DECODES_KEPT = 8      # decoder part labels kept per object (one per click set it had)


@dataclasses.dataclass(frozen=True)
class GraphClick:
    """A click on the surface graph: its voxel and the caller's ids."""

    voxel: int
    object_id: int
    part_id: int
    positive: bool


class GeodesicLabeller:
    """Nearest-click labelling of one SurfaceGraph with fixed link costs."""

    def __init__(self, surface: SurfaceGraph, costs: np.ndarray, cutoff: float,
                 rim_radius: float, occlusion: Optional[OcclusionJoin] = None,
                 levels: Optional[BoundaryLevels] = None):
        self.surface = surface
        self.occlusion = occlusion
        self.levels = levels
        self.graph = surface.links.with_link_lengths(costs)
        self.cutoff = float(cutoff)
        self.rim_radius = float(rim_radius)
        self._rim: Dict[int, np.ndarray] = {}      # plane voxel -> graph voxels within the rim
        self._objects: Tuple[tuple, Optional[np.ndarray]] = ((), None)   # last clicks, labels
        self._parts: Dict[int, tuple] = {}         # object -> (its clicks, mask, voxels, parts)
        self._nearest_kept: Dict[tuple, tuple] = {}   # clicks -> nearest-click rule, last two
        self._corrected_kept: Dict[tuple, np.ndarray] = {}   # clicks -> _corrected, last few

    def plane_cut(self, clicks: Sequence[GraphClick]) -> np.ndarray:
        """Return (V,) bool: support-plane voxels that stay out of the graph for these clicks."""
        on_plane = self.surface.on_plane
        cut = on_plane.copy()
        if not cut.any():
            return cut
        off_plane = {c.object_id for c in clicks if c.positive and not on_plane[c.voxel]}
        for c in clicks:
            if not c.positive:
                continue
            if on_plane[c.voxel]:
                if c.object_id not in off_plane:
                    return np.zeros_like(cut)          # the plane itself was clicked
            elif not self._in_pocket(c.voxel):
                continue
            cut[self._near_rim(c.voxel)] = False
        return cut

    def _in_pocket(self, voxel: int) -> bool:
        """
        Return True when at least POCKET_SHARE of ``voxel``'s links lead onto the plane.

        A surface just above the plane, such as a mug's inner bottom, reads as plane; a click
        there would reach almost nothing, so it frees the plane within ``rim_radius`` as an
        on-plane click does.
        """
        links = self.surface.links
        ends = links.dst[links._links_from(np.asarray([voxel]))]
        return len(ends) > 0 and np.mean(self.surface.on_plane[ends]) >= POCKET_SHARE

    def _near_rim(self, voxel: int) -> np.ndarray:
        """Return the voxels closer than ``rim_radius`` to ``voxel`` (kept per clicked voxel)."""
        if voxel not in self._rim:
            xyz = self.surface.xyz
            near = np.arange(len(xyz))
            tree = self.surface.links._tree
            if tree is not None:     # the ball's candidates, then the exact test on them only
                near = np.sort(tree.query_ball_point(xyz[voxel], self.rim_radius * 1.001 + 1e-9))
            gap = np.linalg.norm(xyz[near] - xyz[voxel], axis=1)
            self._rim[voxel] = near[~(gap >= self.rim_radius)]
        return self._rim[voxel]

    def objects(self, clicks: Sequence[GraphClick]) -> np.ndarray:
        """Return (V,) uint32 object ids: the nearest click's (0 = background or too far)."""
        key = tuple(clicks)
        if self._objects[1] is None or self._objects[0] != key:   # they depend on the clicks only
            self._objects = key, self._nearest_objects(clicks)
        return self._objects[1].copy()

    def _nearest_objects(self, clicks: Sequence[GraphClick]) -> np.ndarray:
        labels, owner, cut = self._nearest(clicks)
        if labels is None:
            return np.zeros(self.surface.size, dtype=np.uint32)
        if self.levels is not None:
            labels = self._corrected(clicks)
        ids = np.asarray([c.object_id if c.positive else 0 for c in clicks], dtype=np.uint32)
        if self.occlusion is not None:
            # Unreached voxels are never cut: the links among them are the cut graph's.
            unreached = ~cut & (owner < 0)
            labels = self.occlusion.join(labels, self.graph, unreached)
        for c, i in zip(clicks, ids):                 # a clicked voxel is what it was clicked
            labels[c.voxel] = i
        return labels

    def _corrected(self, clicks: Sequence[GraphClick]) -> np.ndarray:
        """
        Return the nearest-click labels, each correction click held back by the levels.

        A correction click (negative, or on an object already clicked) may take a voxel from
        the label the earlier clicks gave it only where the lowest separating boundary level
        says so; voxels no level decides take their nearest click. The first click of an
        object labels by nearest click alone. Labels depend on the click sequence only (each
        prefix's labels are kept, a few at a time, so one click costs one more step).
        """
        done = 0
        for k in range(len(clicks), 0, -1):
            if tuple(clicks[:k]) in self._corrected_kept:
                done = k
                break
        labels = self._corrected_kept[tuple(clicks[:done])].copy() if done else None
        for k in range(done + 1, len(clicks) + 1):
            now, owner, _ = self._nearest(clicks[:k])
            last = clicks[k - 1]
            if labels is not None and (not last.positive or any(
                    c.positive and c.object_id == last.object_id for c in clicks[:k - 1])):
                ids = np.asarray([c.object_id if c.positive else 0 for c in clicks[:k]],
                                 dtype=np.uint32)
                decided, _ = self.levels.relabel(now, np.asarray([c.voxel for c in clicks[:k]]),
                                                 ids, owner >= 0)
                changed = now != labels
                now[changed] = decided[changed]
            labels = now
            self._corrected_kept[tuple(clicks[:k])] = labels.copy()
            while len(self._corrected_kept) > 4:
                del self._corrected_kept[next(iter(self._corrected_kept))]
        return labels

    def _nearest(self, clicks: Sequence[GraphClick]):
        """Return (labels, owner, cut) of the nearest-click rule (the last two are kept)."""
        key = tuple(clicks)
        if key in self._nearest_kept:
            return (self._nearest_kept[key][0].copy(),) + self._nearest_kept[key][1:]
        if not clicks:
            return None, None, None
        labels = np.zeros(self.surface.size, dtype=np.uint32)
        ids = np.asarray([c.object_id if c.positive else 0 for c in clicks], dtype=np.uint32)
        cut = self.plane_cut(clicks)
        owner = self.graph.nearest_seed([c.voxel for c in clicks], self.cutoff, keep=~cut)
        labels[owner >= 0] = ids[owner[owner >= 0]]
        self._nearest_kept[key] = labels.copy(), owner, cut
        while len(self._nearest_kept) > 2:
            del self._nearest_kept[next(iter(self._nearest_kept))]
        return labels, owner, cut

    def parts(self, clicks: Sequence[GraphClick], objects: np.ndarray) -> np.ndarray:
        """Return (V,) uint32 part ids: inside each object, its nearest positive click's part."""
        parts = np.zeros(self.surface.size, dtype=np.uint32)
        by_object: Dict[int, List[GraphClick]] = {}
        for c in clicks:
            if c.positive:
                by_object.setdefault(c.object_id, []).append(c)
        for k, mine in by_object.items():
            if not any(c.part_id for c in mine):
                continue
            inside = objects == k
            key = (tuple(mine), inside.tobytes())
            if k not in self._parts or self._parts[k][:2] != key:
                self._parts[k] = key + self._object_parts(mine, inside)
            voxels, pid = self._parts[k][2:]
            parts[voxels] = pid
        for k in set(self._parts) - set(by_object):
            del self._parts[k]
        return parts

    def _object_parts(self, mine: List[GraphClick], inside: np.ndarray):
        """Return (voxels, part ids): object ``inside``'s voxels reached from its clicks."""
        seeds = np.asarray([c.voxel for c in mine], dtype=np.int64)
        # The object's graph alone (plus any seed a later click took over, unlinked as in
        # the whole restricted graph): the same Dijkstra at the object's size, not V.
        nodes = np.union1d(np.flatnonzero(inside), seeds)
        local = self.graph.restricted_to(nodes, inside).nearest_seed(
            np.searchsorted(nodes, seeds), np.inf)
        pid = np.asarray([c.part_id for c in mine], dtype=np.uint32)
        sel = inside[nodes] & (local >= 0)
        return nodes[sel], pid[local[sel]]


def graph_clicks(clicks) -> List[GraphClick]:
    """Return the GraphClicks of resolved clicks whose ``voxel`` is a surface-graph voxel."""
    return [GraphClick(int(c.voxel), int(c.object_id), int(c.part_id), bool(c.positive))
            for c in clicks]


def scatter_to_rows(voxel_of_row: np.ndarray, objects: np.ndarray, parts: np.ndarray):
    """Return per-row (object ids, part ids) uint32 from per-voxel ones (-1 rows read 0)."""
    valid = voxel_of_row >= 0
    obj = np.zeros(len(voxel_of_row), dtype=np.uint32)
    part = np.zeros(len(voxel_of_row), dtype=np.uint32)
    obj[valid] = objects[voxel_of_row[valid]]
    part[valid] = parts[voxel_of_row[valid]]
    return obj, part


# Prices the links of one surface graph: ((L,) path cost per link in metre-like units,
# (L,) P(link crosses an object boundary) or None when the pricing has no such estimate).
LinkCosts = Callable[[SurfaceGraph], Tuple[np.ndarray, Optional[np.ndarray]]]


def handcrafted_link_costs(settings, surface: SurfaceGraph) -> np.ndarray:
    """Return the baseline's link prices of ``surface`` under ``settings``."""
    return surface.handcrafted_costs(settings.normal_weight, settings.colour_weight,
                                     settings.concave_factor, settings.concave_threshold)


def handcrafted_costs(settings) -> LinkCosts:
    """Return the baseline's link costs: length x (1 + normal and colour change terms)."""
    return lambda surface: (handcrafted_link_costs(settings, surface), None)


def learned_link_costs(settings, surface: SurfaceGraph,
                       probability: np.ndarray) -> np.ndarray:
    """Return the learned link costs: the boundary network's term over the base prices."""
    base = handcrafted_link_costs(settings, surface) if settings.boundary_over_handcrafted \
        else None
    return surface.learned_costs(probability, settings.boundary_weight, base,
                                 settings.boundary_power)


def boundary_scores(surface: SurfaceGraph, probability: Optional[np.ndarray],
                    objects: np.ndarray, ids) -> Dict[int, float]:
    """
    Per object, the mean boundary probability of the links that leave its mask.

    High when the mask ends where the network sees an object boundary, low where it was
    cut off by the cutoff or a competing click in the middle of a surface. 1.0 without a
    probability estimate (the baseline has none).
    """
    if probability is None:
        return dict.fromkeys(ids, 1.0)
    a, b = objects[surface.links.src], objects[surface.links.dst]
    out = {}
    for k in ids:
        leaving = (a == k) != (b == k)
        out[k] = float(probability[leaving].mean()) if leaving.any() else 0.0
    return out


class GeodesicSession:
    """
    One cloud's surface graph and click history; labels are the nearest clicks.

    It keeps the session contract of ``interaction.InteractiveSession``.

    ``costs`` prices the links: ``handcrafted_costs`` for the baseline, the boundary network
    for the learned model. ``part_session`` (optional) is a decoder session on the same cloud
    that receives the same clicks: inside a geodesic object mask, a point takes the decoder's
    part where the decoder also puts it in that object, else its nearest part click.
    """

    def __init__(self, settings, points, colors=None, intensity=None,
                 costs: Optional[LinkCosts] = None, max_clicks: int = DEFAULT_MAX_CLICKS,
                 part_session=None):
        t0 = time.perf_counter()
        points = np.asarray(points, dtype=np.float64)
        if points.ndim != 2 or points.shape[1] != 3 or len(points) == 0:
            raise InvalidCloudError('points must be a non-empty (N, 3) array')
        if len(points) > settings.max_points:
            raise InvalidCloudError(
                f'the cloud has {len(points):,} points, more than the limit of '
                f'{settings.max_points:,}; crop or downsample it first (or raise max_points)')
        if not np.isfinite(points).all(axis=1).any():
            raise InvalidCloudError('the cloud has no finite points')
        self.settings = settings
        self.surface = settings.surface_graph(points, colors, intensity)
        link_costs, self._probability = (costs or handcrafted_costs(settings))(self.surface)
        self.labeller = GeodesicLabeller(self.surface, link_costs, settings.geodesic_cutoff,
                                         settings.rim_radius,
                                         occlusion_join(settings, points, self.surface),
                                         self._levels(settings))
        self._book = ClickBook(points, self.surface.voxel_of_row, max_clicks)
        self._parts = part_session
        # object -> {its positive clicks: (rows the decoder put in it, their decoder parts)}
        self._decoded: Dict[int, Dict[tuple, Tuple[np.ndarray, np.ndarray]]] = {}
        self.encode_ms = (time.perf_counter() - t0) * 1e3
        if part_session is not None:
            self.encode_ms += part_session.encode_ms

    def _levels(self, settings) -> Optional[BoundaryLevels]:
        """Return the boundary levels the settings ask for (None: off or no P(boundary))."""
        if not settings.boundary_levels or self._probability is None:
            return None
        links = self.surface.links
        return BoundaryLevels(self.surface.size, links.src, links.dst, self._probability,
                              ~self.surface.on_plane, settings.boundary_levels)

    @property
    def num_points(self) -> int:
        """Return N, the rows the caller passed."""
        return len(self.surface.voxel_of_row)

    @property
    def clicks(self) -> List[ResolvedClick]:
        """Return the click history (resolved), oldest first."""
        return list(self._book.clicks)

    def default_snap_radius(self) -> float:
        """Snap radius for add_clicks without one: the setting, else 2 graph voxels, >= 5 cm."""
        if self.settings.snap_radius is not None:
            return float(self.settings.snap_radius)
        return max(MIN_DEFAULT_SNAP_RADIUS, 2.0 * self.settings.graph_voxel)

    def add_clicks(self, clicks: Sequence[Click],
                   snap_radius: Optional[float] = None) -> List[int]:
        """Add clicks (all or none); returns their point indices in the caller's indexing."""
        radius = snap_radius_or_default(snap_radius, self.default_snap_radius())
        resolved = self._book.add(clicks, radius)
        if self._parts is not None:
            try:
                self._parts.add_clicks([Click(index=r.index, object_id=r.object_id,
                                              part_id=r.part_id, positive=r.positive)
                                        for r in resolved])
            except Exception:
                self._book.undo()          # all or nothing, in both sessions
                raise
        return [r.index for r in resolved]

    def undo(self) -> int:
        """Remove the last batch of clicks; returns how many it held."""
        if self._parts is not None:
            self._parts.undo()
        return self._book.undo()

    def reset(self) -> None:
        """Remove all clicks (the surface graph stays)."""
        if self._parts is not None:
            self._parts.reset()
        self._book.reset()
        self._decoded.clear()

    def predict(self, granularity: str = 'both',
                target_objects: Optional[Sequence[int]] = None) -> Prediction:
        """Label every point with its geodesically nearest click's object and part."""
        check_granularity(granularity)
        check_targets(target_objects, self._book.clicks)
        t0 = time.perf_counter()
        clicks = graph_clicks(self._book.clicks)
        obj_v = self.labeller.objects(clicks)
        part_v = self.labeller.parts(clicks, obj_v) if granularity != 'object' else \
            np.zeros_like(obj_v)
        obj, part = scatter_to_rows(self.surface.voxel_of_row, obj_v, part_v)
        encode_ms = 0.0
        if self._parts is not None and granularity != 'object' and any(
                c.part_id for c in clicks if c.positive):
            encode_ms = self._decoder_parts(obj, part, target_objects)
        for c in self._book.clicks:  # a clicked point always gets its click's label
            obj[c.index] = c.object_id if c.positive else 0
            if granularity != 'object':
                part[c.index] = c.part_id if c.positive else 0
        part[obj == 0] = 0
        objs = sorted({c.object_id for c in clicks if c.positive})
        parts = sorted({(c.object_id, c.part_id) for c in clicks if c.positive and c.part_id})
        scores = boundary_scores(self.surface, self._probability, obj_v, objs)
        return Prediction(obj, part, scores, {p: scores[p[0]] for p in parts},
                          (time.perf_counter() - t0) * 1e3 - encode_ms, granularity, encode_ms)

    def _decoder_parts(self, obj: np.ndarray, part: np.ndarray, target_objects) -> float:
        """
        Give ``part`` the decoder's part where the decoder puts a row in the same object.

        The decoder runs only for objects whose own clicks changed since it last ran for
        them (a click on one object neither pays for nor changes another object's parts);
        an object's earlier decodes are kept by its clicks, so undo shows them again. Only
        rows inside the decoder's view can agree. Returns the decoder's encode ms.
        """
        clicks = self._book.clicks
        wanted = sorted({c.object_id for c in clicks if c.positive and c.part_id})
        if target_objects is not None:
            targets = set(target_objects)
            wanted = [k for k in wanted if k in targets]
        keys = {k: tuple((c.index, c.part_id) for c in clicks if c.positive and c.object_id == k)
                for k in wanted}
        stale = [k for k in wanted if keys[k] not in self._decoded.get(k, {})]
        encode_ms = 0.0
        if stale:
            view, dec_obj, dec_part, encode_ms = self._parts.voxel_labels(stale)
            rows, voxel = view.voxels.valid_rows, view.voxels.inverse
            for k in stale:
                mine = dec_obj[voxel] == k
                kept = self._decoded.setdefault(k, {})
                kept[keys[k]] = rows[mine], dec_part[voxel[mine]]
                while len(kept) > PART_DECODES_KEPT:
                    del kept[next(iter(kept))]
        for k in wanted:
            rows_k, parts_k = self._decoded[k][keys[k]]
            agree = obj[rows_k] == k
            part[rows_k[agree]] = parts_k[agree]
        for k in set(self._decoded) - {c.object_id for c in clicks if c.positive}:
            del self._decoded[k]
        return encode_ms
