"""The simulated user: deepest error point, polarity, determinism."""

import numpy as np

from pinpoint3d_core import clicksim


def _grid(nx, ny):
    x, y = np.meshgrid(np.arange(nx, dtype=float), np.arange(ny, dtype=float), indexing='ij')
    return np.column_stack([x.ravel(), y.ravel(), np.zeros(nx * ny)])


def test_first_clicks_are_deepest_inside_each_target():
    pts = _grid(21, 11)
    gt = np.zeros(len(pts), int)
    gt[(pts[:, 0] >= 2) & (pts[:, 0] <= 8) & (pts[:, 1] >= 2) & (pts[:, 1] <= 8)] = 1
    gt[(pts[:, 0] >= 12) & (pts[:, 0] <= 16) & (pts[:, 1] >= 3) & (pts[:, 1] <= 7)] = 2
    clicks = clicksim.first_clicks(pts, gt)
    assert [c.label for c in clicks] == [1, 2]
    assert all(c.positive for c in clicks)
    np.testing.assert_allclose(pts[clicks[0].index], [5, 5, 0])
    np.testing.assert_allclose(pts[clicks[1].index], [14, 5, 0])
    assert clicks[0].depth > clicks[1].depth


def test_next_click_polarity_and_largest_region():
    pts = _grid(30, 10)
    gt = np.zeros(len(pts), int)
    gt[pts[:, 0] < 10] = 1
    pred = gt.copy()
    fp = (pts[:, 0] >= 14) & (pts[:, 0] <= 22)
    pred[fp] = 1                                     # large false positive (background)
    pred[(pts[:, 0] < 2)] = 0                        # small miss of target 1
    c = clicksim.next_click(pts, gt, pred)
    assert not c.positive and c.label == 0
    assert pts[c.index, 0] == 18                     # centre of the false positive strip
    pred[fp] = 0                                     # fix the false positive
    c = clicksim.next_click(pts, gt, pred)
    assert c.positive and c.label == 1 and pts[c.index, 0] < 2
    assert clicksim.next_click(pts, gt, gt) is None


def test_exclude_and_determinism():
    pts = _grid(9, 9)
    gt = np.ones(len(pts), int)
    pred = np.zeros(len(pts), int)
    a = clicksim.next_clicks(pts, gt, pred, 3)
    b = clicksim.next_clicks(pts, gt, pred, 3)
    assert a == b and len(a) == 1
    c = clicksim.next_click(pts, gt, pred, exclude=[a[0].index])
    assert c.index != a[0].index
    regions = clicksim.error_regions(pts, gt, pred, exclude=np.arange(len(pts)))
    assert regions == []
