"""Metric definitions on hand-made cases."""

import numpy as np
from pinpoint3d_core.evaluation import metrics
import pytest


def test_target_iou_and_sample_iou():
    gt = np.array([0, 1, 1, 1, 2, 2, 0, 0])
    pred = np.array([1, 1, 1, 0, 2, 0, 0, 2])
    # part 1: inter 2, union 4; part 2: inter 1, union 3
    np.testing.assert_allclose(metrics.target_ious(pred, gt, [1, 2]), [0.5, 1 / 3])
    assert metrics.sample_iou(pred, gt) == pytest.approx((0.5 + 1 / 3) / 2)
    assert metrics.sample_iou(np.zeros(3), np.zeros(3)) == 0.0


def _curve(ious, targets=2, cap=10):
    c = metrics.SampleCurve('s', 'scene', list(range(1, targets + 1)), [10] * targets, cap)
    clicks = targets
    for v in ious:
        c.add(clicks, [v] * targets)
        clicks += 1
    return c


def test_iou_at_uses_exact_multiples_of_targets():
    # 2 targets: steps at 2, 3, 4, 5, 6 clicks -> 1, 1.5, 2, 2.5, 3 clicks per target.
    c = _curve([0.1, 0.2, 0.3, 0.4, 0.5])
    assert c.iou_at(1) == pytest.approx(0.1)
    assert c.iou_at(2) == pytest.approx(0.3)
    assert c.iou_at(3) == pytest.approx(0.5)
    assert c.iou_at(5) is None


def test_noc_first_crossing_and_cap():
    c = _curve([0.4, 0.6, 0.7, 0.95], targets=2, cap=10)
    assert c.noc(0.5) == pytest.approx(1.5)    # 3 clicks / 2 targets
    assert c.noc(0.65) == pytest.approx(2.0)
    assert c.noc(0.9) == pytest.approx(2.5)
    never = _curve([0.1, 0.2], targets=2, cap=10)
    assert never.noc(0.5) == 10.0


def test_summary_keys_noc_by_sample_and_weights_by_points():
    a = _curve([0.2, 0.9], targets=1)
    b = _curve([0.6, 0.6], targets=1)
    b.sample_id = 'other'
    a.target_sizes = [300]
    b.target_sizes = [100]
    s = metrics.summarize([a, b], iou_at=(1, 2), noc_at=(0.5,))
    assert s['samples'] == 2 and s['targets'] == 2
    assert s['IoU@1'] == pytest.approx(40.0)
    assert s['IoU@2'] == pytest.approx(75.0)
    assert s['NoC@50'] == pytest.approx((2 + 1) / 2)
    assert s['pw-mIoU@1'] == pytest.approx(100 * (300 * 0.2 + 100 * 0.6) / 400)
    # Two samples from one scene with the same target count both count (no key collision).
    b.scene = a.scene
    assert metrics.summarize([a, b], noc_at=(0.5,))['NoC@50'] == pytest.approx(1.5)
