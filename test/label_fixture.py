"""
Fixed predictions of the shipped weights, for the bit-identity test of the inference code.

``record`` runs the simulated user (the harness's own click rule) for a few clicks on a fixed
set of scenes and returns a digest of every label array the session produced; the test compares
a fresh run with the digests stored in ``test/data/expected_labels.json``. Each scene's own
digest is stored too, so a changed scene reads as "the scene changed", not "the model". The
synthetic scenes are stored in ``test/data/fixture_scenes`` (``--write-scenes`` regenerates
them). Regenerate the digests (only when a change of labels is intended and measured):
``python test/label_fixture.py --write``.
"""

import argparse
import hashlib
import json
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
EXPECTED = os.path.join(HERE, 'data', 'expected_labels.json')
SCENES = os.path.join(HERE, 'data', 'fixture_scenes')
CLICKS_PER_TARGET = 3
# (preset weights file, scene source, protocol). Synthetic scenes are the model card's seeds.
CASES = (
    ('pinpoint3d_small.pt', 'indoor:900000', 'all-part'),
    ('pinpoint3d_small.pt', 'indoor:900000', 'all-part', {'click_claim_voxels': 3.0}),
    ('pinpoint3d_small.pt', 'indoor:900000', 'all-part', {'object_logit_bias': 6.0}),
    ('pinpoint3d_small.pt', 'indoor:900000', 'all-part', {'component_gap_voxels': 0.0}),
    ('pinpoint3d_small.pt', 'indoor:900000', 'object'),
    ('pinpoint3d_small.pt', 'indoor:900001', 'all-part'),
    ('pinpoint3d_small_lidar.pt', 'lidar:900000', 'all-part'),
    ('pinpoint3d_small_lidar.pt', 'lidar:900000', 'object'),
    ('pinpoint3d_small_lidar.pt', 'real:kitti_000008', 'object'),
    ('pinpoint3d_small_lidar.pt', 'real:nuscenes_sweep', 'object'),
)


def digest(*arrays):
    """Return a short sha256 of the arrays' bytes (dtype and shape included)."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f'{a.dtype.str}{a.shape}'.encode())
        h.update(a.tobytes())
    return h.hexdigest()[:20]


def scene_file(source):
    """Return the stored scene file of a synthetic ``kind:seed`` source."""
    return os.path.join(SCENES, source.replace(':', '_') + '.npz')


def generate_case_scene(source):
    """Return the generator's scene of a ``kind:seed`` source on a 10 um grid."""
    from pinpoint3d_core.synth import generate_scene
    kind, _, name = source.partition(':')
    scene = generate_scene(kind=kind, seed=int(name))
    scene.coords = np.round(scene.coords.astype(np.float64), 5).astype(np.float32)
    return scene


def load_case_scene(source):
    """Return the Scene named by ``kind:seed`` (stored) or ``real:name`` (shared data)."""
    from pinpoint3d_core.scene import load_scene, real_data_dir
    kind, _, name = source.partition(':')
    if kind == 'real':
        return load_scene(os.path.join(real_data_dir(), name + '.npz'))
    # Stored, not generated: the generator's ray casting (open3d / Embree) picks different
    # kernels on different CPUs, and the same seed gave a slightly different scene on an
    # AMD EPYC than on the Xeon that first recorded the digests.
    return load_scene(scene_file(source))


def write_scenes(cases=CASES):
    """Generate and store the synthetic scenes of ``cases`` (once; they are then fixed)."""
    from pinpoint3d_core.scene import save_scene
    os.makedirs(SCENES, exist_ok=True)
    for source in sorted({c[1] for c in cases if not c[1].startswith('real:')}):
        print('wrote', save_scene(scene_file(source), generate_case_scene(source)))


def run_case(segmenter, scene, protocol, clicks_per_target=CLICKS_PER_TARGET):
    """Digests of the labels after each simulated click of the first sample of a protocol."""
    from pinpoint3d_core import clicksim
    from pinpoint3d_core.evaluation import harness
    samples = harness.make_samples(scene, protocol, 'fixture', seed=0)
    sample = samples[0]
    session = segmenter.start(scene.coords, scene.colors, scene.intensity)
    dom = harness.click_domain(np.asarray(scene.coords, np.float64), sample.gt, 0.05)
    dom_xyz = np.asarray(scene.coords, np.float64)[dom]
    dom_gt = sample.gt[dom]
    from pinpoint3d_core.interaction import Click as click

    def make(c):
        if sample.level == 'object':
            return click(index=int(dom[c.index]), object_id=c.label, positive=c.positive)
        if c.positive:
            return click(index=int(dom[c.index]), object_id=1, part_id=c.label)
        return click(index=int(dom[c.index]), object_id=0, positive=False)

    granularity = 'object' if sample.level == 'object' else 'both'
    first = clicksim.first_clicks(dom_xyz, dom_gt)
    session.add_clicks([make(c) for c in first])
    clicked = [c.index for c in first]
    out = []
    budget = clicks_per_target * len(sample.scene_ids)
    while True:
        pred = session.predict(granularity)
        out.append(digest(pred.object_ids, pred.part_ids))
        lab = harness.labels_of(pred, sample)
        if len(clicked) >= budget:
            break
        nxt = clicksim.next_click(dom_xyz, dom_gt, lab[dom], exclude=clicked)
        if nxt is None:
            break
        session.add_clicks([make(nxt)])
        clicked.append(nxt.index)
    return {'sample': sample.sample_id, 'targets': len(sample.scene_ids), 'steps': out}


def record(cases=CASES):
    """Return {case key: {'scene': digest, 'sample', 'targets', 'steps': [digest, ...]}}."""
    from pinpoint3d_core.inference.config import default_inference
    from pinpoint3d_core.model.checkpoint import default_checkpoint_path
    from pinpoint3d_core.session import Segmenter
    weights_dir = os.path.dirname(str(default_checkpoint_path()))
    loaded, scenes, result = {}, {}, {}
    for weights, source, protocol, *settings in cases:
        settings = settings[0] if settings else {}
        path = os.path.join(weights_dir, weights)
        if weights not in loaded:
            # The click decoder's own path with its config's defaults, whatever inference
            # the weights file ships with (the preset tests cover that one).
            name = Segmenter.load(path, device='cpu').config.name
            loaded[weights] = (name, Segmenter.load(path, device='cpu',
                                                    inference=default_inference(name)))
        if source not in scenes:
            scenes[source] = load_case_scene(source)
        scene = scenes[source]
        name, segmenter = loaded[weights]
        if settings:
            segmenter = Segmenter.load(path, device='cpu',
                                       inference=default_inference(name).replace(**settings))
        entry = run_case(segmenter, scene, protocol)
        entry['scene'] = digest(scene.coords, scene.object_ids, scene.part_ids)
        label = ','.join(f'{k}={v}' for k, v in sorted(settings.items()))
        result[f'{weights}|{source}|{protocol}|{label}'] = entry
    return result


def main():
    """Print (or with --write store) the digests of the current code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument('--write', action='store_true', help=f'store them in {EXPECTED}')
    parser.add_argument('--write-scenes', action='store_true',
                        help=f'regenerate the synthetic scenes in {SCENES} first')
    args = parser.parse_args()
    if args.write_scenes:
        write_scenes()
    result = record()
    text = json.dumps(result, indent=1, sort_keys=True)
    if args.write:
        with open(EXPECTED, 'w') as f:
            f.write(text + '\n')
    print(text)


if __name__ == '__main__':
    main()
