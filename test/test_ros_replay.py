"""
Bag replay (pinpoint3d_ros/replay.py) with bags this test writes itself, MCAP and SQLite3.

The bags hold a small synthetic indoor scan (with ground truth kept aside) on a RealSense-like
topic, in the camera's frame, three messages; the replay tool starts a real node process with
the shipped weights and sends the clicks of a YAML file through ~/click_segment.
"""

import json
import os
import subprocess
import sys

import numpy as np
from pinpoint3d_ros import demo_planner, replay
from pinpoint3d_ros.testing import fresh_domain_id, ros_env
import pytest
import yaml

TOPIC = '/camera/camera/depth/color/points'
FRAME = 'camera_color_optical_frame'
# Far below what the shipped weights reach on this scene (see the printed IoU); an answer about
# another object, or labels in the wrong point order, stays under it.
IOU_FLOOR = 0.5


@pytest.fixture(scope='module')
def scene():
    pytest.importorskip('open3d')
    from pinpoint3d_core.synth import generate_scene
    return generate_scene(kind='indoor', seed=7, size='small')


def write_bag(path, scene, storage, count=3):
    """Write ``count`` copies of the scene's cloud (fresh stamps) on TOPIC; return the folder."""
    from pinpoint3d_ros.scene_player import scene_cloud
    from rclpy.serialization import serialize_message
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import get_typestore, Stores
    plugin = {'mcap': StoragePlugin.MCAP, 'sqlite3': StoragePlugin.SQLITE3}[storage]
    with Writer(path, version=9, storage_plugin=plugin) as writer:
        typestore = get_typestore(Stores.ROS2_KILTED)
        clouds = writer.add_connection(TOPIC, replay.CLOUD_TYPE, typestore=typestore)
        other = writer.add_connection('/rosout_like', 'std_msgs/msg/String',
                                      typestore=typestore)
        for i in range(count):
            msg = scene_cloud(scene, FRAME)
            msg.header.stamp.sec, msg.header.stamp.nanosec = 100 + i, 0
            stamp = (100 + i) * 10**9
            writer.write(clouds, stamp, serialize_message(msg))
            writer.write(other, stamp + 1, typestore.serialize_cdr(
                typestore.types['std_msgs/msg/String'](data='noise'), 'std_msgs/msg/String'))
    return str(path)


def clicks_file(path, scene):
    """One click on the largest object with parts, then one on each of two of its parts."""
    target, parts = demo_planner.pick_target(scene)
    pts = scene.coords
    requests = [{'cloud': 2, 'reset': True, 'clicks': [
        [float(v) for v in pts[demo_planner.interior_point(pts, scene.object_ids == target)]]]}]
    for k, part in enumerate(parts[:2], start=1):
        p = pts[demo_planner.interior_point(pts, scene.part_ids == part)]
        requests.append({'clicks': [{'position': [float(v) for v in p], 'object_id': 1,
                                     'part_id': k, 'positive': True}]})
    with open(path, 'w') as f:
        yaml.safe_dump({'frame_id': '', 'requests': requests}, f)
    return str(path), target, parts[:2]


def run_replay(args, timeout=300):
    env = ros_env(fresh_domain_id())
    return subprocess.run([sys.executable, '-m', 'pinpoint3d_ros.replay', *args], env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
def test_replay_segments_the_bag_and_writes_the_demo_outputs(tmp_path, scene, storage,
                                                             minkowski):
    bag = write_bag(tmp_path / f'bag_{storage}', scene, storage)
    clicks, target, parts = clicks_file(tmp_path / 'clicks.yaml', scene)
    out = tmp_path / 'out'
    proc = run_replay([bag, '--clicks', clicks, '--out', str(out), '--start-node',
                       '--config', 'indoor_rgbd.yaml'])
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text[-4000:]
    for name in ('segmentation.ply', 'segmentation.png', 'summary.json'):
        assert os.path.getsize(out / name) > 0, name
        assert str(out / name) in text    # it says where its results are
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['storage'] == storage and summary['topic'] == TOPIC
    assert summary['messages'] == 3 and summary['frame_id'] == FRAME
    assert [s['cloud'] for s in summary['requests']] == [2, 2, 2]
    assert summary['requests'][0]['stamp_ns'] == 102 * 10**9   # the third message was used
    assert all(s['success'] for s in summary['requests']) and not summary['failed']
    obj, = summary['objects']
    assert obj['object_id'] == 1 and obj['points'] > 0
    assert {p['part_id'] for p in obj['parts']} <= {1, 2}
    box = obj['oriented_box']
    assert np.prod(box['size']) <= np.prod(obj['box_size']) + 1e-6
    # The labelled PLY has every point of the recorded cloud, in its order.
    with open(out / 'segmentation.ply', 'rb') as f:
        header = f.read(600).split(b'end_header\n')[0].decode()
    assert f'element vertex {len(scene)}' in header
    # The answer is about the clicked object: it overlaps the scene's target object.
    with open(out / 'segmentation.ply', 'rb') as f:
        data = f.read()
    body = data[data.index(b'end_header\n') + len(b'end_header\n'):]
    records = np.frombuffer(body, dtype=[('xyz', '<f4', 3), ('rgb', 'u1', 3),
                                         ('object_id', '<u4'), ('part_id', '<u4')])
    np.testing.assert_allclose(records['xyz'], scene.coords, atol=1e-6)
    iou = demo_planner.iou(records['object_id'] == 1, scene.object_ids == target)
    print(f'replay {storage}: object IoU {iou:.3f}')
    assert iou > IOU_FLOOR, iou


def test_bad_clicks_file_is_refused_before_anything_starts(tmp_path, scene):
    bag = write_bag(tmp_path / 'bag', scene, 'mcap', count=1)
    cases = {
        'no requests': {'requests': []},
        'bad position': {'requests': [{'clicks': [[1.0, 'x', 2.0]]}]},
        'unknown key': {'requests': [{'clicks': [[0, 0, 0]], 'colour': 'red'}]},
        'cloud out of range': {'requests': [{'cloud': 5, 'clicks': [[0, 0, 0]]}]},
        'wrong topic': {'topic': '/velodyne_points', 'requests': [{'clicks': [[0, 0, 0]]}]},
    }
    expected = {'no requests': 'non-empty `requests:`', 'bad position': 'three finite numbers',
                'unknown key': "unknown key(s) ['colour']", 'cloud out of range': 'has 1 message',
                'wrong topic': 'no PointCloud2 on /velodyne_points'}
    for name, content in cases.items():
        path = tmp_path / f'{name.replace(" ", "_")}.yaml'
        path.write_text(yaml.safe_dump(content))
        proc = run_replay([bag, '--clicks', str(path), '--out', str(tmp_path / 'o'),
                           '--start-node'], timeout=60)
        assert proc.returncode == replay.EXIT_BAD_INPUT, (name, proc.stderr)
        assert expected[name] in proc.stderr, (name, proc.stderr)
        assert not (tmp_path / 'o' / 'node.log').exists()   # no node was started


def test_reads_both_storage_formats_and_the_bag_file_itself(tmp_path, scene):
    for storage in ('mcap', 'sqlite3'):
        bag = write_bag(tmp_path / storage, scene, storage, count=2)
        topic, found, clouds, count = replay.read_clouds(bag)
        assert (topic, count, sorted(clouds)) == (TOPIC, 2, [0, 1])
        assert found == storage
        data_file = next(f for f in os.listdir(bag) if f.endswith(('.mcap', '.db3')))
        assert replay.read_clouds(os.path.join(bag, data_file), wanted={1})[2].keys() == {1}
    with pytest.raises(replay.ReplayInputError, match='metadata.yaml'):
        replay.read_clouds(str(tmp_path))
