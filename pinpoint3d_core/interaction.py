"""
What every interactive segmenter speaks: clicks in, per-point labels out.

The learned model's ``Session`` and the non-learned baseline both implement
:class:`InteractiveSegmenter` / :class:`InteractiveSession`, so the evaluation harness, the CLI
and the ROS node drive either without knowing which one it is (``test/test_segmenter_contract.py``
runs one contract against both). Click checking and snapping live here, once, for both.
numpy only: no torch, so the harness and the baseline run without the network.
"""

import dataclasses
import logging
from typing import Callable, Dict, List, Optional, Protocol, runtime_checkable, Sequence, Tuple

import numpy as np
from pinpoint3d_core.errors import ClickError, Pinpoint3DError
from pinpoint3d_core.inference.viewpoint import find_sensor

GRANULARITIES = ('object', 'part', 'both')
# Object and part ids a click may carry: enough for any scene, small enough that a column per
# id can never be allocated by mistake (ids index dictionaries, never arrays).
MAX_LABEL_ID = 2 ** 31 - 1
# Clicks one interaction may hold (the learned model's click-order encoding has this many).
DEFAULT_MAX_CLICKS = 200
# Snap radius when the caller gives none: two voxels of the segmenter's grid, at least 5 cm.
MIN_DEFAULT_SNAP_RADIUS = 0.05


@dataclasses.dataclass(frozen=True)
class Click:
    """
    A user click at a 3-D ``position`` (snapped to the nearest point) or a point ``index``.

    ``positive=True`` with ``part_id=0`` marks object ``object_id``; with ``part_id>0`` it
    marks that part of the object (and counts for the object too, so an object may be defined
    by its part clicks alone). ``positive=False`` marks background (ids must stay 0 for parts).
    """

    position: Optional[Tuple[float, float, float]] = None
    index: Optional[int] = None
    object_id: int = 1
    part_id: int = 0
    positive: bool = True


@dataclasses.dataclass(frozen=True)
class ResolvedClick:
    """A click after snapping: caller's point index and the segmenter's voxel it falls in."""

    index: int
    voxel: int
    object_id: int
    part_id: int
    positive: bool
    snap_distance: float


@dataclasses.dataclass
class Prediction:
    """Labels for every input row (caller's indexing); dropped rows read 0."""

    object_ids: np.ndarray                       # (N,) uint32, 0 = background
    part_ids: np.ndarray                         # (N,) uint32, 0 = no part
    object_scores: Dict[int, float]
    part_scores: Dict[Tuple[int, int], float]
    decode_ms: float
    granularity: str
    encode_ms: float = 0.0      # encoding time spent in this call (a focus box moved)


@runtime_checkable
class InteractiveSession(Protocol):
    """One cloud and its click history; every index is the caller's row."""

    encode_ms: float
    num_points: int

    @property
    def clicks(self) -> List[ResolvedClick]:
        """Return the click history, oldest first."""

    def default_snap_radius(self) -> float:
        """Return the snap radius ``add_clicks(snap_radius=None)`` uses (metres)."""

    def add_clicks(self, clicks: Sequence[Click],
                   snap_radius: Optional[float] = None) -> List[int]:
        """Validate and append clicks, all or none; returns their snapped point indices."""

    def predict(self, granularity: str = 'both',
                target_objects: Optional[Sequence[int]] = None) -> Prediction:
        """Label every row from the click history."""

    def undo(self) -> int:
        """Drop the last ``add_clicks`` batch; returns how many clicks it held (0 if none)."""

    def reset(self) -> None:
        """Forget every click; cached encodings may stay."""


@runtime_checkable
class InteractiveSegmenter(Protocol):
    """Something that opens an :class:`InteractiveSession` per cloud."""

    source: str          # where its weights came from ('baseline' for the non-learned one)
    untrained: bool      # True: labels are meaningless (random weights); say so to users

    def describe(self) -> str:
        """One line for logs and users: which weights, and how masks are made."""

    def start(self, points: np.ndarray, colors: Optional[np.ndarray] = None,
              intensity: Optional[np.ndarray] = None) -> InteractiveSession:
        """Prepare one cloud (N, 3) for clicking."""


def check_granularity(granularity: str) -> None:
    """Raise a Pinpoint3DError for an unknown granularity."""
    if granularity not in GRANULARITIES:
        raise Pinpoint3DError(
            f'granularity must be one of {GRANULARITIES}, got {granularity!r}')


def check_targets(target_objects: Optional[Sequence[int]],
                  clicks: Sequence[ResolvedClick]) -> None:
    """Raise ClickError when ``target_objects`` names an object no positive click names."""
    if target_objects is None:
        return
    clicked = {c.object_id for c in clicks if c.positive}
    unknown = sorted({int(k) for k in target_objects} - clicked)
    if unknown:
        raise ClickError(f'unknown object id(s) {unknown}: no click in this session names them '
                         f'(known: {sorted(clicked)})')


def _check_id(i: int, name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not (
            0 <= int(value) <= MAX_LABEL_ID):
        raise ClickError(f'click {i}: {name} must be an integer in 0..{MAX_LABEL_ID}, '
                         f'got {value!r}')
    return int(value)


def check_click_labels(i: int, click: Click) -> None:
    """Raise ClickError for a click whose type, ids or sign do not make sense."""
    if not isinstance(click, Click):
        raise ClickError(f'click {i}: expected a Click, got {type(click).__name__}')
    obj = _check_id(i, 'object_id', click.object_id)
    part = _check_id(i, 'part_id', click.part_id)
    if click.positive and obj == 0:
        what = 'part click' if part else 'positive click'
        raise ClickError(
            f'click {i}: a {what} needs the object it belongs to (object_id >= 1); '
            'use positive=False for background')
    if not click.positive and part:
        raise ClickError(
            f'click {i}: a negative click cannot name a part; to mark a point of object '
            f'{obj} outside every part use Click(object_id={obj}, part_id=0), or '
            'positive=False for background')
    if (click.position is None) == (click.index is None):
        raise ClickError(f'click {i}: give exactly one of position or index')


class ClickBook:
    """
    A session's click history: validation, snapping, batches for undo, the click cap.

    ``points`` (N, 3) are the caller's rows; ``voxel_of_row`` (N,) maps each to the
    segmenter's voxel (-1 = a dropped NaN/inf row that cannot be clicked).
    """

    def __init__(self, points: np.ndarray, voxel_of_row: np.ndarray,
                 max_clicks: int = DEFAULT_MAX_CLICKS, limit_reason: str = ''):
        self._points = points
        self._voxel_of_row = voxel_of_row
        self.max_clicks = int(max_clicks)
        self._limit_reason = limit_reason
        self._tree = None
        self._valid = None
        self.clicks: List[ResolvedClick] = []
        self._batches: List[int] = []

    @property
    def num_points(self) -> int:
        """Return N, the rows the caller passed (including non-finite ones)."""
        return int(len(self._voxel_of_row))

    def add(self, clicks: Sequence[Click], radius: float) -> List[ResolvedClick]:
        """Resolve and append ``clicks`` (all or none); returns the resolved ones."""
        if isinstance(clicks, Click):
            clicks = [clicks]
        clicks = list(clicks)
        if len(self.clicks) + len(clicks) > self.max_clicks:
            raise ClickError(
                f'a session supports at most {self.max_clicks} clicks{self._limit_reason}; '
                f'it has {len(self.clicks)} and {len(clicks)} were added; reset() or undo() '
                'first')
        resolved = [self._resolve(i, c, radius) for i, c in enumerate(clicks)]
        self.clicks.extend(resolved)
        self._batches.append(len(resolved))
        return resolved

    def undo(self) -> int:
        """Remove the clicks of the last ``add``; returns how many were removed."""
        if not self._batches:
            return 0
        n = self._batches.pop()
        del self.clicks[len(self.clicks) - n:]
        return n

    def reset(self) -> None:
        """Forget every click."""
        self.clicks.clear()
        self._batches.clear()

    def _nearest(self, position: np.ndarray) -> Tuple[float, int]:
        if self._tree is None:
            from scipy.spatial import cKDTree
            self._valid = np.flatnonzero(self._voxel_of_row >= 0)
            self._tree = cKDTree(self._points[self._valid])
        dist, i = self._tree.query(position)
        return float(dist), int(self._valid[i])

    def _resolve(self, i: int, c: Click, radius: float) -> ResolvedClick:
        check_click_labels(i, c)
        if c.index is not None:
            idx = c.index
            if isinstance(idx, bool) or not isinstance(idx, (int, np.integer)) or not (
                    0 <= int(idx) < self.num_points):
                raise ClickError(
                    f'click {i}: index {idx!r} is outside the cloud (0..{self.num_points - 1})')
            idx = int(idx)
            if self._voxel_of_row[idx] < 0:
                raise ClickError(f'click {i}: point {idx} has NaN/inf coordinates')
            dist = 0.0
        else:
            pos = np.asarray(c.position, dtype=np.float64).reshape(-1)
            if pos.shape != (3,) or not np.all(np.isfinite(pos)):
                raise ClickError(f'click {i}: position must be 3 finite numbers, got '
                                 f'{c.position!r}')
            dist, idx = self._nearest(pos)
            if dist > radius:
                raise ClickError(
                    f'click {i} at {tuple(np.round(pos, 3))}: the nearest point is {dist:.3f} m '
                    f'away, beyond the snap radius of {radius:.3f} m')
        return ResolvedClick(idx, int(self._voxel_of_row[idx]), int(c.object_id),
                             int(c.part_id), bool(c.positive), dist)


def snap_radius_or_default(snap_radius: Optional[float], default: float) -> float:
    """Return the radius a click may snap over: ``default`` for None, else a checked value."""
    if snap_radius is None:
        return float(default)
    radius = float(snap_radius)
    if not np.isfinite(radius) or radius < 0:
        raise ClickError(f'snap_radius must be a finite distance >= 0 in metres, got '
                         f'{snap_radius!r}')
    return radius


def start_in_sensor_frame(settings, points, colors, intensity,
                          start: Callable) -> Optional['ScaledSession']:
    """
    Start a session in metres with the sensor at the origin, or None when the cloud already is.

    Every setting assumes metres and the sensor at the origin (the concave-link test and the
    occlusion joins look from it). ``input_scale`` and ``sensor_position`` say otherwise; with
    ``find_sensor`` a cloud whose origin cannot be its camera's gets the viewpoint found from
    the cloud (``inference/viewpoint.py``). ``start(points, colors, intensity, settings)``
    starts the inner session; both segmenters (learned and baseline) come through here.
    """
    scale = float(settings.input_scale)
    if not (np.isfinite(scale) and scale > 0):
        raise Pinpoint3DError(f'input_scale must be a positive number, got {scale!r}')
    origin = np.asarray(settings.sensor_position, dtype=np.float64)
    if origin.shape != (3,) or not np.all(np.isfinite(origin)):
        raise Pinpoint3DError('sensor_position must be three finite numbers (x, y, z in '
                              f'the cloud frame), got {settings.sensor_position!r}')
    found = None
    if settings.find_sensor and not origin.any():
        found = find_sensor(np.asarray(points, dtype=np.float64) * scale)
        if found is not None:
            origin = found / scale
            logging.getLogger('pinpoint3d').info(
                'the cloud does not look seen from its origin: sensor estimated at (%.3f, '
                '%.3f, %.3f); give sensor_position to set it', *origin)
    if scale == 1.0 and not origin.any():
        return None
    metric = (np.asarray(points, dtype=np.float64) - origin) * scale
    inner = start(metric, colors, intensity,
                  settings.replace(input_scale=1.0, sensor_position=(0.0, 0.0, 0.0),
                                   find_sensor=False))
    return ScaledSession(inner, scale, origin, sensor_estimated=found is not None)


class ScaledSession:
    """
    A session over coordinates the caller gives in other units or another origin.

    ``scale`` is metres per caller unit and ``origin`` the sensor's position in caller
    coordinates: ``inner`` saw (points - origin) x scale; click positions and snap radii are
    converted here, labels need no conversion. ``sensor_estimated`` says the origin was found
    from the cloud (``InferenceConfig.find_sensor``), not given.
    """

    def __init__(self, inner: InteractiveSession, scale: float, origin=(0.0, 0.0, 0.0),
                 sensor_estimated: bool = False):
        self.inner, self.scale = inner, float(scale)
        self.origin = np.asarray(origin, dtype=np.float64)
        self.sensor_estimated = bool(sensor_estimated)
        self.encode_ms = inner.encode_ms
        self.num_points = inner.num_points

    @property
    def clicks(self) -> List[ResolvedClick]:
        """Return the click history (snap distances in caller units)."""
        return [dataclasses.replace(c, snap_distance=c.snap_distance / self.scale)
                for c in self.inner.clicks]

    def default_snap_radius(self) -> float:
        """Return the default snap radius in caller units."""
        return self.inner.default_snap_radius() / self.scale

    def _inner_position(self, position) -> np.ndarray:
        return (np.asarray(position, dtype=np.float64) - self.origin) * self.scale

    def add_clicks(self, clicks: Sequence[Click],
                   snap_radius: Optional[float] = None) -> List[int]:
        """Convert positions and radius to the inner session's metres, then add."""
        if isinstance(clicks, Click):
            clicks = [clicks]
        scaled = [c if not isinstance(c, Click) or c.position is None else dataclasses.replace(
            c, position=tuple(self._inner_position(c.position))) for c in clicks]
        radius = None if snap_radius is None else \
            snap_radius_or_default(snap_radius, 0.0) * self.scale
        return self.inner.add_clicks(scaled, radius)

    def predict(self, granularity: str = 'both',
                target_objects: Optional[Sequence[int]] = None) -> Prediction:
        """Return the inner session's prediction (labels are unit-free)."""
        return self.inner.predict(granularity, target_objects)

    def undo(self) -> int:
        """Undo the last batch."""
        return self.inner.undo()

    def reset(self) -> None:
        """Forget every click."""
        self.inner.reset()
