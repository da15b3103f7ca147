"""The non-learned graph baseline through the session API."""

import numpy as np
from pinpoint3d_core.errors import ClickError, InvalidCloudError
from pinpoint3d_core.evaluation.baseline import GraphBaselineSegmenter
from pinpoint3d_core.interaction import Click
from pinpoint3d_core.toyscenes import box_surface
import pytest


def _two_boxes():
    rng = np.random.default_rng(0)
    a = box_surface(rng, [0.25, 0.25, 0.25], [0.5, 0.5, 0.5], 3000)
    b = box_surface(rng, [1.75, 0.25, 0.25], [0.5, 0.5, 0.5], 3000)
    return np.concatenate([a, b]), np.repeat([1, 2], [len(a), len(b)])


def test_two_separated_boxes_from_one_click_each():
    pts, gt = _two_boxes()
    session = GraphBaselineSegmenter().start(pts)
    ia, ib = int(np.flatnonzero(gt == 1)[0]), int(np.flatnonzero(gt == 2)[0])
    idx = session.add_clicks([Click(index=ia, object_id=7, part_id=0, positive=True),
                              Click(index=ib, object_id=9, part_id=0, positive=True)])
    assert idx == [ia, ib]
    pred = session.predict('object')
    expect = np.where(gt == 1, 7, 9)
    assert (pred.object_ids == expect).mean() > 0.99
    assert set(pred.object_scores) == {7, 9}
    session.undo()
    assert (session.predict().object_ids == 0).all()


def test_negative_click_nan_rows_and_errors():
    pts, gt = _two_boxes()
    pts = pts.copy()
    pts[5] = np.nan
    session = GraphBaselineSegmenter().start(pts)
    ia = int(np.flatnonzero(gt == 1)[10])
    session.add_clicks([Click(index=ia, object_id=1, part_id=0, positive=True),
                        Click(position=tuple(pts[gt == 2][3]), object_id=0, positive=False)])
    pred = session.predict()
    assert pred.object_ids[5] == 0
    assert (pred.object_ids[gt == 2] == 0).mean() > 0.99
    assert (pred.object_ids[(gt == 1) & np.isfinite(pts[:, 0])] == 1).mean() > 0.99
    with pytest.raises(ClickError):
        session.add_clicks([Click(index=5, object_id=1, part_id=0, positive=True)])
    with pytest.raises(ClickError):
        session.add_clicks([Click(position=(50, 0, 0), object_id=1)], snap_radius=0.1)
    with pytest.raises(InvalidCloudError):
        GraphBaselineSegmenter().start(np.zeros((0, 3)))
