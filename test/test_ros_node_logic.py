"""
The node's request logic in-process: callbacks called directly, no executor, no DDS round trip.

These cover the paths that are slow or impossible to reach over the wire: the encoding cache,
the interaction keeping its cloud, click carry-over to a newer scan, cloud age and size limits,
and the CUDA out-of-memory fallback (simulated: no GPU here; the CPU retry runs the real
model).
"""

import os
import time

import numpy as np
from pinpoint3d_ros import conversions
from pinpoint3d_ros.testing import fresh_domain_id
import pytest
import rclpy
from rclpy.parameter import Parameter
from sensor_msgs.msg import PointCloud2
from std_msgs.msg import Header

msgs = pytest.importorskip('pinpoint3d.msg', reason='interfaces not built: run `make build`')
srvs = pytest.importorskip('pinpoint3d.srv', reason='interfaces not built: run `make build`')
torch = pytest.importorskip('torch')
pytest.importorskip('pinpoint3d_core.session', reason='pinpoint3d_core.session missing')
node_module = pytest.importorskip('pinpoint3d_ros.node')


@pytest.fixture(scope='module')
def context():
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=fresh_domain_id())
    yield ctx
    rclpy.try_shutdown(context=ctx)


@pytest.fixture
def make_node(context):
    nodes = []

    def make(**overrides):
        overrides.setdefault('checkpoint', 'untrained')
        node = node_module.Pinpoint3DNode(
            context=context,
            parameter_overrides=[Parameter(k, value=v) for k, v in overrides.items()])
        nodes.append(node)
        return node

    yield make
    for node in nodes:
        node.stop_serving()
        node.destroy_node()


def scene(n=1500, offset=0.0, seed=0):
    rng = np.random.default_rng(seed)
    pts = np.r_[rng.uniform([-1, -1, 0], [1, 1, 0.01], (n // 2, 3)),
                rng.uniform([0.2, 0.2, 0], [0.5, 0.5, 0.4], (n - n // 2, 3))]
    return (pts + offset).astype(np.float32)


def cloud_msg(points, stamp_s=0):
    header = Header(frame_id='map')
    header.stamp.sec = stamp_s
    return conversions.arrays_to_cloud(header, points)


def call(node, points=None, clicks=(), reset=False, cloud=None, key='k', newer_than=None):
    req = srvs.ClickSegment.Request()
    req.reset = reset
    req.interaction_id = key
    if cloud is not None:
        req.cloud = cloud
    if newer_than is not None:
        req.cloud_newer_than.sec = newer_than
    for position, object_id, part_id, positive in clicks:
        c = msgs.Click(object_id=object_id, part_id=part_id, positive=positive)
        c.position.x, c.position.y, c.position.z = (float(v) for v in position)
        req.clicks.append(c)
    return node._on_click_segment(req, srvs.ClickSegment.Response())


def test_encoding_is_cached_for_a_republished_identical_scan(make_node):
    node = make_node()
    pts = scene()
    node._on_cloud(cloud_msg(pts, stamp_s=1))
    first = call(node, clicks=[(pts[-1], 1, 0, True)], reset=True)
    assert first.success, first.message
    assert first.encode_ms > 0
    node._on_cloud(cloud_msg(pts, stamp_s=2))   # same points, new stamp: a static scene
    again = call(node, clicks=[(pts[-2], 1, 0, True)], newer_than=1)
    assert again.success and again.encode_ms == 0.0
    assert again.num_clicks == 2 and again.cloud_header.stamp.sec == 2


def test_a_jittering_live_cloud_keeps_the_interactions_cloud_and_encoding(make_node):
    node = make_node()
    pts = scene()
    node._on_cloud(cloud_msg(pts, stamp_s=1))
    assert call(node, clicks=[(pts[-1], 1, 0, True)], reset=True).success
    node._on_cloud(cloud_msg(pts + np.float32(0.001), stamp_s=2))   # sensor noise
    resp = call(node, clicks=[(pts[-2], 1, 0, True)])
    assert resp.success and resp.encode_ms == 0.0
    assert resp.cloud_header.stamp.sec == 1 and "the interaction's cloud" in resp.message


def test_clicks_are_carried_over_to_a_newer_scan_or_the_request_fails(make_node):
    node = make_node()
    pts = scene()
    node._on_cloud(cloud_msg(pts))
    assert call(node, clicks=[(pts[-1], 1, 0, True)], reset=True).success
    moved = pts + np.float32(0.001)   # a new scan of the same scene
    node._on_cloud(cloud_msg(moved, stamp_s=5))
    resp = call(node, clicks=[(moved[-2], 1, 0, True)], newer_than=4)
    assert resp.success and resp.encode_ms > 0   # re-encoded
    assert resp.num_clicks == 2                  # the first click survived by position
    far = pts + np.float32(5.0)                  # the scene moved away: clicks cannot follow
    node._on_cloud(cloud_msg(far, stamp_s=9))
    lost = call(node, clicks=[(far[-2], 1, 0, True)], newer_than=8)
    assert not lost.success and 'cannot be carried over to the new cloud' in lost.message
    kept = call(node, clicks=[(moved[-3], 1, 0, True)])   # nothing changed by the failure
    assert kept.success and kept.num_clicks == 3 and kept.cloud_header.stamp.sec == 5
    fresh = call(node, clicks=[(far[-2], 1, 0, True)], reset=True, newer_than=8)
    assert fresh.success and fresh.num_clicks == 1


def test_the_click_limit_of_an_interaction_says_how_to_go_on(make_node):
    node = make_node()
    pts = scene()
    cloud = cloud_msg(pts)
    full = call(node, clicks=[(p, 1, 0, True) for p in pts[-200:]], reset=True, cloud=cloud)
    assert full.success and full.num_clicks == 200, full.message
    more = call(node, clicks=[(pts[0], 1, 0, True)], cloud=cloud)
    assert not more.success and "interaction 'k' holds 200 click(s)" in more.message
    assert 'reset: true' in more.message
    again = call(node, clicks=[(pts[0], 1, 0, True)], reset=True, cloud=cloud)
    assert again.success and again.num_clicks == 1


def test_empty_old_and_oversized_clouds_are_refused(make_node):
    node = make_node(max_points=1000, max_cloud_age=0.05)
    node._on_cloud(PointCloud2())
    resp = call(node, clicks=[((0, 0, 0), 1, 0, True)])
    assert not resp.success and 'empty' in resp.message
    node._on_cloud(cloud_msg(scene(1500)))
    resp = call(node, clicks=[((0, 0, 0), 1, 0, True)])
    assert not resp.success and 'more than max_points (1000)' in resp.message
    node._on_cloud(cloud_msg(scene(800)))
    time.sleep(0.2)   # the cloud is now older than max_cloud_age
    resp = call(node, clicks=[((0, 0, 0), 1, 0, True)])
    assert not resp.success and 'max_cloud_age' in resp.message


class OutOfMemoryOnce:
    """Wraps a real segmenter; its first start() raises CUDA OOM like a too-large cloud."""

    def __init__(self, segmenter):
        self._inner = segmenter
        self.calls = 0

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def start(self, *args, **kwargs):
        self.calls += 1
        raise torch.cuda.OutOfMemoryError('CUDA out of memory. Tried to allocate 2.00 GiB')


def test_cuda_out_of_memory_falls_back_to_cpu_and_answers(make_node):
    node = make_node()
    node.p['device'] = 'cuda'   # as if configured for the GPU
    wrapped = node._segmenter = OutOfMemoryOnce(node._segmenter)
    pts = scene()
    resp = call(node, clicks=[(pts[-1], 1, 0, True)], reset=True, cloud=cloud_msg(pts))
    assert wrapped.calls == 1
    assert resp.success, resp.message
    assert 'now runs on the CPU' in resp.message and '1 click(s)' in resp.message
    assert node._segmenter is not wrapped and str(node._segmenter.device) == 'cpu'


def test_cuda_out_of_memory_without_fallback_says_what_to_do(make_node):
    node = make_node(cpu_fallback=False)
    node.p['device'] = 'cuda'
    node._segmenter = OutOfMemoryOnce(node._segmenter)
    pts = scene()
    resp = call(node, clicks=[(pts[-1], 1, 0, True)], reset=True, cloud=cloud_msg(pts))
    assert not resp.success
    assert 'CUDA out of memory' in resp.message and 'device:=cpu' in resp.message


def test_default_checkpoint_is_the_presets_shipped_file_or_its_baseline(make_node):
    node = make_node(checkpoint='')
    path = node_module.default_checkpoint()
    assert path.endswith(os.path.join('weights', 'pinpoint3d_small.pt'))
    if os.path.isfile(path):
        assert node._weights_note.startswith('weights ') and path in node._weights_note
    else:
        assert 'NO WEIGHTS' in node._weights_note
        pts = scene()
        resp = call(node, clicks=[(pts[-1], 1, 0, True)], reset=True, cloud=cloud_msg(pts))
        assert resp.success and 'non-learned baseline' in resp.message


def test_inference_settings_replace_the_checkpoints_only_when_set(make_node):
    default = make_node()
    cfg = default._segmenter.inference
    names = ('focus_half_extent', 'component_gap_voxels', 'click_claim_voxels',
             'part_prior_voxels', 'object_logit_bias')
    assert [getattr(cfg, k) for k in names] == [2.0, 10.0, 0.0, 0.5, 0.0]   # 'small'
    node = make_node(**{**dict.fromkeys(names, 0.0), 'object_logit_bias': 6.0})
    cfg = node._segmenter.inference
    assert [getattr(cfg, k) for k in names] == [0.0] * 4 + [6.0]
    pts = scene()
    resp = call(node, clicks=[(pts[-1], 1, 0, True)], reset=True, cloud=cloud_msg(pts))
    assert resp.success, resp.message
