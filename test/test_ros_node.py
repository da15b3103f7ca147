"""
End-to-end: pinpoint3d_node in its own process, driven over DDS by a client in this one.

The node runs the untrained small model (checkpoint 'untrained'): segmentation content is then
arbitrary, so these tests check the plumbing (shapes, indices, fields, messages, errors,
serialisation), not accuracy. One node per test module, in a private ROS domain.
"""

import os
import tempfile

from geometry_msgs.msg import PointStamped
import numpy as np
from pinpoint3d_ros import conversions
from pinpoint3d_ros.testing import Client, fresh_domain_id, Process
import pytest
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from rclpy.qos import QoSDurabilityPolicy, QoSProfile, QoSReliabilityPolicy
from sensor_msgs.msg import PointCloud2
from std_msgs.msg import Header
from visualization_msgs.msg import Marker, MarkerArray

msgs = pytest.importorskip('pinpoint3d.msg', reason='interfaces not built: run `make build`')
srvs = pytest.importorskip('pinpoint3d.srv', reason='interfaces not built: run `make build`')
pytest.importorskip('pinpoint3d_core.session', reason='pinpoint3d_core.session missing')
Click, ClickMode, SegmentedObjects = msgs.Click, msgs.ClickMode, msgs.SegmentedObjects
ClickSegment, ResetSession = srvs.ClickSegment, srvs.ResetSession

NODE = '/pinpoint3d_node'
LATCHED = QoSProfile(depth=1, reliability=QoSReliabilityPolicy.RELIABLE,
                     durability=QoSDurabilityPolicy.TRANSIENT_LOCAL)
START_TIMEOUT = 60.0


def tabletop(n=3000, seed=0):
    """Return (points, colors): a floor plane with two boxes on it, in metres."""
    rng = np.random.default_rng(seed)
    floor = np.c_[rng.uniform(-1, 1, n // 2), rng.uniform(-1, 1, n // 2), np.zeros(n // 2)]
    box_a = rng.uniform([-0.5, -0.5, 0.0], [-0.2, -0.2, 0.3], size=(n // 4, 3))
    box_b = rng.uniform([0.2, 0.2, 0.0], [0.5, 0.6, 0.5], size=(n - n // 2 - n // 4, 3))
    points = np.vstack([floor, box_a, box_b]).astype(np.float32)
    colors = rng.integers(0, 256, size=(n, 3)).astype(np.uint8)
    return points, colors


def make_click(position, object_id=1, part_id=0, positive=True):
    c = Click(object_id=object_id, part_id=part_id, positive=positive)
    c.position.x, c.position.y, c.position.z = (float(v) for v in position)
    return c


def request(clicks=(), reset=False, granularity='', cloud=None, frame=''):
    req = ClickSegment.Request()
    req.clicks = list(clicks)
    req.reset = reset
    req.granularity = granularity
    req.header.frame_id = frame
    if cloud is not None:
        req.cloud = cloud
    return req


@pytest.fixture(scope='module')
def ros(tmp_path_factory):
    """Start the node (untrained small model) and a client in a private domain."""
    domain = fresh_domain_id()
    log = str(tmp_path_factory.mktemp('node') / 'node.log')
    node = Process('pinpoint3d_ros.node', ['--ros-args', '-p', 'checkpoint:=untrained',
                                           '-p', 'snap_radius:=0.05'],
                   domain_id=domain, log_path=log)
    client = Client(domain)
    env = type('Ros', (), {})()
    env.node, env.client = node, client
    env.srv = client.node.create_client(ClickSegment, NODE + '/click_segment')
    env.reset = client.node.create_client(ResetSession, NODE + '/reset')
    env.cloud_pub = client.node.create_publisher(PointCloud2, '/points', 5)
    env.points, env.colors = tabletop()
    env.cloud = conversions.arrays_to_cloud(Header(frame_id='map'), env.points, env.colors)
    try:
        assert env.srv.wait_for_service(timeout_sec=START_TIMEOUT), node.log()
        yield env
    finally:
        client.close()
        node.stop()


def publish_cloud_until_used(ros, cloud):
    """Publish the cloud until the node has it (a service call stops saying 'no cloud')."""
    ros.client.spin_until(lambda: ros.cloud_pub.get_subscription_count() > 0, 10)
    for _ in range(100):
        ros.cloud_pub.publish(cloud)
        ros.client.executor.spin_once(timeout_sec=0.1)
        resp = ros.client.call(ros.srv, request(reset=True))
        if resp is not None and 'no cloud received yet' not in resp.message:
            return resp
    raise AssertionError('the node never received the published cloud')


def test_service_before_any_cloud_explains(ros):
    resp = ros.client.call(ros.srv, request([make_click(ros.points[0])]))
    assert resp is not None and not resp.success
    assert 'no cloud received yet' in resp.message and "'/points'" in resp.message


def test_segment_latest_cloud_returns_consistent_messages(ros):
    publish_cloud_until_used(ros, ros.cloud)
    objects_seen = ros.client.collector(SegmentedObjects, NODE + '/objects', LATCHED)
    clouds_seen = ros.client.collector(PointCloud2, NODE + '/labeled_points', LATCHED)
    target = ros.points[-1]   # a point on box b
    resp = ros.client.call(ros.srv, request([make_click(target)], reset=True))
    assert resp.success, resp.message
    n = len(ros.points)
    labeled = resp.labeled_cloud
    assert [f.name for f in labeled.fields] == ['x', 'y', 'z', 'rgb', 'object_id', 'part_id']
    assert (labeled.height, labeled.width) == (1, n)
    assert labeled.header.frame_id == 'map'
    points, obj, part = conversions.labeled_cloud_to_arrays(labeled)
    np.testing.assert_array_equal(points, ros.points)   # same points, same order
    assert set(np.unique(obj)) <= {0, 1}
    assert np.all(part[obj == 0] == 0)
    for o in resp.objects:   # indices agree with the labelled cloud
        idx = np.asarray(o.indices)
        assert idx.max() < n and np.all(obj[idx] == o.object_id)
        assert len(idx) == np.count_nonzero(obj == o.object_id)
        for p in o.parts:
            assert np.all(part[np.asarray(p.indices)] == p.part_id)
    assert resp.decode_ms > 0
    assert '1 click(s)' in resp.message
    assert 'UNTRAINED weights' in resp.message   # says plainly what it runs
    assert ros.client.spin_until(lambda: objects_seen and clouds_seen, 10)
    assert objects_seen[-1].header.frame_id == 'map'
    assert clouds_seen[-1].width == n


def test_request_cloud_organised_with_nans_keeps_layout(ros):
    pts = ros.points[:600].copy()
    pts[[5, 17]] = np.nan
    cloud = conversions.arrays_to_cloud(Header(frame_id='map'), pts, height=20, width=30)
    finite = pts[np.isfinite(pts).all(axis=1)]
    resp = ros.client.call(ros.srv, request([make_click(finite[100])], reset=True, cloud=cloud))
    assert resp.success, resp.message
    assert (resp.labeled_cloud.height, resp.labeled_cloud.width) == (20, 30)
    _, obj, _ = conversions.labeled_cloud_to_arrays(resp.labeled_cloud)
    assert obj[5] == 0 and obj[17] == 0
    assert not resp.labeled_cloud.is_dense


@pytest.mark.parametrize('case,fragment', [
    ('far_click', 'snap radius'),
    ('bad_granularity', "granularity must be 'object', 'part' or 'both'"),
    ('unknown_frame', "'odom'"),
    ('malformed_cloud', 'no field(s) z'),
    ('positive_background', 'object_id >= 1'),
    ('empty_with_data', 'width*height == 0'),
])
def test_bad_requests_fail_with_reason_and_node_survives(ros, case, fragment):
    click = make_click(ros.points[0])
    req = request([click], reset=True, cloud=ros.cloud)
    if case == 'far_click':
        req.clicks = [make_click((50.0, 50.0, 50.0))]
    elif case == 'bad_granularity':
        req.granularity = 'everything'
    elif case == 'unknown_frame':
        req.header.frame_id = 'odom'
    elif case == 'malformed_cloud':
        bad = conversions.arrays_to_cloud(Header(frame_id='map'), ros.points[:10])
        bad.fields = bad.fields[:2]
        req.cloud = bad
    elif case == 'positive_background':
        req.clicks = [make_click(ros.points[0], object_id=0)]
    elif case == 'empty_with_data':
        bad = PointCloud2()
        bad.data = b'\0' * 12
        req.cloud = bad
    resp = ros.client.call(ros.srv, req)
    assert resp is not None and not resp.success
    assert resp.message and fragment in resp.message
    assert ros.node.alive()
    ok = ros.client.call(ros.srv, request([click], reset=True, cloud=ros.cloud))
    assert ok.success, ok.message


def test_concurrent_calls_on_one_interaction_are_serialised(ros):
    base = ros.client.call(ros.srv, request([make_click(ros.points[-1])], reset=True))
    assert base.success and base.interaction_id and base.num_clicks == 1
    reqs = [request([make_click(ros.points[-1 - i])]) for i in range(1, 5)]
    for req in reqs:
        req.interaction_id = base.interaction_id
    futures = [ros.srv.call_async(req) for req in reqs]
    assert ros.client.spin_until(lambda: all(f.done() for f in futures), 120)
    assert all(f.result().success for f in futures)
    counts = sorted(f.result().num_clicks for f in futures)
    assert counts == [2, 3, 4, 5]   # each call saw all earlier clicks: none interleaved
    other = ros.client.call(ros.srv, request([make_click(ros.points[-1])]))
    assert other.success and other.num_clicks == 1   # a new interaction sees none of them
    assert other.interaction_id != base.interaction_id


def test_rviz_click_loop_and_reset(ros):
    publish_cloud_until_used(ros, ros.cloud)
    markers = ros.client.collector(MarkerArray, NODE + '/markers', LATCHED)
    objects = ros.client.collector(SegmentedObjects, NODE + '/objects', LATCHED)
    mode_pub = ros.client.node.create_publisher(ClickMode, NODE + '/click_mode', 10)
    click_pub = ros.client.node.create_publisher(PointStamped, '/clicked_point', 10)
    ros.client.spin_until(lambda: mode_pub.get_subscription_count() > 0
                          and click_pub.get_subscription_count() > 0, 10)

    def click(position, frame='map', timeout=30):
        before = len(objects)
        msg = PointStamped()
        msg.header.frame_id = frame
        msg.point.x, msg.point.y, msg.point.z = (float(v) for v in position)
        click_pub.publish(msg)
        return ros.client.spin_until(lambda: len(objects) > before, timeout)

    mode_pub.publish(ClickMode(object_id=0, part_id=0, positive=True))   # a new object
    ros.client.spin_until(lambda: False, 0.3)
    assert click(ros.points[-1])
    assert click(ros.points[-2])   # refines the same (new) object
    mode_pub.publish(ClickMode(object_id=1, part_id=0, positive=False))
    ros.client.spin_until(lambda: False, 0.3)
    assert click(ros.points[0])
    assert ros.client.spin_until(lambda: markers and sum(
        m.ns == 'clicks' for m in markers[-1].markers) == 3, 10)
    spheres = [m for m in markers[-1].markers if m.ns == 'clicks']
    assert markers[-1].markers[0].action == Marker.DELETEALL
    assert [m.color.g > m.color.r for m in spheres] == [True, True, False]   # green, red
    assert {o.object_id for o in objects[-1].objects} <= {1}
    assert not click((0.0, 0.0, 0.0), frame='odom', timeout=2)   # refused: no tf2
    reset = ros.client.call(ros.reset, ResetSession.Request(interaction_id='rviz'))
    assert reset.success and "forgot 3 click(s) in interaction 'rviz'" in reset.message
    everything = ros.client.call(ros.reset, ResetSession.Request())
    assert everything.success and 'interaction(s)' in everything.message


def test_parameter_changes_are_validated(ros):
    client = ros.client.node.create_client(SetParameters, NODE + '/set_parameters')
    assert client.wait_for_service(timeout_sec=10)

    def set_param(name, kind, **value):
        req = SetParameters.Request()
        req.parameters = [Parameter(name=name, value=ParameterValue(type=kind, **value))]
        return ros.client.call(client, req).results[0]

    bad = set_param('granularity', ParameterType.PARAMETER_STRING, string_value='everything')
    assert not bad.successful and 'granularity must be one of' in bad.reason
    assert not set_param('snap_radius', ParameterType.PARAMETER_DOUBLE,
                         double_value=-1.0).successful
    assert not set_param('device', ParameterType.PARAMETER_STRING,
                         string_value='cpu').successful   # read-only
    assert set_param('granularity', ParameterType.PARAMETER_STRING,
                     string_value='object').successful
    resp = ros.client.call(ros.srv, request([make_click(ros.points[-1])], reset=True,
                                            cloud=ros.cloud))
    assert resp.success and all(len(o.parts) == 0 for o in resp.objects)
    assert set_param('granularity', ParameterType.PARAMETER_STRING,
                     string_value='both').successful


def test_missing_checkpoint_keeps_node_up_and_explains():
    domain = fresh_domain_id()
    missing = os.path.join(tempfile.gettempdir(), 'pinpoint3d_no_such_checkpoint.pt')
    node = Process('pinpoint3d_ros.node', ['--ros-args', '-p', f'checkpoint:={missing}'],
                   domain_id=domain)
    client = Client(domain)
    try:
        srv = client.node.create_client(ClickSegment, NODE + '/click_segment')
        assert srv.wait_for_service(timeout_sec=START_TIMEOUT)
        points, _ = tabletop(200)
        cloud = conversions.arrays_to_cloud(Header(frame_id='map'), points)
        for _ in range(2):
            resp = client.call(srv, request([make_click(points[0])], reset=True, cloud=cloud))
            assert not resp.success
            assert 'model not loaded' in resp.message and 'pinpoint3d_no_such_checkpoint' in (
                resp.message)
        assert node.alive()
    finally:
        client.close()
        assert node.stop() in (0, -2)   # clean exit on SIGINT
