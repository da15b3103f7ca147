"""
Where a single-view cloud was seen from, when its frame does not say.

A scan may be saved in a table or map frame instead of the camera's. The concave-link test
and the occlusion and rim joins look from the sensor; given a cloud in another frame they read
grooves as ridges and lose 7 points of IoU@1 on the real tabletop validation scans
(docs/model.md, "Eleventh sitting"). A depth camera sees one surface along each line of sight,
so from the true viewpoint the points binned by direction hold one range per bin; from
anywhere else, lines of sight pass through several surfaces. A depth map reads single-valued
from behind too (the same lines of sight, reversed), so the camera's side is the one the
objects stand on, off the largest plane. ``find_sensor`` keeps the origin when it passes the
test and is not behind that plane, and otherwise searches the positions a camera could have
held (the points in front, within a field of view, at least ``MIN_RANGE_M`` away) for the one
with the fewest conflicts. It finds the direction to a few degrees (1-18 on the real scans);
the range only roughly (the conflicts change little along the line of sight), which the
joins tolerate.
"""

from typing import Optional

import numpy as np

SAMPLE = 10_000          # points the test bins (a seeded choice; enough for 0.6-degree bins)
CELL_DEG = 0.6           # direction bin: about four 640x480 Kinect pixels
RANGE_GAP_M = 0.03       # consecutive ranges in one bin farther apart: two surfaces
ORIGIN_OK = 0.06         # share of points in conflicting bins a camera's own frame stays below
OUTLIERS = 0.01          # share of points (noise, flying pixels) the camera tests may fail
HALF_FOV_DEG = 40.0      # points within this of the view axis (Kinect: 29 x 22 degrees)
MIN_RANGE_M = 0.3        # depth cameras see nothing closer
SHELLS = (0.8, 1.2, 2.0, 3.2)   # searched distances from the cloud, in units of its extent
PLANE_TRIES = 60         # RANSAC draws for the support plane that tells the camera's side
PLANE_TRIAL_POINTS = 1000   # points each draw is scored on
SIDE_SURE = 10.0         # objects on one side this many times the other: the side is known
PLANE_M = 0.01           # inlier distance of that plane
STANDING_M = 0.3         # objects on the support reach this far off it (floor: farther)


def line_of_sight_conflict(points: np.ndarray, sensor: np.ndarray) -> float:
    """
    Return the share of ``points`` in direction bins (seen from ``sensor``) holding two surfaces.

    1.0 when the position cannot be a camera's: more than ``OUTLIERS`` of the points closer
    than ``MIN_RANGE_M`` or outside the field of view around the mean direction.
    """
    v = np.asarray(points, dtype=np.float64) - np.asarray(sensor, dtype=np.float64)
    r = np.linalg.norm(v, axis=1)
    if len(r) == 0 or np.mean(r < MIN_RANGE_M) > OUTLIERS:
        return 1.0
    d = v / r[:, None]
    axis = d.mean(axis=0)
    axis /= max(np.linalg.norm(axis), 1e-12)
    if np.mean(d @ axis < np.cos(np.radians(HALF_FOV_DEG))) > OUTLIERS:
        return 1.0
    helper = np.array([0.0, 0.0, 1.0]) if abs(axis[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    a = np.cross(axis, helper)
    a /= np.linalg.norm(a)
    b = np.cross(axis, a)
    cell = np.radians(CELL_DEG)
    along = d @ axis
    key = (np.floor(np.arctan2(d @ a, along) / cell).astype(np.int64) * 1_000_003
           + np.floor(np.arctan2(d @ b, along) / cell).astype(np.int64))
    order = np.lexsort((r, key))
    k, rr = key[order], r[order]
    # Two surfaces on one line of sight leave a jump between consecutive ranges in a bin; one
    # surface seen at a grazing angle spreads its ranges without one.
    jump = np.r_[np.diff(rr), 0.0]
    jump[np.r_[k[1:] != k[:-1], True]] = 0.0
    start = np.r_[0, np.flatnonzero(np.diff(k)) + 1]
    count = np.diff(np.r_[start, len(k)])
    return float(count[np.maximum.reduceat(jump, start) > RANGE_GAP_M].sum() / len(k))


def _directions(n: int) -> np.ndarray:
    """Return ``n`` unit vectors spread evenly over the sphere (Fibonacci lattice)."""
    i = np.arange(n) + 0.5
    z = 1.0 - 2.0 * i / n
    phi = np.pi * (1.0 + 5 ** 0.5) * i
    s = np.sqrt(1.0 - z * z)
    return np.stack([s * np.cos(phi), s * np.sin(phi), z], axis=1)


def _largest_plane(pts: np.ndarray, rng) -> tuple:
    """Return (unit normal, offset, inlier mask) of the plane holding most of ``pts`` (RANSAC)."""
    trial = pts[rng.choice(len(pts), min(len(pts), PLANE_TRIAL_POINTS), replace=False)]
    normal, offset, most = np.array([0.0, 0.0, 1.0]), 0.0, -1
    for _ in range(PLANE_TRIES):
        a, b, c = trial[rng.choice(len(trial), 3, replace=False)]
        n = np.cross(b - a, c - a)
        if np.linalg.norm(n) < 1e-9:
            continue
        n /= np.linalg.norm(n)
        count = int(np.count_nonzero(np.abs((trial - a) @ n) < PLANE_M))
        if count > most:
            normal, offset, most = n, float(a @ n), count
    return normal, offset, np.abs(pts @ normal - offset) < PLANE_M


def _camera_side(pts: np.ndarray, seed: int) -> tuple:
    """
    Return (unit normal of the largest plane turned towards the objects on it, how sure).

    A depth map reads single-valued from behind too (the same lines of sight, reversed); what
    stands on the support (up to ``STANDING_M`` off it) is on the camera's side. Other large
    planes (a wall behind the table, reaching both sides) do not count. "How sure" is the
    ratio of the points on that side to those on the other (real scans: over 400).
    """
    rng = np.random.default_rng(seed)
    normal, offset, support = _largest_plane(pts, rng)
    counted = ~support
    for _ in range(2):
        rest = np.flatnonzero(counted)
        if len(rest) < 3:
            break
        _, _, inliers = _largest_plane(pts[rest], rng)
        if inliers.sum() < 0.1 * len(pts):
            break
        counted[rest[inliers]] = False
    h = pts[counted] @ normal - offset
    above = np.count_nonzero((h > 2 * PLANE_M) & (h < STANDING_M))
    below = np.count_nonzero((h < -2 * PLANE_M) & (h > -STANDING_M))
    sure = max(above, below) / max(min(above, below), 1) if max(above, below) >= 100 else 0.0
    return (normal if above >= below else -normal), sure


def find_sensor(points: np.ndarray, seed: int = 0) -> Optional[np.ndarray]:
    """
    Return where the cloud was seen from, or None when the origin already looks like it.

    None as well when no position passes the test clearly better than the origin (a fused
    reconstruction has no single viewpoint): the caller then keeps the origin.
    """
    pts = np.asarray(points, dtype=np.float64)
    pts = pts[np.isfinite(pts).all(axis=1)]
    if len(pts) < 100:
        return None
    if len(pts) > SAMPLE:
        pts = pts[np.random.default_rng(seed).choice(len(pts), SAMPLE, replace=False)]
    at_origin = line_of_sight_conflict(pts, np.zeros(3))
    centre = np.median(pts, axis=0)
    normal, sure = _camera_side(pts, seed)
    # an origin behind the support (under the table) is no camera's, however few conflicts
    behind = sure >= SIDE_SURE and float((0.0 - centre) @ normal) < 0
    if at_origin <= ORIGIN_OK and not behind:
        return None
    extent = float(np.percentile(np.linalg.norm(pts - centre, axis=1), 95))
    best, best_score = None, np.inf if behind else at_origin
    # coarse: shells of positions around the cloud on the camera's side, then shrinking steps
    # around the best
    towards = _directions(300)
    towards = towards[towards @ normal >= 0.2]
    for distance in SHELLS:
        for u in towards:
            candidate = centre + u * max(distance * extent, MIN_RANGE_M + extent)
            score = line_of_sight_conflict(pts, candidate)
            if score < best_score:
                best, best_score = candidate, score
    if best is None:
        return None
    rng = np.random.default_rng(seed)
    step = 0.25 * extent
    for _ in range(4):
        for offset in rng.normal(0.0, step, (12, 3)):
            if (best + offset - centre) @ normal <= 0:
                continue
            score = line_of_sight_conflict(pts, best + offset)
            if score < best_score:
                best, best_score = best + offset, score
        step /= 2
    if best_score > ORIGIN_OK or (not behind and best_score > 0.5 * at_origin):
        return None
    return best
