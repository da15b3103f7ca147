"""The evaluation harness end to end with the baseline on tiny synthetic scenes."""

import json
import os

import numpy as np

from pinpoint3d_core.cli import main
from pinpoint3d_core.evaluation import harness
from pinpoint3d_core.evaluation.baseline import GraphBaselineSegmenter
from pinpoint3d_core.scene import save_scene
from pinpoint3d_core.toyscenes import toy_scene


def test_samples_per_protocol_are_deterministic():
    scene = toy_scene(3)
    a = harness.make_samples(scene, 'random-part', 'toy3', seed=1)
    b = harness.make_samples(scene, 'random-part', 'toy3', seed=1)
    assert [s.scene_ids for s in a] == [s.scene_ids for s in b]
    assert all(len(s.scene_ids) >= 2 for s in a)
    full = harness.make_samples(scene, 'all-part', 'toy3')
    for s in full:
        parts = np.unique(scene.part_ids[scene.object_ids == s.object_id])
        assert s.scene_ids == [int(p) for p in parts if p > 0]
    objs = harness.make_samples(scene, 'object', 'toy3')
    assert len(objs) == 1 and objs[0].scene_ids == [1, 2, 3]
    assert len(harness.make_samples(scene, 'object', 'toy3', objects_per_sample=1)) == 3


def test_baseline_runs_every_protocol_with_click_budget():
    scenes = [('toy0', toy_scene(0)), ('toy1', toy_scene(1))]
    for protocol in harness.PROTOCOLS:
        summary, curves, _ = harness.run_evaluation(GraphBaselineSegmenter(), scenes, protocol,
                                                    max_clicks=3, limit=3)
        assert 1 <= summary['samples'] <= 3
        for c in curves:
            assert c.clicks[0] == c.num_targets
            assert c.clicks[-1] == 3 * c.num_targets
        assert 0 < summary['IoU@1'] <= 100
        assert 1 <= summary['NoC@50'] <= 3
    assert summary['IoU@1'] > 60   # objects are well separated: one click each is enough


def test_samples_per_scene_spreads_a_limit_over_scenes():
    scenes = [(f'toy{i}', toy_scene(i)) for i in range(3)]
    seg = GraphBaselineSegmenter()

    def ids(**kw):
        _, curves, _ = harness.run_evaluation(seg, scenes, 'object', max_clicks=1,
                                              objects_per_sample=1, **kw)
        return [c.sample_id for c in curves]

    assert {i.split('/')[0] for i in ids(limit=3)} == {'toy0'}      # the first scene only
    spread = ids(limit=3, samples_per_scene=1)
    assert [i.split('/')[0] for i in spread] == ['toy0', 'toy1', 'toy2']
    assert spread == ids(limit=3, samples_per_scene=1)               # seeded
    assert len(ids(samples_per_scene=2)) == 6


def test_cli_writes_json_csv_and_png(tmp_path):
    for i in range(2):
        save_scene(tmp_path / f'toy{i}.npz', toy_scene(i))
    out = tmp_path / 'eval'
    rc = main(['evaluate', '--scenes', str(tmp_path), '--protocol', 'all-part',
               '--model', 'baseline', '--max-clicks', '3', '--out', str(out), '--png',
               '--png-limit', '1', '--limit', '2'])
    assert rc == 0
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['summary']['samples'] == 2
    rows = (out / 'per_target.csv').read_text().splitlines()
    assert rows[0].startswith('sample,scene,level') and len(rows) > 2
    assert len(os.listdir(out / 'png')) == 1
    lines = (out / 'curves.csv').read_text().split('\n')
    assert len(lines[0].split()) == 5
