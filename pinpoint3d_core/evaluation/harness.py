"""
Simulated-user evaluation of any segmenter that speaks the session API.

The user first places one click per target at the point deepest inside it, then one corrective
click at a time at the centre of the largest error region (``pinpoint3d_core.clicksim``), until
``max_clicks`` clicks per target have been placed. The segmenter only ever sees point indices,
so the learned model and the baseline are measured by exactly the same loop.

Protocols (one *sample* = one set of targets):

- ``random-part``: a random subset of 2..P parts of one object (seeded per scene and object);
- ``all-part``: all parts of one object;
- ``object``: objects as targets, several per sample (``objects_per_sample``) or one each.
"""

from dataclasses import dataclass
import time
import zlib

import numpy as np

from pinpoint3d_core import clicksim
from pinpoint3d_core.errors import Pinpoint3DError
from pinpoint3d_core.evaluation import metrics
from pinpoint3d_core.interaction import Click, InteractiveSegmenter
from pinpoint3d_core.scene import stuff_ids

PROTOCOLS = ('random-part', 'all-part', 'object')


@dataclass
class EvalSample:
    """One evaluation sample: labels 1..T per point (0 = background) and what they mean."""

    sample_id: str
    scene_name: str
    level: str                 # 'part' or 'object'
    gt: np.ndarray             # (N,) int64, 0..T
    scene_ids: list            # per label 1..T: the scene's part id or object id
    object_id: int = 0         # scene object id of the target object (part level)


def _rng(seed, *keys):
    words = [int(seed) & 0xFFFFFFFF] + [zlib.crc32(str(k).encode()) for k in keys]
    return np.random.default_rng(words)


def make_samples(scene, protocol, scene_name='scene', seed=0, objects_per_sample=0,
                 max_targets=15, min_target_points=10, include_stuff=False):
    """
    Build the samples of one scene for a protocol (deterministic for a seed).

    Stuff objects (room shell, road; ``meta.objects[id].stuff``) are not targets unless
    ``include_stuff``; they stay background in the ground truth.
    """
    if protocol not in PROTOCOLS:
        raise Pinpoint3DError(f'unknown protocol {protocol!r}; use one of {PROTOCOLS}')
    obj_ids = np.asarray(scene.object_ids, dtype=np.int64)
    part_ids = np.asarray(scene.part_ids, dtype=np.int64)
    objects, counts = np.unique(obj_ids[obj_ids > 0], return_counts=True)
    skip = set() if include_stuff else stuff_ids(scene)
    objects = [int(o) for o, c in zip(objects, counts)
               if c >= min_target_points and int(o) not in skip]
    samples = []
    if protocol == 'object':
        if not objects:
            return []
        rng = _rng(seed, scene_name, 'object')
        groups = ([[o] for o in objects] if objects_per_sample == 1 else [objects])
        if objects_per_sample and objects_per_sample > 1:
            order = [int(o) for o in rng.permutation(objects)]
            groups = [sorted(order[i:i + objects_per_sample])
                      for i in range(0, len(order), objects_per_sample)]
        for gi, group in enumerate(groups):
            if len(group) > max_targets:
                group = sorted(int(o) for o in rng.choice(group, max_targets, replace=False))
            gt = np.zeros(len(obj_ids), dtype=np.int64)
            for lab, o in enumerate(group, 1):
                gt[obj_ids == o] = lab
            sid = f'{scene_name}/objects{gi}' if len(groups) > 1 else f'{scene_name}/objects'
            if len(group) == 1:
                sid = f'{scene_name}/obj{group[0]}'
            samples.append(EvalSample(sid, scene_name, 'object', gt, list(group)))
        return samples
    for o in objects:
        inside = obj_ids == o
        parts, pc = np.unique(part_ids[inside & (part_ids > 0)], return_counts=True)
        parts = [int(p) for p, c in zip(parts, pc) if c >= min_target_points]
        if len(parts) < 2:
            continue
        if protocol == 'random-part':
            rng = _rng(seed, scene_name, o)
            n = int(rng.integers(2, len(parts) + 1))
            parts = sorted(int(p) for p in rng.choice(parts, n, replace=False))
        if len(parts) > max_targets:
            continue  # the reference skips samples with more than 15 parts too
        gt = np.zeros(len(obj_ids), dtype=np.int64)
        for lab, p in enumerate(parts, 1):
            gt[inside & (part_ids == p)] = lab
        samples.append(EvalSample(f'{scene_name}/obj{o}', scene_name, 'part', gt, parts, o))
    return samples


def click_domain(coords, gt, voxel):
    """
    One representative point per (voxel, label): clicks are simulated on these (fast).

    Keying by label as well keeps at least one representative for every target, so a small
    part never vanishes from the simulated user's view (the reference aborts such samples).
    """
    if not voxel:
        return np.arange(len(coords))
    keys = np.floor(coords / voxel).astype(np.int64)
    keys = np.concatenate([keys, gt[:, None]], axis=1)
    _, first = np.unique(keys, axis=0, return_index=True)
    return np.sort(first)


def labels_of(pred, sample):
    """Per-point labels 0..T of ``pred`` in the sample's terms (parts of object 1, or objects)."""
    obj = np.asarray(pred.object_ids).astype(np.int64)
    if sample.level == 'object':
        return obj
    part = np.asarray(pred.part_ids).astype(np.int64)
    return np.where(obj == 1, part, 0)


def evaluate_sample(segmenter, coords, colors, intensity, sample, max_clicks=10,
                    click_voxel=0.05, click_type=None, session=None, keep_steps=()):
    """
    Run the simulated user on one sample; returns (curve, timings, kept predictions).

    ``keep_steps`` lists clicks-per-target values whose predicted labels are returned (for
    rendering). A ``session`` already started on these points may be passed to reuse its
    encoding; it is reset first.
    """
    click_type = click_type or Click
    coords = np.asarray(coords, dtype=np.float64)
    gt = sample.gt
    labels = list(range(1, len(sample.scene_ids) + 1))
    t_count = len(labels)
    curve = metrics.SampleCurve(
        sample.sample_id, sample.scene_name, list(sample.scene_ids),
        [int(np.count_nonzero(gt == k)) for k in labels], max_clicks)
    if session is None:
        session = segmenter.start(coords, colors, intensity)
    else:
        session.reset()
    timings = {'encode_ms': float(session.encode_ms), 'decode_ms': []}
    dom = click_domain(coords, gt, click_voxel)
    dom_xyz = coords[dom]
    dom_gt = gt[dom]
    obj_gt = gt > 0
    granularity = 'object' if sample.level == 'object' else 'both'
    kept = {}
    clicked = []

    def make(c):
        if sample.level == 'object':
            return click_type(index=int(dom[c.index]), object_id=c.label, part_id=0,
                              positive=c.positive)
        if c.positive:
            return click_type(index=int(dom[c.index]), object_id=1, part_id=c.label,
                              positive=True)
        return click_type(index=int(dom[c.index]), object_id=0, part_id=0, positive=False)

    first = clicksim.first_clicks(dom_xyz, dom_gt)
    session.add_clicks([make(c) for c in first])
    clicked.extend(c.index for c in first)
    n_clicks = len(first)
    budget = max_clicks * t_count
    while True:
        pred = session.predict(granularity)
        timings['decode_ms'].append(float(pred.decode_ms))
        timings['encode_ms'] += float(pred.encode_ms)  # focus box moved
        lab = labels_of(pred, sample)
        obj_iou = None
        if sample.level == 'part':
            obj_iou = metrics.target_ious(np.asarray(pred.object_ids) == 1, obj_gt, [True])[0]
        curve.add(n_clicks, metrics.target_ious(lab, gt, labels), obj_iou)
        if n_clicks / t_count in keep_steps:
            kept[n_clicks // t_count] = lab
        if n_clicks >= budget:
            break
        nxt = clicksim.next_click(dom_xyz, dom_gt, lab[dom], exclude=clicked)
        if nxt is None:
            # Nothing left to correct: later steps would see the same prediction.
            while n_clicks < budget:
                n_clicks += 1
                curve.add(n_clicks, curve.target_iou[-1],
                          curve.object_iou[-1] if curve.object_iou else None)
                if n_clicks / t_count in keep_steps:
                    kept[n_clicks // t_count] = lab
            break
        session.add_clicks([make(nxt)])
        clicked.append(nxt.index)
        n_clicks += 1
    return curve, timings, kept


def run_evaluation(segmenter: InteractiveSegmenter, scenes, protocol, max_clicks=10, seed=0,
                   limit=None, click_voxel=0.05, objects_per_sample=0, max_targets=15,
                   min_target_points=10, keep_steps=(), on_sample=None, progress=False,
                   include_stuff=False, samples_per_scene=0):
    """
    Evaluate over (name, Scene) pairs; returns (summary, curves, records).

    ``samples_per_scene`` > 0 keeps that many of each scene's samples (a seeded random choice,
    in scene order), so a sample ``limit`` spreads over scenes instead of exhausting the first
    one (the object protocol makes one sample per object).

    ``records`` holds per sample its curve, timings and kept predictions; ``on_sample`` is
    called with (scene, sample, curve, kept) after each sample (rendering hook).
    """
    curves, records = [], []
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=limit, desc=f'evaluate {protocol}', unit='sample', leave=False)
    t0 = time.perf_counter()
    for name, scene in scenes:
        samples = make_samples(scene, protocol, name, seed, objects_per_sample, max_targets,
                               min_target_points, include_stuff)
        if 0 < samples_per_scene < len(samples):
            pick = _rng(seed, name, 'subset').choice(len(samples), samples_per_scene,
                                                     replace=False)
            samples = [samples[i] for i in sorted(pick)]
        session = None
        for sample in samples:
            if limit is not None and len(curves) >= limit:
                break
            if session is None:
                session = segmenter.start(scene.coords, scene.colors, scene.intensity)
            curve, timing, kept = evaluate_sample(
                segmenter, scene.coords, scene.colors, scene.intensity, sample, max_clicks,
                click_voxel, session=session, keep_steps=keep_steps)
            curves.append(curve)
            records.append({'sample': sample, 'curve': curve, 'timing': timing})
            if on_sample is not None:
                on_sample(scene, sample, curve, kept)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(iou1=f'{100 * (curve.iou_at(1) or 0):.1f}')
        if limit is not None and len(curves) >= limit:
            break
    if bar is not None:
        bar.close()
    summary = metrics.summarize(curves)
    dec = [d for r in records for d in r['timing']['decode_ms']]
    enc = [r['timing']['encode_ms'] for r in records]
    summary['mean_encode_ms'] = float(np.mean(enc)) if enc else float('nan')
    summary['mean_decode_ms'] = float(np.mean(dec)) if dec else float('nan')
    summary['wall_s'] = time.perf_counter() - t0
    return summary, curves, records
