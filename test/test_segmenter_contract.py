"""One contract, run against the learned model and the non-learned baseline alike."""

import numpy as np
from pinpoint3d_core.errors import ClickError, Pinpoint3DError
from pinpoint3d_core.evaluation.baseline import GraphBaselineSegmenter
from pinpoint3d_core.interaction import (
    Click, InteractiveSegmenter, InteractiveSession, Prediction, ResolvedClick)
from pinpoint3d_core.toyscenes import benchmark_room
import pytest


@pytest.fixture(scope='module')
def room():
    r = benchmark_room(6000, seed=1)
    pts = r['points'].astype(np.float64)
    pts[7] = np.nan                                   # one dropped row
    return pts, r['colors'], r['object_ids'], r['part_ids']


@pytest.fixture(scope='module', params=['model', 'baseline'])
def segmenter(request):
    if request.param == 'baseline':
        return GraphBaselineSegmenter()
    pytest.importorskip('torch')
    from pinpoint3d_core.me_shim import import_minkowski
    try:
        import_minkowski()
    except ImportError as exc:
        pytest.skip(f'MinkowskiEngine missing: {exc}')
    from pinpoint3d_core.session import Segmenter
    return Segmenter.load(device='cpu')


def _on(obj, part, k, p=None):
    sel = obj == k if p is None else (obj == k) & (part == p)
    return int(np.flatnonzero(sel)[3])


def test_both_speak_the_protocols(segmenter, room):
    pts, colors, _, _ = room
    assert isinstance(segmenter, InteractiveSegmenter)
    assert isinstance(segmenter.source, str) and segmenter.untrained is False
    session = segmenter.start(pts, colors)
    assert isinstance(session, InteractiveSession)
    assert session.num_points == len(pts) and session.encode_ms >= 0
    assert session.clicks == []


def test_clicks_resolve_to_caller_rows_and_predictions_cover_every_row(segmenter, room):
    pts, colors, obj, part = room
    session = segmenter.start(pts, colors)
    table = _on(obj, part, 1, 1)
    # an object-level click by position, 1 cm off a point of object 1 far from the part click
    others = np.flatnonzero(obj == 1)
    other = others[np.argmax(np.linalg.norm(pts[others] - pts[table], axis=1))]
    shifted = tuple(pts[other] + 0.01)
    rows = session.add_clicks([Click(index=table, object_id=4, part_id=2),
                               Click(position=shifted, object_id=4)])
    assert rows[0] == table and 0 <= rows[1] < len(pts)
    assert all(isinstance(c, ResolvedClick) for c in session.clicks)
    assert [c.object_id for c in session.clicks] == [4, 4]
    for granularity in ('object', 'part', 'both'):
        pred = session.predict(granularity)
        assert isinstance(pred, Prediction) and pred.granularity == granularity
        assert pred.object_ids.shape == (len(pts),) and pred.object_ids.dtype == np.uint32
        assert pred.part_ids.shape == (len(pts),) and pred.part_ids.dtype == np.uint32
        assert pred.object_ids[table] == 4 and pred.object_ids[7] == 0
        assert 4 in pred.object_scores and pred.decode_ms >= 0
        if granularity == 'object':
            assert not pred.part_ids.any()
        else:
            assert pred.part_ids[table] == 2


def test_snap_radius_none_means_the_default_and_bad_radii_are_refused(segmenter, room):
    pts, colors, obj, part = room
    session = segmenter.start(pts, colors)
    radius = session.default_snap_radius()
    assert 0.05 <= radius < 1.0
    far = tuple(pts[_on(obj, part, 1, 1)] + np.array([0.0, 0.0, 10.0]))
    with pytest.raises(ClickError, match='snap radius'):
        session.add_clicks([Click(position=far, object_id=1)])
    for bad in (float('nan'), float('inf'), -1.0):
        with pytest.raises(ClickError, match='snap_radius'):
            session.add_clicks([Click(position=far, object_id=1)], snap_radius=bad)
    assert session.clicks == []


def test_all_or_nothing_undo_counts_and_reset(segmenter, room):
    pts, colors, obj, part = room
    session = segmenter.start(pts, colors)
    assert session.undo() == 0
    good = Click(index=_on(obj, part, 1), object_id=1)
    with pytest.raises(ClickError):
        session.add_clicks([good, Click(index=7, object_id=1)])       # the NaN row
    with pytest.raises(ClickError):
        session.add_clicks([good, Click(index=10 ** 9, object_id=1)])
    with pytest.raises(ClickError):
        session.add_clicks([Click(index=0, object_id=0, part_id=3, positive=False)])
    with pytest.raises(ClickError):
        session.add_clicks([Click(index=0, object_id=2 ** 40)])
    assert session.clicks == []
    session.add_clicks([good])
    session.add_clicks([Click(index=_on(obj, part, 2), object_id=2),
                        Click(index=_on(obj, part, 0), positive=False, object_id=0)])
    assert session.undo() == 2 and len(session.clicks) == 1
    session.reset()
    assert session.clicks == []
    assert not session.predict().object_ids.any()


def test_requests_the_session_cannot_answer(segmenter, room):
    pts, colors, obj, part = room
    session = segmenter.start(pts, colors)
    session.add_clicks([Click(index=_on(obj, part, 1), object_id=1)])
    with pytest.raises(Pinpoint3DError, match='granularity'):
        session.predict('everything')
    with pytest.raises(ClickError, match='unknown object'):
        session.predict('both', target_objects=[9])


def test_the_click_cap_is_the_same_and_says_what_to_do(segmenter, room):
    pts, colors, obj, _ = room
    session = segmenter.start(pts, colors)
    rows = np.flatnonzero(obj == 0)[10:210]
    session.add_clicks([Click(index=int(r), positive=False, object_id=0) for r in rows])
    with pytest.raises(ClickError, match=r'at most 200 clicks.*undo\(\)'):
        session.add_clicks([Click(index=int(rows[0]), positive=False, object_id=0)])
