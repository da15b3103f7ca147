"""
Training samples: scenes (files or generated on the fly), augmentation, voxel targets.

Every random choice of a sample (which scene, augmentation, which objects/parts are targets,
how many click rounds) is drawn from a generator seeded by (seed, global sample counter), so a
sample does not depend on the worker that built it or on the process history: resuming at step
s reproduces exactly the samples an uninterrupted run would have seen.
"""

from dataclasses import dataclass, replace
import os

import numpy as np
from pinpoint3d_core import clicksim
from pinpoint3d_core.errors import Pinpoint3DError
from pinpoint3d_core.model.voxelize import crop_voxels, focus_box, in_box, voxelize
import torch

LEVELS = ('object', 'part')


@dataclass
class Augment:
    """Augmentation ranges (all off with ``Augment.none()``)."""

    yaw: bool = True              # uniform rotation about z
    scale: float = 0.1            # uniform in [1 - scale, 1 + scale]
    flip: bool = True             # mirror x and y with p = 0.5 each
    color_jitter: float = 0.1     # per-channel gain in [1 - j, 1 + j] and noise sigma j / 5
    # Overall intensity gain, log-uniform in this range: real sensors differ far more than
    # the jitter (KITTI remission mean 0.26, a nuScenes sweep 0.08 after /255, ours 0.29).
    intensity_gain: tuple = (0.25, 1.5)

    @classmethod
    def none(cls):
        """No augmentation (evaluation-like samples)."""
        return cls(False, 0.0, False, 0.0, (1.0, 1.0))


@dataclass
class TrainSample:
    """
    One training sample on the voxel grid.

    ``targets[l - 1]`` is the (object_id, part_id) of label l (part_id 0 = object-level target);
    ``gt`` holds a label in 0..L per voxel (0 = not a target). ``first_clicks`` (cropped
    samples) are the first clicks placed on the whole cloud, re-indexed into the crop: the
    clicks inference would start from, even where the box cuts a target.
    """

    name: str
    cloud: object           # model.voxelize.VoxelizedCloud
    level: str              # 'object' or 'part'
    targets: list
    gt: np.ndarray
    seed: int
    first_clicks: list = None


def augment_scene(scene, rng, aug):
    """Return augmented (coords float32, colors uint8 or None, intensity or None)."""
    xyz = np.asarray(scene.coords, dtype=np.float64)
    centre = np.nanmean(xyz, axis=0)
    xyz = xyz - centre
    if aug.flip:
        if rng.random() < 0.5:
            xyz[:, 0] = -xyz[:, 0]
        if rng.random() < 0.5:
            xyz[:, 1] = -xyz[:, 1]
    if aug.yaw:
        a = rng.uniform(-np.pi, np.pi)
        c, s = np.cos(a), np.sin(a)
        xyz = xyz @ np.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]])
    if aug.scale:
        xyz = xyz * rng.uniform(1.0 - aug.scale, 1.0 + aug.scale)
    xyz = xyz + centre
    colors, intensity = scene.colors, scene.intensity
    if aug.color_jitter and colors is not None:
        gain = rng.uniform(1 - aug.color_jitter, 1 + aug.color_jitter, size=3)
        noise = rng.normal(0.0, 255.0 * aug.color_jitter / 5, size=colors.shape)
        colors = np.clip(colors * gain + noise, 0, 255).astype(np.uint8)
    if aug.color_jitter and intensity is not None:
        gain = rng.uniform(1 - aug.color_jitter, 1 + aug.color_jitter)
        noise = rng.normal(0.0, aug.color_jitter / 5, size=intensity.shape)
        intensity = np.clip(intensity * gain + noise, 0.0, 1.0).astype(np.float32)
    lo, hi = aug.intensity_gain
    if intensity is not None and (lo, hi) != (1.0, 1.0):
        gain = np.exp(rng.uniform(np.log(lo), np.log(hi)))
        intensity = np.clip(intensity * gain, 0.0, 1.0).astype(np.float32)
    return xyz.astype(np.float32), colors, intensity


def voxel_labels(cloud, values):
    """Per-voxel value of each voxel's representative (first) input row."""
    if getattr(cloud, 'rep_rows', None) is not None:
        return np.asarray(values)[cloud.rep_rows]
    first = np.empty(cloud.num_voxels, dtype=np.int64)
    m = len(cloud.inverse)
    first[cloud.inverse[::-1]] = np.arange(m - 1, -1, -1)
    return np.asarray(values)[cloud.valid_rows[first]]


def sample_targets(obj, part, level, rng, max_objects=6, max_part_objects=2, min_voxels=3,
                   exclude=()):
    """
    Choose the targets of one sample; returns (level, targets, gt) on the voxel grid.

    Object level: 1..max_objects random objects. Part level: 1..max_part_objects objects with
    at least two parts, each with a random subset of >= 2 of its parts (real objects; the
    reference instead merges random parts of several objects into one pseudo-object). Falls back
    to object level when no object has two parts. Objects in ``exclude`` (stuff: floor,
    walls, road) are never targets.
    """
    ids, counts = np.unique(obj[obj > 0], return_counts=True)
    objects = [int(o) for o, c in zip(ids, counts)
               if c >= min_voxels and int(o) not in set(exclude)]
    if level == 'part':
        with_parts = {}
        for o in objects:
            p_ids, p_counts = np.unique(part[(obj == o) & (part > 0)], return_counts=True)
            ps = [int(p) for p, c in zip(p_ids, p_counts) if c >= min_voxels]
            if len(ps) >= 2:
                with_parts[o] = ps
        if with_parts:
            keys = sorted(with_parts)
            n = int(rng.integers(1, min(max_part_objects, len(keys)) + 1))
            chosen = sorted(int(o) for o in rng.choice(keys, n, replace=False))
            targets = []
            for o in chosen:
                ps = with_parts[o]
                k = int(rng.integers(2, len(ps) + 1))
                targets += [(o, int(p)) for p in sorted(rng.choice(ps, k, replace=False))]
            gt = np.zeros(len(obj), dtype=np.int64)
            for lab, (o, p) in enumerate(targets, 1):
                gt[(obj == o) & (part == p)] = lab
            return 'part', targets, gt
    if not objects:
        return 'object', [], np.zeros(len(obj), dtype=np.int64)
    n = int(rng.integers(1, min(max_objects, len(objects)) + 1))
    chosen = sorted(int(o) for o in rng.choice(objects, n, replace=False))
    gt = np.zeros(len(obj), dtype=np.int64)
    for lab, o in enumerate(chosen, 1):
        gt[obj == o] = lab
    return 'object', [(o, 0) for o in chosen], gt


class TrainingDataset(torch.utils.data.Dataset):
    """
    Map-style dataset indexed by the global sample counter (unbounded on the fly).

    ``scenes`` is a list of scene files, or None to generate scenes with
    ``pinpoint3d_core.synth.generate_scene(kind, seed)``, cycling through ``kinds``.
    """

    def __init__(self, scenes=None, kinds=('indoor',), voxel_size=0.05, stage='joint',
                 seed=0, augment=None, max_objects=6, max_part_objects=2, part_prob=0.5,
                 scene_size='small', min_target_voxels=3, focus_crop=0.0):
        if stage not in ('object', 'part', 'joint'):
            raise Pinpoint3DError(f'unknown stage {stage!r}; use object, part or joint')
        self.files = list(scenes) if scenes is not None else None
        if self.files is not None and not self.files:
            raise Pinpoint3DError('no training scenes: pass --scenes DIR with .npz files '
                                  'or use --on-the-fly')
        self.kinds = tuple(kinds)
        self.voxel_size = float(voxel_size)
        self.stage = stage
        self.seed = int(seed)
        self.augment = augment if augment is not None else Augment()
        self.max_objects = max_objects
        self.max_part_objects = max_part_objects
        self.part_prob = part_prob
        self.scene_size = scene_size
        self.min_target_voxels = min_target_voxels
        self.focus_crop = float(focus_crop or 0.0)

    def __len__(self):
        """Nominal length; indices beyond it are valid too (the counter is unbounded)."""
        return 2 ** 62

    def _scene(self, counter, rng):
        if self.files is None:
            kind = self.kinds[counter % len(self.kinds)]
            seed = (self.seed * 1_000_003 + counter) % (2 ** 31)
            if kind == 'toy':
                from pinpoint3d_core.toyscenes import toy_scene
                return f'toy-{seed}', toy_scene(seed)
            from pinpoint3d_core.synth import generate_scene
            if kind == 'indoor':
                return f'{kind}-{seed}', generate_scene(kind, seed, size=self.scene_size)
            return f'{kind}-{seed}', generate_scene(kind, seed)
        from pinpoint3d_core.scene import read_any
        n = len(self.files)
        epoch = counter // n
        perm = np.random.default_rng([self.seed, epoch, 7]).permutation(n)
        path = self.files[perm[counter % n]]
        return os.path.splitext(os.path.basename(path))[0], read_any(path)

    def __getitem__(self, counter):
        """Build the sample of one global counter value."""
        counter = int(counter)
        rng = np.random.default_rng([self.seed, counter])
        name, scene = self._scene(counter, rng)
        xyz, colors, intensity = augment_scene(scene, rng, self.augment)
        cloud = voxelize(xyz, colors, intensity, self.voxel_size)
        obj = voxel_labels(cloud, scene.object_ids)
        part = voxel_labels(cloud, scene.part_ids)
        if self.stage == 'object':
            level = 'object'
        elif self.stage == 'part':
            level = 'part'
        else:
            level = 'part' if rng.random() < self.part_prob else 'object'
        from pinpoint3d_core.scene import stuff_ids
        level, targets, gt = sample_targets(obj, part, level, rng, self.max_objects,
                                            self.max_part_objects, self.min_target_voxels,
                                            exclude=stuff_ids(scene))
        first = None
        if self.focus_crop > 0 and targets:
            cloud, gt, first = focus_crop(cloud, gt, self.focus_crop)
        return TrainSample(name, cloud, level, targets, gt, int(rng.integers(2 ** 31)), first)


def focus_crop(cloud, gt, half_extent):
    """
    Crop a sample to the box a Session would encode for its first clicks.

    Training then sees what inference sees with ``focus_half_extent``: the first click of
    every target (the same deterministic clicks the click simulation places) grown by
    ``half_extent``. Returns (cropped cloud, cropped gt, those first clicks re-indexed into
    the crop); every target keeps at least its first-click voxel.
    """
    first = clicksim.first_clicks(cloud.xyz, gt)
    lo, hi = focus_box(cloud.xyz[[c.index for c in first]], half_extent, cloud.xyz)
    keep = in_box(cloud.xyz, lo, hi)
    new_index = np.cumsum(keep) - 1
    first = [replace(c, index=int(new_index[c.index])) for c in first]
    return crop_voxels(cloud, keep), np.asarray(gt)[keep], first


class StepSampler(torch.utils.data.Sampler):
    """Counters for steps [start, steps): rank r of W takes slots r*B..r*B+B-1 of each step."""

    def __init__(self, batch_size, steps, start=0, rank=0, world=1):
        self.batch_size = batch_size
        self.steps = steps
        self.start = start
        self.rank = rank
        self.world = world

    def __iter__(self):
        """Yield the global counters in step order."""
        b = self.batch_size
        for s in range(self.start, self.steps):
            base = (s * self.world + self.rank) * b
            yield from range(base, base + b)

    def __len__(self):
        """Return the number of counters yielded."""
        return max(0, self.steps - self.start) * self.batch_size


def collate(samples):
    """Keep samples as a list (clouds have different sizes)."""
    return list(samples)


def make_loader(dataset, batch_size, steps, start=0, rank=0, world=1, workers=1):
    """Build a DataLoader yielding one list of samples per step, in step order."""
    sampler = StepSampler(batch_size, steps, start, rank, world)
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, sampler=sampler, num_workers=workers,
        collate_fn=collate, persistent_workers=False,
        prefetch_factor=2 if workers > 0 else None)
