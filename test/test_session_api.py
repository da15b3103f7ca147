"""Session API: clicks, predictions at full resolution, undo/reset, bad inputs."""

import numpy as np
from pinpoint3d_core.errors import ClickError, InvalidCloudError, Pinpoint3DError
from pinpoint3d_core.toyscenes import benchmark_room
import pytest


@pytest.fixture(scope='module')
def segmenter(minkowski):
    from pinpoint3d_core.session import Segmenter
    return Segmenter.untrained(config='small', seed=0, device='cpu')


@pytest.fixture(scope='module')
def room():
    return benchmark_room(6000, seed=1)


def _idx(room, obj, part=None, k=0):
    sel = room['object_ids'] == obj
    if part is not None:
        sel &= room['part_ids'] == part
    return int(np.flatnonzero(sel)[k])


def test_basic_flow_full_resolution_and_caller_indexing(segmenter, room):
    from pinpoint3d_core.session import Click
    pts = room['points'].astype(np.float64).copy()
    pts[[3, 77]] = np.nan
    pts[100, 2] = np.inf
    s = segmenter.start(pts, room['colors'])
    assert s.encode_ms > 0 and s.num_points == len(pts)
    leg = _idx(room, 1, 2)
    got = s.add_clicks([Click(position=tuple(pts[leg] + 0.004), object_id=1, part_id=2),
                        Click(index=_idx(room, 1, 1), object_id=1, part_id=1)])
    assert got == [leg, _idx(room, 1, 1)]
    pred = s.predict('both')
    assert pred.object_ids.dtype == np.uint32 and pred.part_ids.dtype == np.uint32
    assert pred.object_ids.shape == (len(pts),) and pred.part_ids.shape == (len(pts),)
    assert pred.object_ids[[3, 77, 100]].tolist() == [0, 0, 0]
    assert set(np.unique(pred.object_ids)) <= {0, 1}
    assert set(np.unique(pred.part_ids)) <= {0, 1, 2}
    assert pred.object_ids[leg] == 1 and pred.part_ids[leg] == 2      # clicked points keep label
    assert np.all(pred.part_ids[pred.object_ids == 0] == 0)           # parts only inside objects
    assert set(pred.object_scores) == {1} and set(pred.part_scores) <= {(1, 1), (1, 2)}
    assert pred.decode_ms > 0
    # Points in the same voxel share their labels (prediction at voxel level, mapped back).
    vor = s.voxels.voxel_of_row()
    for v in np.unique(vor[vor >= 0])[:200]:
        rows = np.flatnonzero(vor == v)
        assert len(set(pred.object_ids[rows])) == 1


def test_new_click_does_not_rerun_backbone(segmenter, room):
    from pinpoint3d_core.session import Click
    s = segmenter.start(room['points'], room['colors'])
    s.add_clicks([Click(index=_idx(room, 2, 6, 0), object_id=2, part_id=6)])
    s.predict()   # the focus box is encoded here, on the first prediction
    calls = segmenter.model.backbone_calls
    for k in range(1, 4):
        s.add_clicks([Click(index=_idx(room, 2, 6, k), object_id=2, part_id=6)])
        s.predict()
    s.undo()
    s.predict('object')
    assert segmenter.model.backbone_calls == calls


def test_undo_and_reset(segmenter, room):
    from pinpoint3d_core.session import Click
    s = segmenter.start(room['points'], room['colors'])
    s.add_clicks([Click(index=_idx(room, 1, 1), object_id=1, part_id=1)])
    first = s.predict()
    s.add_clicks([Click(index=_idx(room, 0), positive=False, object_id=0),
                  Click(index=_idx(room, 3, 13), object_id=3, part_id=13)])
    assert len(s.clicks) == 3
    assert s.undo() == 2 and len(s.clicks) == 1
    again = s.predict()
    assert np.array_equal(first.object_ids, again.object_ids)
    assert np.array_equal(first.part_ids, again.part_ids)
    s.reset()
    assert s.clicks == [] and s.undo() == 0
    empty = s.predict()
    assert not empty.object_ids.any() and not empty.part_ids.any()


def test_deterministic_and_colour_formats_agree(segmenter, room):
    from pinpoint3d_core.session import Click
    clicks = [Click(index=_idx(room, 1, 1), object_id=1, part_id=1),
              Click(index=_idx(room, 1, 3), object_id=1, part_id=3)]
    preds = []
    for colors in (room['colors'], room['colors'].astype(np.float32) / 255.0, room['colors']):
        s = segmenter.start(room['points'], colors)
        s.add_clicks(clicks)
        preds.append(s.predict())
    for p in preds[1:]:
        assert np.array_equal(preds[0].object_ids, p.object_ids)
        assert np.array_equal(preds[0].part_ids, p.part_ids)


def test_multi_object_parts_stay_in_their_object(segmenter, room):
    from pinpoint3d_core.session import Click
    s = segmenter.start(room['points'], room['colors'])
    s.add_clicks([Click(index=_idx(room, 1, 1), object_id=1, part_id=1),
                  Click(index=_idx(room, 1, 2), object_id=1, part_id=2),
                  Click(index=_idx(room, 2, 6), object_id=2, part_id=6),
                  Click(index=_idx(room, 2, 7), object_id=2, part_id=7),
                  Click(index=_idx(room, 3), object_id=3)])
    pred = s.predict()
    for obj, parts in ((1, {1, 2}), (2, {6, 7}), (3, set())):
        inside = pred.part_ids[pred.object_ids == obj]
        assert set(np.unique(inside)) <= parts | {0}
    assert pred.object_ids[_idx(room, 2, 7)] == 2 and pred.part_ids[_idx(room, 2, 7)] == 7
    obj_only = s.predict('object')
    assert not obj_only.part_ids.any()
    assert np.array_equal(obj_only.object_ids, pred.object_ids)
    one = s.predict(target_objects=[2])
    assert set(np.unique(one.part_ids)) <= {0, 6, 7}


def test_object_defined_by_its_parts_only(segmenter, room):
    from pinpoint3d_core.session import Click
    s = segmenter.start(room['points'], room['colors'])
    s.add_clicks([Click(index=_idx(room, 2, 8), object_id=5, part_id=1)])
    pred = s.predict()
    assert 5 in pred.object_scores and pred.object_ids[_idx(room, 2, 8)] == 5


def test_click_errors(segmenter, room):
    from pinpoint3d_core.session import Click
    s = segmenter.start(room['points'], room['colors'])
    far = tuple(room['points'].max(axis=0) + 5.0)
    with pytest.raises(ClickError, match=r'click 1 .*m away'):
        s.add_clicks([Click(index=0), Click(position=far)])
    assert s.clicks == []                                   # all or nothing
    with pytest.raises(ClickError, match='outside the cloud'):
        s.add_clicks([Click(index=len(room['points']))])
    with pytest.raises(ClickError, match='needs the object'):
        s.add_clicks([Click(index=0, object_id=0, part_id=3)])
    with pytest.raises(ClickError, match='cannot name a part'):
        s.add_clicks([Click(index=0, object_id=1, part_id=3, positive=False)])
    with pytest.raises(ClickError, match='exactly one'):
        s.add_clicks([Click(object_id=1)])
    with pytest.raises(ClickError, match='object_id'):
        s.add_clicks([Click(index=0, object_id=-1)])
    s.add_clicks([Click(index=1, object_id=1)])
    with pytest.raises(ClickError, match=r'unknown object id\(s\) \[4\]'):
        s.predict(target_objects=[4])
    with pytest.raises(Pinpoint3DError, match='granularity'):
        s.predict('parts')
    limit = segmenter.config.max_clicks
    with pytest.raises(ClickError, match='at most 200 clicks'):
        s.add_clicks([Click(index=i, object_id=1) for i in range(limit)])
    s.add_clicks([Click(index=i, object_id=1) for i in range(limit - 1)])
    assert len(s.clicks) == limit
    assert s.predict('object').object_ids.shape == (len(room['points']),)


def test_nan_row_click_is_an_error(segmenter, room):
    from pinpoint3d_core.session import Click
    pts = room['points'].copy()
    pts[5] = np.nan
    s = segmenter.start(pts)
    with pytest.raises(ClickError, match='NaN'):
        s.add_clicks([Click(index=5)])


@pytest.mark.parametrize('points, match', [
    (np.zeros((0, 3)), 'empty'),
    (np.full((50, 3), np.nan), 'NaN or inf'),
    (np.array([[1.0, 2.0, 3.0]]), '1 voxel'),
    (np.tile([[1.0, 2.0, 3.0]], (40, 1)), '1 voxel'),
    (np.zeros((10, 2)), 'shape'),
    ([['a', 'b', 'c']], 'numeric'),
])
def test_bad_clouds(segmenter, points, match):
    with pytest.raises(InvalidCloudError, match=match):
        segmenter.start(points)


def test_bad_features(segmenter, room):
    pts = room['points']
    with pytest.raises(InvalidCloudError, match=r'\[0, 1\]'):
        segmenter.start(pts, room['colors'].astype(np.float32))
    with pytest.raises(InvalidCloudError, match='shape'):
        segmenter.start(pts, room['colors'][:10])
    s = segmenter.start(pts, intensity=np.linspace(0, 200, len(pts)))   # raw units: rescaled
    assert s.voxels.features.max() <= 1.0


def test_duplicated_points_are_well_defined(segmenter, room):
    from pinpoint3d_core.session import Click
    pts, cols = room['points'], room['colors']
    s1 = segmenter.start(pts, cols)
    s2 = segmenter.start(np.concatenate([pts, pts]), np.concatenate([cols, cols]))
    click = [Click(index=_idx(room, 1, 1), object_id=1, part_id=1)]
    s1.add_clicks(click)
    s2.add_clicks(click)
    p1, p2 = s1.predict(), s2.predict()
    n = len(pts)
    assert np.array_equal(p2.object_ids[:n], p2.object_ids[n:])
    assert np.array_equal(p1.object_ids, p2.object_ids[:n])
    assert np.array_equal(p1.part_ids, p2.part_ids[:n])


def test_too_many_points_or_voxels(room):
    from pinpoint3d_core.session import Segmenter
    seg = Segmenter.untrained(config='small', device='cpu', inference={'max_points': 1000})
    with pytest.raises(InvalidCloudError, match='limit of 1,000'):
        seg.start(room['points'])
    # per session, without rebuilding the model
    with pytest.raises(InvalidCloudError, match='voxels'):
        seg.start(room['points'], inference={'max_points': 10 ** 6, 'max_voxels': 500})


def test_two_million_points_bounded(segmenter):
    """2.1M points: voxelised first, decoded on voxels/tokens, labels back per point."""
    from pinpoint3d_core.session import Click
    rng = np.random.default_rng(0)
    n = 2_100_000
    pts = rng.uniform(0, [4.0, 3.0, 0.3], (n, 3)).astype(np.float32)
    s = segmenter.start(pts)
    assert s.voxels.num_voxels < n
    s.add_clicks([Click(index=0, object_id=1), Click(index=1, positive=False, object_id=0)])
    pred = s.predict('object')
    assert pred.object_ids.shape == (n,)
    assert pred.object_ids[0] == 1 and pred.object_ids[1] == 0


def _far_room():
    """Two copies of the test room 30 m apart: objects 1..k near, 101.. far."""
    near = benchmark_room(6000, seed=1)
    far_pts = near['points'] + np.array([30.0, 0.0, 0.0], dtype=near['points'].dtype)
    obj = np.concatenate([near['object_ids'], np.where(near['object_ids'] > 0,
                                                       near['object_ids'] + 100, 0)])
    return (np.concatenate([near['points'], far_pts]),
            np.concatenate([near['colors'], near['colors']]), obj)


def test_focus_box_labels_only_near_the_clicks_and_follows_them(segmenter):
    from pinpoint3d_core.session import Click
    assert segmenter.inference.focus_half_extent == 2.0   # the small config's box
    pts, colors, obj = _far_room()
    s = segmenter.start(pts, colors)
    assert s.encoding is None               # nothing encoded before a click
    near_click = int(np.flatnonzero(obj == 1)[0])
    far_click = int(np.flatnonzero(obj == 101)[0])
    s.add_clicks([Click(index=near_click, object_id=1)])
    pred = s.predict('object')
    assert pred.encode_ms > 0
    dist = np.abs(pts - pts[near_click]).max(axis=1)
    assert np.all(pred.object_ids[dist > 2.0 + 0.05] == 0)
    assert pred.object_ids[near_click] == 1
    calls = segmenter.model.backbone_calls
    s.add_clicks([Click(index=far_click, object_id=2)])   # far outside the box: re-encode
    pred = s.predict('object')
    assert segmenter.model.backbone_calls == calls + 1 and pred.encode_ms > 0
    assert pred.object_ids[near_click] == 1 and pred.object_ids[far_click] == 2
    # A negative click outside the box is background already and must not break decoding.
    s.reset()
    s.add_clicks([Click(index=near_click, object_id=1),
                  Click(index=far_click, object_id=0, positive=False)])
    assert s.predict('object').object_ids[far_click] == 0


def test_focus_box_covering_everything_equals_whole_cloud(room):
    from pinpoint3d_core.session import Click, Segmenter
    whole = Segmenter.untrained(config='small', seed=0, device='cpu',
                                inference={'focus_half_extent': 0.0})
    boxed = Segmenter.untrained(config='small', seed=0, device='cpu',
                                inference={'focus_half_extent': 1e4})
    clicks = [Click(index=_idx(room, 1, 1), object_id=1, part_id=1),
              Click(index=_idx(room, 0), object_id=0, positive=False)]
    preds = []
    for seg in (whole, boxed):
        s = seg.start(room['points'], room['colors'])
        s.add_clicks(clicks)
        preds.append(s.predict())
    assert np.array_equal(preds[0].object_ids, preds[1].object_ids)
    assert np.array_equal(preds[0].part_ids, preds[1].part_ids)


def test_focus_labels_depend_on_clicks_not_on_history(segmenter, room):
    from pinpoint3d_core.session import Click
    a = Click(index=_idx(room, 1, 1), object_id=1, part_id=1)
    b = Click(index=_idx(room, 3, 13), object_id=3, part_id=13)
    s = segmenter.start(room['points'], room['colors'])
    s.add_clicks([b])
    s.predict()
    s.reset()
    s.add_clicks([a])
    again = s.predict()
    fresh = segmenter.start(room['points'], room['colors'])
    fresh.add_clicks([a])
    first = fresh.predict()
    assert np.array_equal(first.object_ids, again.object_ids)
    assert np.array_equal(first.part_ids, again.part_ids)
