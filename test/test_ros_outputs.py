"""
Outputs for planners, over DDS from a real node process.

The response header, oriented boxes, results in a ``target_frame`` through a transform source,
and ~/detections.

tf2_ros is not on PyPI, so the node (the real Pinpoint3DNode, shipped indoor weights) runs in
test/helpers/fixed_tf_node.py with one fixed transform base_link <- camera_color_optical_frame
injected where a tf2_ros.Buffer would be. vision_msgs is the generated stand-in of
test_ros_detections.py where the real package is absent; a listener process with it on its
paths reads ~/detections.
"""

import json
import os
import subprocess
import sys

import numpy as np
from pinpoint3d_core.boxes import OrientedBox, rotation_to_quaternion
from pinpoint3d_ros import conversions, frames
from pinpoint3d_ros.testing import Client, fresh_domain_id, Process, ros_env
import pytest
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from std_msgs.msg import Header

srvs = pytest.importorskip('pinpoint3d.srv', reason='interfaces not built: run `make build`')
msgs = pytest.importorskip('pinpoint3d.msg', reason='interfaces not built: run `make build`')
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_ros_detections import vision_env  # noqa: E402,F401,I100 - a shared fixture

HERE = os.path.dirname(os.path.abspath(__file__))
NODE = '/pinpoint3d_node'
CAMERA = 'camera_color_optical_frame'
# A head camera 1.2 m up, 0.1 m forward, looking along base_link x (REP 103 optical frame:
# z forward, x right, y down), tilted 30 degrees down.
TILT = np.radians(30.0)
LEVEL = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])   # optical -> base
PITCH = np.array([[np.cos(TILT), 0.0, np.sin(TILT)], [0.0, 1.0, 0.0],
                  [-np.sin(TILT), 0.0, np.cos(TILT)]])
ROTATION = PITCH @ LEVEL
TRANSLATION = np.array([0.1, 0.0, 1.2])


def scene_in_base(n=6000, seed=3):
    """Return points (base_link): a floor 1-3 m ahead and two boxes on it."""
    rng = np.random.default_rng(seed)
    floor = np.c_[rng.uniform(1.0, 3.0, n // 2), rng.uniform(-1.0, 1.0, n // 2),
                  np.zeros(n // 2)]
    box_a = rng.uniform([1.4, -0.6, 0.0], [1.7, -0.3, 0.3], (n // 4, 3))
    box_b = rng.uniform([2.0, 0.2, 0.0], [2.3, 0.6, 0.5], (n - n // 2 - n // 4, 3))
    return np.vstack([floor, box_a, box_b])


@pytest.fixture(scope='module')
def ros(request, tmp_path_factory):
    domain = fresh_domain_id()
    log = str(tmp_path_factory.mktemp('outputs') / 'node.log')
    quaternion = rotation_to_quaternion(ROTATION)
    try:   # without cmake there is no stand-in: only the detections test skips
        with_vision = request.getfixturevalue('vision_env')
    except pytest.skip.Exception:
        with_vision = {}
    extra = {k: with_vision[k] for k in ('PYTHONPATH', 'LD_LIBRARY_PATH', 'AMENT_PREFIX_PATH')
             if k in with_vision}
    node = Process('helpers.fixed_tf_node',
                   ['base_link', CAMERA, *map(str, TRANSLATION), *map(str, quaternion), '--',
                    '--ros-args', '-p', 'preset:=indoor', '-p', 'target_frame:=base_link'],
                   domain_id=domain, log_path=log, env=extra, cwd=HERE)
    client = Client(domain)
    env = type('Ros', (), {})()
    env.node, env.client, env.domain, env.extra = node, client, domain, extra
    env.srv = client.node.create_client(srvs.ClickSegment, NODE + '/click_segment')
    env.params = client.node.create_client(SetParameters, NODE + '/set_parameters')
    base = scene_in_base()
    env.base = base
    env.camera = ((base - TRANSLATION) @ ROTATION).astype(np.float32)   # R^T (p - t)
    header = Header(frame_id=CAMERA)
    header.stamp.sec, header.stamp.nanosec = 1234, 5678
    env.cloud = conversions.arrays_to_cloud(header, env.camera)
    try:
        assert env.srv.wait_for_service(timeout_sec=90), node.log()
        yield env
    finally:
        client.close()
        node.stop()


def set_target_frame(ros, value):
    req = SetParameters.Request()
    req.parameters = [Parameter(name='target_frame', value=ParameterValue(
        type=ParameterType.PARAMETER_STRING, string_value=value))]
    assert ros.params.wait_for_service(timeout_sec=10)
    result = ros.client.call(ros.params, req).results[0]
    assert result.successful, result.reason


def segment(ros, reset=True):
    req = srvs.ClickSegment.Request()
    req.interaction_id = 'outputs'   # one click history for this module's calls
    req.reset = reset
    req.cloud = ros.cloud
    click = msgs.Click(object_id=1, positive=True)
    target = ros.camera[-1]   # on box b, in the camera frame (the request header is empty)
    click.position.x, click.position.y, click.position.z = (float(v) for v in target)
    req.clicks = [click]
    resp = ros.client.call(ros.srv, req, timeout=120)
    assert resp is not None
    return resp


@pytest.fixture(scope='module')
def in_base(ros):
    resp = segment(ros)
    assert resp.success, resp.message
    return resp


def box_of(pose, size):
    q = pose.orientation
    return OrientedBox(np.array([pose.position.x, pose.position.y, pose.position.z]),
                       frames.quaternion_matrix(q.x, q.y, q.z, q.w),
                       np.array([size.x, size.y, size.z]))


def test_response_header_names_the_target_frame_and_the_clouds_stamp(in_base):
    assert in_base.header.frame_id == 'base_link'
    assert (in_base.header.stamp.sec, in_base.header.stamp.nanosec) == (1234, 5678)
    assert in_base.labeled_cloud.header.frame_id == 'base_link'


def test_results_are_transformed_into_the_target_frame(ros, in_base):
    points, obj, _ = conversions.labeled_cloud_to_arrays(in_base.labeled_cloud)
    np.testing.assert_allclose(points, ros.base, atol=1e-4)   # same order, base_link
    assert in_base.objects, in_base.message
    for o in in_base.objects:
        mine = points[np.asarray(o.indices)]
        low, high = mine.min(axis=0), mine.max(axis=0)
        centre = [o.box_pose.position.x, o.box_pose.position.y, o.box_pose.position.z]
        np.testing.assert_allclose(centre, (low + high) / 2, atol=1e-4)
        np.testing.assert_allclose([o.box_size.x, o.box_size.y, o.box_size.z], high - low,
                                   atol=1e-4)
        np.testing.assert_allclose([o.centroid.x, o.centroid.y, o.centroid.z],
                                   mine.mean(axis=0), atol=1e-3)
    # The clicked box stands on the floor of base_link: its lowest points are near z = 0.
    clicked = next(o for o in in_base.objects if o.object_id == 1)
    assert clicked.box_pose.position.z - clicked.box_size.z / 2 < 0.05


def test_oriented_boxes_contain_their_points_and_are_no_larger(in_base):
    points, _, _ = conversions.labeled_cloud_to_arrays(in_base.labeled_cloud)
    regions = [(o, points[np.asarray(o.indices)]) for o in in_base.objects]
    regions += [(p, points[np.asarray(p.indices)]) for o in in_base.objects for p in o.parts]
    for region, mine in regions:
        box = box_of(region.oriented_box_pose, region.oriented_box_size)
        q = region.oriented_box_pose.orientation
        assert abs(np.linalg.norm([q.x, q.y, q.z, q.w]) - 1.0) < 1e-5
        assert box.contains(mine, tolerance=1e-4).all()
        aligned = region.box_size.x * region.box_size.y * region.box_size.z
        assert box.volume <= aligned * (1 + 1e-4) + 1e-9


def test_detections_carry_one_entry_per_object_and_part_in_the_target_frame(ros, in_base):
    from pinpoint3d_ros import detections
    if 'PYTHONPATH' not in ros.extra and not detections.vision_msgs_available():
        pytest.skip('no vision_msgs and no stand-in')
    env = ros_env(ros.domain)
    env.update(ros.extra)
    proc = subprocess.run(
        [sys.executable, '-m', 'helpers.detections_listener', NODE + '/detections',
         '1234', '5678', '30'], env=env, cwd=HERE, capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:] + ros.node.log()[-2000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got['frame'] == 'base_link' and got['stamp'] == [1234, 5678]
    want = {}
    for o in in_base.objects:
        want[detections.detection_id(o.object_id)] = o
        for p in o.parts:
            want[detections.detection_id(o.object_id, p.part_id)] = p
    assert [d['id'] for d in got['detections']] == list(want)
    for d in got['detections']:
        region = want[d['id']]
        pose = region.oriented_box_pose
        np.testing.assert_allclose(
            d['center'], [pose.position.x, pose.position.y, pose.position.z, pose.orientation.x,
                          pose.orientation.y, pose.orientation.z, pose.orientation.w],
            atol=1e-5)
        size = region.oriented_box_size
        np.testing.assert_allclose(d['size'], [size.x, size.y, size.z], atol=1e-5)
        assert d['frame'] == 'base_link'
        assert d['results'][0][0] == ('part' if '/part:' in d['id'] else 'object')
        assert d['results'][0][1] == pytest.approx(region.score, abs=1e-5)


def test_missing_transform_fails_naming_both_frames_and_changes_nothing(ros, in_base):
    set_target_frame(ros, 'odom')
    try:
        resp = segment(ros, reset=False)
        assert not resp.success
        assert "'odom'" in resp.message and f"'{CAMERA}'" in resp.message
    finally:
        set_target_frame(ros, '')
    resp = segment(ros, reset=False)   # the failed call added no click
    assert resp.success, resp.message
    assert '2 click(s)' in resp.message   # the fixture's click and this one
    assert resp.header.frame_id == CAMERA
    points, _, _ = conversions.labeled_cloud_to_arrays(resp.labeled_cloud)
    np.testing.assert_array_equal(points, ros.camera)   # the cloud frame, untouched
    set_target_frame(ros, 'base_link')


def test_marker_boxes_are_the_oriented_boxes():
    from pinpoint3d_ros import markers
    rng = np.random.default_rng(2)
    turn = np.array([[np.cos(0.5), -np.sin(0.5), 0], [np.sin(0.5), np.cos(0.5), 0], [0, 0, 1]])
    points = ((rng.random((500, 3)) - 0.5) * [0.4, 0.1, 0.05]) @ turn.T
    regions = conversions.summarise(points, np.ones(500, np.uint32), np.zeros(500, np.uint32))
    cube, = [m for m in markers.build_markers(Header(frame_id='base_link'), regions).markers
             if m.ns == 'objects']
    box = regions[0].oriented_box
    q = cube.pose.orientation
    np.testing.assert_allclose([q.x, q.y, q.z, q.w], box.quaternion, atol=1e-6)
    np.testing.assert_allclose([cube.scale.x, cube.scale.y, cube.scale.z], box.size, rtol=1e-6)
    assert box.volume < 0.8 * np.prod(regions[0].box_size)   # turned: tighter than aligned
