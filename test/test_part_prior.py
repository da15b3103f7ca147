"""The geodesic part prior: one click per part splits an object where the decoder is unsure."""

import numpy as np
from pinpoint3d_core.inference import rules
from pinpoint3d_core.inference.graph import NeighbourGraph
from pinpoint3d_core.inference.view import ViewClick, ViewLabels
from pinpoint3d_core.model.config import get_config
from pinpoint3d_core.toyscenes import benchmark_room
import pytest
import torch

VOXEL = 0.05


def _chain(n=21):
    """Voxels on a line, one voxel size apart: geodesic distance = index difference."""
    xyz = np.stack([np.arange(n) * VOXEL, np.zeros(n), np.zeros(n)], 1)
    return NeighbourGraph(xyz, 1.5 * VOXEL)


def _choice(logits, clicks, tau=1.0):
    """Part columns of one object (part ids 10, 20, ...) from clicks {column: [voxels]}."""
    logits = torch.as_tensor(logits, dtype=torch.float32)
    part_ids = [10 * (j + 1) for j in range(logits.shape[1] - 1)]
    vclicks = [ViewClick(v, 1, part_ids[j - 1] if j else 0, True)
               for j, voxels in sorted(clicks.items()) for v in voxels]
    view = ViewLabels(vclicks, _chain(len(logits)), VOXEL, [1], torch.zeros(len(logits), 2),
                      {1: part_ids}, {1: logits})
    if tau > 0:
        rules.part_prior(view, temperature_voxels=tau)
    else:
        rules.argmax_parts(view)
    return view.part_labels[1].numpy()


def test_seed_distance_is_geodesic_and_bounded():
    d = _chain().seed_distance([0, 20], 5.5 * VOXEL) / VOXEL
    np.testing.assert_allclose(d[:6], np.arange(6))
    np.testing.assert_allclose(d[15:], np.arange(5, -1, -1))
    assert np.isinf(d[6:15]).all()


def test_unsure_decoder_follows_the_nearest_part_click(minkowski):
    logits = np.zeros((21, 3))                 # column 0 = object, no part; 1, 2 = parts
    logits[:, 0] = -5.0                        # sure it is a part, unsure which
    out = _choice(logits, {1: [2], 2: [15]})
    assert (out[:8] == 1).all() and (out[9:] == 2).all()   # 8 sits on the boundary
    # without the prior an even decoder picks its first part column everywhere
    assert (_choice(logits, {1: [2], 2: [15]}, tau=0.0) == 1).all()


def test_confident_decoder_keeps_its_answer(minkowski):
    logits = np.zeros((21, 3))
    logits[:, 2] = 30.0                        # far above any prior within the reach
    out = _choice(logits, {1: [2], 2: [15]})
    assert (out == 2).all()
    # a column without clicks is not pulled down: it wins where the decoder says so
    logits = np.zeros((21, 3))
    logits[:, 0] = -5.0
    logits[10:, 0] = 5.0
    out = _choice(logits, {1: [2], 2: [15]})
    assert (out[10:] == 0).all() and (out[:8] == 1).all()


def test_one_clicked_part_changes_nothing(minkowski):
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(21, 3))
    np.testing.assert_array_equal(_choice(logits, {1: [2]}), logits.argmax(1))


@pytest.fixture(scope='module')
def object_with_two_parts():
    room = benchmark_room(6000, seed=3)
    obj, part = room['object_ids'], room['part_ids']
    for k in np.unique(obj[part > 0]):
        parts = np.unique(part[(obj == k) & (part > 0)])
        if k > 0 and len(parts) >= 2:
            break
    rows = [int(np.flatnonzero((obj == k) & (part == p))[0]) for p in parts[:2]]
    # a third, object-level click (no part) on the object's point farthest from the two
    far = np.flatnonzero(obj == k)
    gap = np.linalg.norm(room['points'][far][:, None] - room['points'][rows][None], axis=2)
    rows.append(int(far[gap.min(1).argmax()]))
    return room, rows, [int(part[r]) for r in rows[:2]] + [0]


def test_session_parts_follow_the_prior_and_objects_do_not_move(
        minkowski, object_with_two_parts):
    from pinpoint3d_core.session import Click, Segmenter
    room, rows, part_ids = object_with_two_parts
    pts = room['points'].astype(np.float64)
    clicks = [Click(index=r, object_id=1, part_id=p) for r, p in zip(rows, part_ids)]
    cfg = get_config('small')
    preds = {}
    for tau in (0.0, 1e-3):
        settings = {'focus_half_extent': 0.0, 'click_claim_voxels': 0.0,
                    'part_prior_voxels': tau}
        s = Segmenter.untrained(cfg, seed=0, device='cpu', inference=settings).start(
            pts, room['colors'])
        s.add_clicks(clicks)
        preds[tau] = s.predict('both')
    np.testing.assert_array_equal(preds[0.0].object_ids, preds[1e-3].object_ids)
    # With a near-zero temperature the prior decides: inside the object's mask and within
    # the reach of one, every point carries the label of its geodesically nearest click (all three
    # columns, the object's no-part column included, carry a click here).
    vrow = s.voxels.voxel_of_row()
    graph, limit = s.graph, rules.PART_PRIOR_REACH_VOXELS * cfg.voxel_size
    d = np.stack([graph.seed_distance([vrow[r]], limit) for r in rows])[:, vrow]
    ordered = np.sort(np.minimum(d, 1e9), axis=0)
    mine = (np.asarray(preds[1e-3].object_ids) == 1) & np.isfinite(ordered[0]) & (
        ordered[1] - ordered[0] > cfg.voxel_size)
    print(f'{mine.sum()} points decided by the prior, labels {np.unique(part_ids)}')
    assert mine.sum() >= 10
    want = np.asarray(part_ids)[d.argmin(0)][mine]
    assert len(np.unique(want)) >= 2
    np.testing.assert_array_equal(np.asarray(preds[1e-3].part_ids)[mine], want)
    # the untrained decoder alone does not split the object that way
    assert not (np.asarray(preds[0.0].part_ids)[mine] == want).all()
