"""
The node's ``preset`` parameter: pinpoint3d_core.presets picks the weights and their settings.

In-process checks of pinpoint3d_ros/model_loading.py with the real shipped weights, and real
node processes whose logs must say which weights they run.
"""

import os
import subprocess
import sys

from pinpoint3d_core.presets import get_preset, PRESETS
from pinpoint3d_ros import model_loading, params
from pinpoint3d_ros.testing import Client, fresh_domain_id, Process
import pytest

srvs = pytest.importorskip('pinpoint3d.srv', reason='interfaces not built: run `make build`')


def shipped(name):
    return os.path.isfile(model_loading.shipped_checkpoint(get_preset(name).weights))


@pytest.mark.parametrize('name', sorted(PRESETS))
def test_each_preset_loads_its_own_weights_or_says_they_are_absent(name, minkowski):
    choice = model_loading.load(name, '', 'cpu')
    weights = get_preset(name).weights
    assert weights in choice.description
    if shipped(name):
        assert choice.description.startswith('weights ') and not choice.baseline
        assert not choice.warnings
    else:   # e.g. tabletop before its weights are trained: the preset's baseline, said
        assert choice.baseline and choice.description.startswith('NO WEIGHTS')
        assert choice.segmenter.inference == get_preset(name).baseline
        assert any('non-learned baseline' in w for w in choice.warnings)


def test_explicit_checkpoint_wins_over_the_preset_and_is_noted(minkowski):
    choice = model_loading.load('lidar', 'pinpoint3d_small.pt', 'cpu')
    assert os.path.join('weights', 'pinpoint3d_small.pt') in choice.description
    assert any("preset 'lidar'" in n and 'pinpoint3d_small_lidar.pt' in n
               for n in choice.notes)
    same = model_loading.load('lidar', 'pinpoint3d_small_lidar.pt', 'cpu')
    assert not same.notes   # naming the preset's own file replaces nothing


def test_inference_parameters_are_inference_config_fields(minkowski):
    choice = model_loading.load('indoor', '', 'cpu', {'focus_half_extent': 0.0,
                                                      'component_gap_voxels': 3.0})
    assert choice.segmenter.inference.focus_half_extent == 0.0
    assert choice.segmenter.inference.component_gap_voxels == 3.0
    assert any('focus_half_extent' in n for n in choice.notes)
    assert set(params.INFERENCE_SETTINGS) <= set(
        choice.segmenter.inference.to_dict())   # every node setting is a field


def test_the_node_does_not_import_the_evaluation_package(minkowski):
    code = ('import sys\n'
            'from pinpoint3d_ros import model_loading, node\n'
            "model_loading.load('indoor', '', 'cpu', {'focus_half_extent': 1.0})\n"
            "model_loading.load('tabletop', '', 'cpu', {'click_claim_voxels': 1.0})\n"
            "bad = sorted(m for m in sys.modules if m.startswith('pinpoint3d_core.evaluation'))\n"
            'assert not bad, bad\n')
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_parameter_choices_are_the_presets():
    assert set(params.PRESETS) == set(PRESETS)
    assert params.check('preset', 'kitchen') is not None
    assert all(params.check('preset', name) is None for name in PRESETS)


@pytest.mark.parametrize('args, expected', [
    (['-p', 'preset:=lidar'], ["preset 'lidar'", 'pinpoint3d_small_lidar.pt']),
    (['-p', 'preset:=lidar', '-p', 'checkpoint:=pinpoint3d_small.pt'],
     ["replaces preset 'lidar's weights pinpoint3d_small_lidar.pt",
      os.path.join('weights', 'pinpoint3d_small.pt')]),
])
def test_a_node_process_logs_the_weights_it_runs(args, expected, tmp_path):
    run_node_and_check_log(args, expected, tmp_path)


def test_under_a_namespace_clicks_still_come_from_the_absolute_topic(tmp_path):
    run_node_and_check_log(['-r', '__ns:=/robot1'], ["clicks '/clicked_point'"], tmp_path,
                           node_name='/robot1/pinpoint3d_node', click_topic='/clicked_point')


def run_node_and_check_log(args, expected, tmp_path, node_name='/pinpoint3d_node',
                           click_topic=None):
    """Start a node process with ``args``; check its log and optionally its click topic."""
    domain = fresh_domain_id()
    node = Process('pinpoint3d_ros.node', ['--ros-args', '-p', 'device:=cpu', *args],
                   domain_id=domain, log_path=str(tmp_path / 'node.log'))
    client = Client(domain)
    try:
        srv = client.node.create_client(srvs.ClickSegment, node_name + '/click_segment')
        assert srv.wait_for_service(timeout_sec=90), node.log()
        if click_topic:
            from geometry_msgs.msg import PointStamped
            pub = client.node.create_publisher(PointStamped, click_topic, 10)
            assert client.spin_until(lambda: pub.get_subscription_count() == 1, 10)
        assert client.spin_until(lambda: 'ready:' in node.log(), 10), node.log()
        log = node.log()
        for text in expected:
            assert text in log, log
        assert 'UNTRAINED' not in log and 'model not loaded' not in log
    finally:
        client.close()
        node.stop()


@pytest.fixture
def weights_absent(monkeypatch):
    """Make every preset's weights file read as not installed (CheckpointError, as the core)."""
    from pinpoint3d_core import presets
    from pinpoint3d_core.errors import CheckpointError

    def absent(name):
        raise CheckpointError(f'no trained weights found (looked for {get_preset(name).weights})')
    monkeypatch.setattr(presets, 'preset_weights', absent)


def test_absent_weights_run_the_presets_baseline_and_every_report_says_so(weights_absent):
    import numpy as np
    import rclpy
    from rclpy.parameter import Parameter
    from pinpoint3d_ros import conversions
    from pinpoint3d_ros.node import Pinpoint3DNode
    from std_msgs.msg import Header
    msgs = pytest.importorskip('pinpoint3d.msg')
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=fresh_domain_id())
    node = Pinpoint3DNode(context=context, parameter_overrides=[
        Parameter('preset', value='tabletop'), Parameter('device', value='cpu')])
    try:
        assert node._weights_note.startswith('NO WEIGHTS (pinpoint3d_tabletop.pt not found)')
        state = node.model_state()
        assert state['loaded'] and state['baseline'] and not state['untrained']
        rng = np.random.default_rng(0)
        points = np.r_[rng.uniform([-0.3, -0.3, 0.8], [0.3, 0.3, 0.8], (3000, 3)),
                       rng.uniform([0.0, 0.0, 0.7], [0.05, 0.05, 0.79], (500, 3))]
        req = srvs.ClickSegment.Request(reset=True)
        req.cloud = conversions.arrays_to_cloud(Header(frame_id='camera_depth_optical_frame'),
                                                points.astype(np.float32))
        click = msgs.Click(object_id=1, positive=True)
        click.position.x, click.position.y, click.position.z = (float(v) for v in points[-1])
        req.clicks = [click]
        resp = node._on_click_segment(req, srvs.ClickSegment.Response())
        assert resp.success, resp.message
        assert "NO WEIGHTS: the preset's non-learned baseline" in resp.message
    finally:
        node.destroy_node()
        rclpy.try_shutdown(context=context)
