"""The demo end to end (`make demo` body): player, node and planner as separate processes."""

import json
import os
import subprocess

import numpy as np
from pinpoint3d_core.scene import write_labelled_ply
from pinpoint3d_ros import demo_planner
from pinpoint3d_ros.testing import fresh_domain_id, ros_env
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_iou_and_target_choice():
    a = np.array([1, 1, 0, 0], bool)
    b = np.array([1, 0, 1, 0], bool)
    assert demo_planner.iou(a, b) == pytest.approx(1 / 3)
    assert demo_planner.iou(a & False, b & False) == 0.0
    scene = type('S', (), {})()
    scene.object_ids = np.array([1, 1, 1, 2, 2, 3, 3, 3, 3, 3, 4, 4, 4, 4, 4, 4])
    scene.part_ids = np.array([0, 5, 6, 7, 0, 0, 0, 0, 0, 0, 8, 8, 9, 9, 9, 9])
    scene.coords = np.zeros((16, 3))
    scene.coords[10:, 0] = np.arange(6) * 10.0   # object 4: 50 m long, a building
    scene.meta = {'objects': {'3': {'stuff': True}}}
    assert demo_planner.pick_target(scene) == (1, [5, 6])   # 2-4 parts, small, not stuff
    pts = np.array([[0, 0, 0], [1, 0, 0], [2, 0, 0], [9, 9, 9]], float)
    assert demo_planner.interior_point(pts, np.array([1, 1, 1, 0], bool)) == 1


def test_ply_is_readable(tmp_path):
    o3d = pytest.importorskip('open3d')
    pts = np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32)
    colors = np.full((50, 3), 200, np.uint8)
    ids = np.arange(50, dtype=np.uint32)
    path = str(tmp_path / 'seg.ply')
    write_labelled_ply(path, pts, colors, ids, ids % 3)
    cloud = o3d.io.read_point_cloud(path)
    np.testing.assert_allclose(np.asarray(cloud.points), pts, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(cloud.colors), 200 / 255.0, rtol=1e-6)
    with open(path, 'rb') as f:
        header = f.read(400).split(b'end_header\n')[0].decode()
    assert 'property uint object_id' in header and 'property uint part_id' in header


def test_demo_script_runs_and_writes_results(tmp_path):
    env = ros_env(fresh_domain_id())
    env.update(DEMO_OUT=str(tmp_path), DEMO_SIZE='small', DEMO_TIMEOUT='150')
    proc = subprocess.run(['bash', os.path.join(ROOT, 'tools', 'demo.sh')], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=240)
    out = proc.stdout.decode(errors='replace')
    assert proc.returncode == 0, out[-3000:]
    for name in ('segmentation.ply', 'segmentation.png', 'summary.json'):
        assert os.path.getsize(tmp_path / name) > 0, name
        assert str(tmp_path / name) in out   # the script says where its results are
    with open(tmp_path / 'summary.json') as f:
        summary = json.load(f)
    assert 0.0 <= summary['object_iou'] <= 1.0
    assert summary['target']['parts'] == len(summary['part_iou']) >= 1
    assert len(summary['steps']) == 1 + summary['target']['parts'] and not summary['failed']
    assert all(step['round_trip_ms'] > 0 for step in summary['steps'])
    if 'UNTRAINED' in summary['weights']:
        assert 'UNTRAINED' in out


def test_tabletop_demo_plays_a_camera_frame_scene_and_boxes_the_pick(tmp_path):
    env = ros_env(fresh_domain_id())
    env.update(DEMO_OUT=str(tmp_path), DEMO_TIMEOUT='150')
    proc = subprocess.run(['bash', os.path.join(ROOT, 'tools', 'demo.sh'), '--sensor', 'tabletop',
                           '--size', 'small'], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=240)
    out = proc.stdout.decode(errors='replace')
    assert proc.returncode == 0, out[-3000:]
    for name in ('segmentation.ply', 'segmentation.png', 'summary.json'):
        assert os.path.getsize(tmp_path / name) > 0, name
        assert str(tmp_path / name) in out
    with open(tmp_path / 'summary.json') as f:
        summary = json.load(f)
    assert summary['frame'].startswith('camera optical frame')
    assert summary['target']['parts'] >= 1 and not summary['failed']   # a mug or a bottle
    box, truth = summary['box'], summary['ground_truth_box']
    assert box is not None and box['points'] > 0 and 0.0 <= box['holds_target_share'] <= 1.0
    assert all(0 < s < 0.6 for s in box['size'])           # a tabletop object, not the room
    assert all(c > 0 for c in (box['centre'][2], truth['centre'][2]))   # in front of the camera
    assert 'picked object box' in out
    node = next(line for line in out.splitlines() if line.startswith('demo: node: '))
    from pinpoint3d_core.presets import get_preset
    if get_preset('tabletop').weights in node:
        # the tabletop preset ran (its weights, or its baseline while they are absent): the
        # one-click object mask on a synthetic frame must be a usable grasp target
        assert summary['object_iou'] >= 0.5, summary
        assert box['holds_target_share'] >= 0.8
        if not os.path.isfile(os.path.join(ROOT, 'weights', 'pinpoint3d_tabletop.pt')):
            assert 'NO WEIGHTS' in summary['weights'] and 'baseline' in out
    else:   # a node without presets: the demo must say that it did not run the tabletop setting
        assert 'WARNING: the node did not say it runs the tabletop preset' in out
