"""Mask connectivity: pieces no click reaches go back to the background."""

import numpy as np
from pinpoint3d_core.inference.graph import NeighbourGraph
from pinpoint3d_core.model.config import get_config
from pinpoint3d_core.toyscenes import benchmark_room
import pytest


def clicked_pieces(xyz, labels, seeds, max_gap):
    return NeighbourGraph(xyz, max_gap).clicked_pieces(labels, seeds)


def _blob(center, n=40, spread=0.2, seed=0):
    rng = np.random.default_rng(seed)
    return np.asarray(center, float) + rng.uniform(-spread, spread, (n, 3))


def test_far_look_alike_is_dropped_and_near_piece_kept():
    xyz = np.concatenate([_blob((0, 0, 0)), _blob((3, 0, 0), seed=1), _blob((0.3, 0, 0), seed=2)])
    labels = np.ones(len(xyz), dtype=np.int64)
    out = clicked_pieces(xyz, labels, {1: [0]}, max_gap=0.5)
    assert out[:40].all() and out[80:].all()       # clicked blob and the one it touches
    assert not out[40:80].any()                    # the blob 3 m away
    # neighbours are nearest neighbours: a wide gap does not join two dense blobs 3 m apart
    assert not clicked_pieces(xyz, labels, {1: [0]}, max_gap=3.0)[40:80].any()
    # gap 0 turns the filter off
    assert clicked_pieces(xyz, labels, {1: [0]}, max_gap=0).all()


def test_every_clicked_piece_survives_and_other_labels_are_untouched():
    xyz = np.concatenate([_blob((0, 0, 0)), _blob((5, 0, 0), seed=1), _blob((0, 5, 0), seed=2)])
    labels = np.array([1] * 80 + [2] * 40)
    out = clicked_pieces(xyz, labels, {1: [3, 45]}, max_gap=0.5)
    np.testing.assert_array_equal(out, labels)
    # a label none of whose seeds carries it is left alone (nothing to anchor it)
    out = clicked_pieces(xyz, labels, {1: [90]}, max_gap=0.5)
    np.testing.assert_array_equal(out, labels)


def test_sparse_rings_stay_one_piece():
    """A car 15 m from a 32-beam LiDAR, in 0.1 m voxels: rings 0.25 m apart."""
    ring = np.stack([np.arange(0, 4, 0.1), np.zeros(40), np.zeros(40)], 1)
    xyz = np.concatenate([ring + (0, 0, 0.25 * i) for i in range(5)])
    labels = np.ones(len(xyz), dtype=np.int64)
    assert clicked_pieces(xyz, labels, {1: [0]}, max_gap=1.0).all()
    # a gap shorter than the ring spacing keeps the clicked ring only
    out = clicked_pieces(xyz, labels, {1: [0]}, max_gap=0.2)
    assert out[:40].all() and not out[40:].any()


@pytest.fixture(scope='module')
def segmenters(minkowski):
    from pinpoint3d_core.session import Segmenter
    on = {'focus_half_extent': 0.0, 'object_logit_bias': 0.0}
    return (Segmenter.untrained('small', seed=0, device='cpu', inference=on),
            Segmenter.untrained('small', seed=0, device='cpu',
                                inference=dict(on, component_gap_voxels=0.0)))


def test_session_masks_are_the_clicked_pieces_of_the_raw_masks(segmenters):
    from pinpoint3d_core.session import Click
    room = benchmark_room(6000, seed=1)
    pts = room['points'].astype(np.float64)
    on = [int(np.flatnonzero(room['object_ids'] == k)[0]) for k in (1, 2)]
    clicks = [Click(index=on[0], object_id=1), Click(index=on[1], object_id=2)]
    preds = []
    for seg in segmenters:
        s = seg.start(pts, room['colors'])
        s.add_clicks(clicks)
        preds.append(np.asarray(s.predict('object').object_ids).astype(np.int64))
    filtered, raw = preds
    assert raw.any()
    # the filter only ever removes labels, and removes exactly the unreached pieces
    assert np.all((filtered == raw) | (filtered == 0))
    gap = segmenters[0].inference.component_gap_voxels * segmenters[0].config.voxel_size
    expected = clicked_pieces(pts, raw, {1: [on[0]], 2: [on[1]]}, gap)
    agree = np.mean(expected == filtered)
    assert agree > 0.98, agree    # voxel vs point graphs differ only at the margins


def test_nearest_seed_is_geodesic_bounded_and_last_click_wins():
    line = np.stack([np.arange(0, 3, 0.1), np.zeros(30), np.zeros(30)], 1)
    # a second line 0.3 m beside the first: close in space, but no link reaches across
    xyz = np.concatenate([line, line + (0, 0.3, 0)])
    g = NeighbourGraph(xyz, max_gap=0.15)
    owner = g.nearest_seed([0, 20], radius=0.55)
    assert (owner[:6] == 0).all() and (owner[15:26] == 1).all()
    assert (owner[6:15] == -1).all() and (owner[26:] == -1).all()   # beyond the radius
    assert (owner[30:] == -1).all()                                 # the other line
    # two clicks on one voxel: the later one owns its neighbourhood
    assert (g.nearest_seed([3, 3], radius=0.25)[1:6] == 1).all()
    assert (g.nearest_seed([3], radius=0) == -1).all()


def test_part_clicks_claim_their_neighbourhood_inside_the_object(minkowski):
    from pinpoint3d_core.session import Click, Segmenter
    room = benchmark_room(6000, seed=3)   # untrained seed 0 gives object 1 some voxels
    pts = room['points'].astype(np.float64)
    obj, part = room['object_ids'], room['part_ids']
    with_part = [k for k in np.unique(obj[part > 0]) if k > 0][0]
    on_part = int(np.flatnonzero((obj == with_part) & (part > 0))[0])
    bg = int(np.flatnonzero(obj == 0)[0])
    clicks = [Click(index=on_part, object_id=1, part_id=int(part[on_part])),
              Click(index=bg, positive=False)]
    cfg = get_config('small')
    preds = {}
    for claim in (0.0, 6.0):
        settings = {'focus_half_extent': 0.0, 'click_claim_voxels': claim}
        s = Segmenter.untrained(cfg, seed=0, device='cpu', inference=settings).start(
            pts, room['colors'])
        s.add_clicks(clicks)
        preds[claim] = s.predict('both')
        seeds = [s.voxels.voxel_of_row()[c.index] for c in clicks]
    # object masks are the decoder's (and the connectivity rule's) alone
    np.testing.assert_array_equal(preds[0.0].object_ids, preds[6.0].object_ids)
    # points of the object nearer to the part click than to the negative one, within 6
    # voxel sizes along the links, carry the clicked part
    owner = s.graph.nearest_seed(seeds, 6.0 * cfg.voxel_size)[s.voxels.voxel_of_row()]
    mine = (owner == 0) & (np.asarray(preds[6.0].object_ids) == 1)
    assert mine.sum() >= 5
    clicked_part = np.asarray(preds[6.0].part_ids)[mine]
    assert (clicked_part == part[on_part]).all()
    # untrained weights alone do not: the claim is what labels them
    assert not (np.asarray(preds[0.0].part_ids)[mine] == part[on_part]).all()


def test_benchmark_compare_times_both_sides_of_an_override(minkowski):
    from pinpoint3d_core.benchmarks.model import compare_case
    rows = compare_case(3000, 'small', {'click_claim_voxels': 0.0}, repeats=1, clicks=3)
    assert [r['side'] for r in rows] == ['config', 'override']
    assert all(r['decode_ms_median'] > 0 for r in rows)
