"""Training samples: target sampling, determinism per counter, step sampler."""

import numpy as np
from pinpoint3d_core.training.data import (Augment, sample_targets, StepSampler,
                                           TrainingDataset)


def test_sample_targets_levels_and_exclusion():
    obj = np.array([0] * 5 + [1] * 10 + [2] * 10 + [3] * 10)
    part = np.array([0] * 5 + [1] * 5 + [2] * 5 + [0] * 10 + [3] * 4 + [4] * 6)
    rng = np.random.default_rng(0)
    for _ in range(20):
        level, targets, gt = sample_targets(obj, part, 'part', rng, max_part_objects=2)
        assert level == 'part'
        objs = {o for o, _ in targets}
        assert objs <= {1, 3} and all(p > 0 for _, p in targets)
        for o in objs:
            assert sum(1 for oo, _ in targets if oo == o) >= 2
        for lab, (o, p) in enumerate(targets, 1):
            assert np.array_equal(gt == lab, (obj == o) & (part == p))
    level, targets, _ = sample_targets(obj, part, 'object', rng, max_objects=6, exclude={2})
    assert level == 'object' and all(o != 2 and p == 0 for o, p in targets)
    # No object with two parts: part level falls back to object level.
    level, _, _ = sample_targets(obj, np.zeros_like(part), 'part', rng)
    assert level == 'object'


def test_dataset_sample_depends_only_on_counter():
    ds = TrainingDataset(None, kinds=('toy',), stage='joint', seed=5, augment=Augment())
    a, b, c = ds[3], ds[3], ds[4]
    assert a.targets == b.targets and np.array_equal(a.gt, b.gt)
    assert np.array_equal(a.cloud.xyz, b.cloud.xyz) and a.seed == b.seed
    assert not np.array_equal(a.cloud.xyz, c.cloud.xyz)
    assert a.gt.shape == (a.cloud.num_voxels,) and a.gt.max() == len(a.targets)


def test_step_sampler_splits_steps_between_ranks():
    r0 = list(StepSampler(2, steps=3, start=1, rank=0, world=2))
    r1 = list(StepSampler(2, steps=3, start=1, rank=1, world=2))
    assert r0 == [4, 5, 8, 9] and r1 == [6, 7, 10, 11]
    assert len(StepSampler(2, steps=3, start=1)) == 4


def test_focus_crop_matches_the_sessions_box():
    from pinpoint3d_core import clicksim
    full = TrainingDataset(None, kinds=('toy',), stage='object', seed=5, augment=Augment())
    crop = TrainingDataset(None, kinds=('toy',), stage='object', seed=5, augment=Augment(),
                           focus_crop=0.3)
    a, b = full[2], crop[2]
    assert a.targets == b.targets and a.seed == b.seed
    assert 0 < b.cloud.num_voxels < a.cloud.num_voxels
    assert b.gt.shape == (b.cloud.num_voxels,)
    first = clicksim.first_clicks(a.cloud.xyz, a.gt)
    pos = a.cloud.xyz[[c.index for c in first]]
    lo, hi = pos.min(0) - 0.3, pos.max(0) + 0.3
    inside = np.all((a.cloud.xyz >= lo) & (a.cloud.xyz <= hi), axis=1)
    assert np.array_equal(b.cloud.xyz, a.cloud.xyz[inside])
    assert np.array_equal(b.gt, a.gt[inside])
    # Every target keeps its deepest voxel, so the click simulation still finds it.
    assert set(np.unique(b.gt[b.gt > 0])) == set(range(1, len(b.targets) + 1))
    # The crop carries the whole-cloud first clicks (inference's), re-indexed into it.
    assert a.first_clicks is None and len(b.first_clicks) == len(first)
    np.testing.assert_array_equal(b.cloud.xyz[[c.index for c in b.first_clicks]], pos)
    assert [c.label for c in b.first_clicks] == [c.label for c in first]
    assert all(b.gt[c.index] == c.label for c in b.first_clicks)


def test_intensity_gain_reaches_dim_sensors():
    from pinpoint3d_core.scene import Scene
    from pinpoint3d_core.training.data import augment_scene
    rng = np.random.default_rng(0)
    pts = rng.uniform(0, 5, (500, 3)).astype(np.float32)
    inten = np.full(500, 0.4, dtype=np.float32)
    scene = Scene(pts, None, inten, np.zeros(500, np.int32), np.zeros(500, np.int32), {})
    fixed = Augment(yaw=False, scale=0.0, flip=False, color_jitter=0.0,
                    intensity_gain=(0.25, 0.25))
    _, _, out = augment_scene(scene, rng, fixed)
    assert np.allclose(out, 0.1)
    means = [augment_scene(scene, np.random.default_rng(k), Augment())[2].mean()
             for k in range(40)]
    assert min(means) < 0.15 and max(means) > 0.45   # nuScenes-dim to brighter than ours
    _, _, same = augment_scene(scene, rng, Augment.none())
    assert np.array_equal(same, inten)


def test_click_simulation_starts_from_the_samples_first_clicks(minkowski):
    from dataclasses import replace
    import torch
    from pinpoint3d_core.model.config import get_config
    from pinpoint3d_core.model.pinpoint3d import PinPoint3D
    from pinpoint3d_core.training.trainer import simulate_clicks
    sample = TrainingDataset(None, kinds=('toy',), stage='object', seed=5, augment=Augment(),
                             focus_crop=0.3)[2]
    # move every first click to another voxel of its target: the simulation must follow
    moved = []
    for c in sample.first_clicks:
        other = np.flatnonzero(sample.gt == c.label)
        moved.append(replace(c, index=int(other[other != c.index][0])))
    sample = replace(sample, first_clicks=moved)
    torch.manual_seed(0)
    model = PinPoint3D(get_config('small')).eval()
    with torch.no_grad():
        enc = model.encode([sample.cloud])[0]
    clicks = simulate_clicks(model, enc, sample, max_rounds=1, granularity='object')
    assert sorted(c.voxel for c in clicks) == sorted(c.index for c in moved)
