"""Occluded pieces: a box cut in two by a can in front comes back whole; a free gap does not."""

import numpy as np
from pinpoint3d_core.evaluation.baseline import GraphBaselineSegmenter
from pinpoint3d_core.inference.occlusion import ViewDepth
from pinpoint3d_core.interaction import Click
from pinpoint3d_core.presets import get_preset
import pytest

# Fronto-parallel rectangles seen by a camera at the origin (optical frame: x right, y down,
# z forward): (label, depth z, x range, y range). The table is the plane y = 0.3 below them.
TABLE_Y = 0.3


def _camera_frame(rects, pitch=0.0015, seed=0):
    """Ray-cast a 1.5 mrad depth image of the rectangles over the table; returns points, labels."""
    u, v = np.meshgrid(np.arange(-0.35, 0.35, pitch), np.arange(-0.05, 0.45, pitch))
    rays = np.stack([u.ravel(), v.ravel(), np.ones(u.size)], axis=1)
    depth = np.full(len(rays), np.inf)
    label = np.zeros(len(rays), dtype=np.int64)
    down = rays[:, 1] > 1e-6
    table_t = np.where(down, TABLE_Y / np.maximum(rays[:, 1], 1e-6), np.inf)
    table_t[table_t > 1.6] = np.inf                   # the table ends 1.6 m away
    depth, label = np.where(table_t < depth, table_t, depth), np.where(table_t < depth, 0, label)
    for k, z, (x0, x1), (y0, y1) in rects:
        hit = (rays[:, 0] * z >= x0) & (rays[:, 0] * z <= x1) & (rays[:, 1] * z >= y0) & \
            (rays[:, 1] * z <= y1) & (z < depth)
        depth[hit], label[hit] = z, k
    seen = np.isfinite(depth)
    noise = np.random.default_rng(seed).normal(0, 0.0005, int(seen.sum()))   # along the ray
    pts = rays[seen] * (depth[seen] + noise)[:, None]
    return pts, label[seen]


def _segment(pts, labels, clicked, settings):
    colors = np.full((len(pts), 3), 128, dtype=np.uint8)
    session = GraphBaselineSegmenter(settings).start(pts, colors)
    clicks = []
    for k in clicked:
        rows = np.flatnonzero(labels == k)
        centre = pts[rows].mean(axis=0)
        row = rows[np.argmin(np.linalg.norm(pts[rows] - centre, axis=1))]
        clicks.append(Click(index=int(row), object_id=k))
    session.add_clicks(clicks)
    return np.asarray(session.predict('object').object_ids)


def _iou(pred, labels, k):
    return np.sum((pred == k) & (labels == k)) / np.sum((pred == k) | (labels == k))


TABLETOP = get_preset('tabletop').baseline
# A 30 x 20 cm box face 1 m away and an 8 cm wide, taller can 20 cm in front of it, both on
# the table: the box shows as two pieces.
OCCLUDED = [(1, 1.0, (-0.15, 0.15), (0.1, TABLE_Y)), (2, 0.8, (-0.04, 0.04), (0.05, TABLE_Y))]


def test_the_view_depth_sees_the_nearest_surface():
    pts, _ = _camera_frame(OCCLUDED)
    view = ViewDepth(pts)
    assert view.perspective
    behind_can = np.array([[0.0, 0.2, 1.0]])
    assert abs(view.observed(behind_can)[0] - np.linalg.norm([0.0, 0.16, 0.8])) < 0.02


@pytest.mark.parametrize('can_depth', [0.8, 0.95])
@pytest.mark.parametrize('shadow', [False, True])
def test_a_box_cut_in_two_by_a_can_comes_back_whole(can_depth, shadow):
    # At 0.95 m the can's edge is nearer to the far piece than the box's own piece is: the
    # piece continues the box's face, not the can's. ``shadow``: a depth camera's projector
    # leaves a band without returns on the box beside the can's edge.
    rects = [OCCLUDED[0], (2, can_depth) + OCCLUDED[1][2:]]
    pts, labels = _camera_frame(rects)
    if shadow:
        u = pts[:, 0] / pts[:, 2]
        edge = 0.04 / can_depth
        lit = ~((labels == 1) & (u > edge) & (u < edge + 0.02))
        pts, labels = pts[lit], labels[lit]
    whole = _segment(pts, labels, [1, 2], TABLETOP)
    assert _iou(whole, labels, 1) > 0.95 and _iou(whole, labels, 2) > 0.95
    # Without the join the far piece of the box is background: about half of it.
    cut = _segment(pts, labels, [1, 2], TABLETOP.replace(occlusion_gap=0.0))
    assert _iou(cut, labels, 1) < 0.7


def test_a_box_seen_through_a_free_gap_stays_apart():
    # Two boxes side by side at one depth with 6 cm of table visible between them: the
    # sensor looked through the gap, so the unclicked box is not the clicked one's piece.
    rects = [(1, 1.0, (-0.15, -0.03), (0.1, TABLE_Y)), (2, 1.0, (0.03, 0.15), (0.1, TABLE_Y))]
    pts, labels = _camera_frame(rects)
    pred = _segment(pts, labels, [1], TABLETOP)
    assert _iou(pred, labels, 1) > 0.95
    assert not np.any(pred[labels == 2] == 1)


def test_the_wall_behind_a_box_is_not_its_hidden_part():
    # A wall 30 cm behind the box, seen around it: connected to the box only through the
    # box's shadow, which runs along the view, not across it.
    rects = [(3, 1.3, (-0.5, 0.5), (-0.2, TABLE_Y)), (1, 1.0, (-0.1, 0.1), (0.1, TABLE_Y))]
    pts, labels = _camera_frame(rects)
    pred = _segment(pts, labels, [1], TABLETOP)
    assert _iou(pred, labels, 1) > 0.95
    assert np.mean(pred[labels == 3] == 1) < 0.01


def _box_with_a_rim_without_returns(band=0.01, behind=()):
    """
    Return a 20 cm box 1 m away, front face and top, without returns near their edge.

    No returns within ``band`` of the edge between the faces (a shiny rim); labels 0 (table)
    and 1; ``behind``: more rectangles (label 2 and up) beyond the box.
    """
    pts, labels = _camera_frame([(1, 1.0, (-0.1, 0.1), (0.1, TABLE_Y))] + list(behind))
    u, v = np.meshgrid(np.arange(-0.35, 0.35, 0.0015), np.arange(-0.05, 0.45, 0.0015))
    rays = np.stack([u.ravel(), v.ravel(), np.ones(u.size)], axis=1)
    rays = rays[rays[:, 1] > 1e-6]
    t = 0.1 / rays[:, 1]                                  # the top face: y = 0.1
    top = rays * t[:, None]
    on = (np.abs(top[:, 0]) <= 0.1) & (top[:, 2] >= 1.0) & (top[:, 2] <= 1.2)
    top = top[on] + np.random.default_rng(1).normal(0, 0.0005, (int(on.sum()), 1)) * rays[on]
    # what lay behind the top along its rays (the image rows it covers) is hidden now
    u, v = pts[:, 0] / pts[:, 2], pts[:, 1] / pts[:, 2]
    hidden = (labels != 1) & (np.abs(u) <= 0.1) & (v >= 0.1 / 1.2) & (v <= 0.1)
    pts, labels = pts[~hidden], labels[~hidden]
    pts = np.concatenate([pts, top])
    labels = np.concatenate([labels, np.ones(len(top), dtype=np.int64)])
    # no return on the rays through the rim: the front face's top band, the top's front band
    u, v = pts[:, 0] / pts[:, 2], pts[:, 1] / pts[:, 2]
    rim = (np.abs(u) <= 0.1) & (v >= 0.1 / (1.0 + band)) & (v <= 0.1 + band)
    return pts[~rim], labels[~rim]


def test_a_box_whose_rim_gave_no_returns_comes_back_whole():
    pts, labels = _box_with_a_rim_without_returns()
    assert 'occlusion_rim_gap' in TABLETOP.to_dict() and TABLETOP.occlusion_rim_gap > 0
    top = (labels == 1) & (np.abs(pts[:, 1] - 0.1) < 0.003) & (pts[:, 2] > 1.005)
    assert top.sum() > 500
    whole = _segment(pts, labels, [1], TABLETOP)     # the click lands on the front face
    assert _iou(whole, labels, 1) > 0.95 and np.mean(whole[top] == 1) > 0.95
    cut = _segment(pts, labels, [1], TABLETOP.replace(occlusion_rim_gap=0.0))
    assert np.mean(cut[top] == 1) < 0.05


def test_a_box_seen_above_the_rim_of_a_nearer_one_stays_apart():
    # A box 2 cm behind the near box's top, seen above it: a k-NN link joins the top's back
    # edge to it, in a groove. The top comes back across its rim; the box behind does not.
    behind = (2, 1.22, (-0.1, 0.1), (-0.05, TABLE_Y))
    pts, labels = _box_with_a_rim_without_returns(behind=[behind])
    pred = _segment(pts, labels, [1], TABLETOP)
    assert _iou(pred, labels, 1) > 0.95
    assert np.mean(pred[labels == 2] == 1) < 0.01
