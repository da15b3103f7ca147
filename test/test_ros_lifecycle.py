"""
The lifecycle node in its own process, driven through lifecycle_msgs services over DDS.

configure loads the weights (a failure leaves it unconfigured with the reason in the log),
activate offers the services, deactivate removes them, cleanup releases the model; the model
parameters change only while unconfigured. /diagnostics reports the state throughout.
"""

import time

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from lifecycle_msgs.msg import State, Transition
from lifecycle_msgs.srv import ChangeState, GetState
import numpy as np
from pinpoint3d_ros import conversions
from pinpoint3d_ros.testing import Client, fresh_domain_id, Process
import pytest
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from sensor_msgs.msg import PointCloud2
from std_msgs.msg import Header

srvs = pytest.importorskip('pinpoint3d.srv', reason='interfaces not built: run `make build`')
msgs = pytest.importorskip('pinpoint3d.msg', reason='interfaces not built: run `make build`')

NODE = '/pinpoint3d_node'
MISSING = '/nonexistent/pinpoint3d_lifecycle_test.pt'


@pytest.fixture(scope='module')
def ros(tmp_path_factory):
    domain = fresh_domain_id()
    log = str(tmp_path_factory.mktemp('lifecycle') / 'node.log')
    node = Process('pinpoint3d_ros.lifecycle',
                   ['--ros-args', '-p', f'checkpoint:={MISSING}', '-p',
                    'diagnostics_period:=0.2'], domain_id=domain, log_path=log)
    client = Client(domain)
    env = type('Ros', (), {})()
    env.node, env.client = node, client
    env.change = client.node.create_client(ChangeState, NODE + '/change_state')
    env.get = client.node.create_client(GetState, NODE + '/get_state')
    env.params = client.node.create_client(SetParameters, NODE + '/set_parameters')
    env.srv = client.node.create_client(srvs.ClickSegment, NODE + '/click_segment')
    env.diagnostics = client.collector(DiagnosticArray, '/diagnostics')
    env.cloud_pub = client.node.create_publisher(PointCloud2, '/points', 5)
    env.objects_sub = client.node.create_subscription(
        msgs.SegmentedObjects, NODE + '/objects', lambda msg: None, 1)
    try:
        assert env.change.wait_for_service(timeout_sec=90), node.log()
        yield env
    finally:
        client.close()
        node.stop()


def state(ros):
    return ros.client.call(ros.get, GetState.Request(), timeout=30).current_state.label


def transition(ros, transition_id):
    req = ChangeState.Request()
    req.transition.id = transition_id
    return ros.client.call(ros.change, req, timeout=120).success


def set_param(ros, name, value):
    req = SetParameters.Request()
    req.parameters = [Parameter(name=name, value=ParameterValue(
        type=ParameterType.PARAMETER_STRING, string_value=value))]
    assert ros.params.wait_for_service(timeout_sec=10)
    return ros.client.call(ros.params, req).results[0]


def service_up(ros, up, timeout=15.0):
    """Wait until ~/click_segment is (or is no longer) offered; return whether it is."""
    ros.client.spin_until(lambda: ros.srv.service_is_ready() == up, timeout)
    return ros.srv.service_is_ready()


def model_status(ros, timeout=10.0):
    """Return the model DiagnosticStatus of a report made after this call (wall-time stamps)."""
    since = time.time()

    def fresh():
        return [r for r in ros.diagnostics
                if r.header.stamp.sec + 1e-9 * r.header.stamp.nanosec >= since]
    assert ros.client.spin_until(fresh, timeout), 'no /diagnostics report'
    report = fresh()[-1]
    del ros.diagnostics[:]
    return next(s for s in report.status if s.name.endswith(': model'))


def values(status):
    return {kv.key: kv.value for kv in status.values}


def counts(ros, subscribers, publishers, timeout=15.0):
    """Wait until the node's subscriptions to /points and publishers of ~/objects are so."""
    def now():
        return (ros.cloud_pub.get_subscription_count(),
                ros.client.node.count_publishers(NODE + '/objects'))
    ros.client.spin_until(lambda: now() == (subscribers, publishers), timeout)
    return now()


def segment(ros):
    points = np.random.default_rng(0).uniform(-1, 1, (2000, 3)).astype(np.float32)
    req = srvs.ClickSegment.Request()
    req.reset = True
    req.cloud = conversions.arrays_to_cloud(Header(frame_id='map'), points)
    click = msgs.Click(object_id=1, positive=True)
    click.position.x, click.position.y, click.position.z = (float(v) for v in points[0])
    req.clicks = [click]
    return ros.client.call(ros.srv, req, timeout=120)


def test_starts_unconfigured_without_services(ros):
    assert state(ros) == 'unconfigured'
    assert not service_up(ros, False, timeout=2)
    assert counts(ros, 0, 0, timeout=2) == (0, 0)
    status = model_status(ros)
    assert status.level == DiagnosticStatus.WARN
    assert values(status)['lifecycle state'] == 'unconfigured'
    assert values(status)['loaded'] == 'false'


def test_failed_configure_stays_unconfigured_and_says_why(ros):
    assert not transition(ros, Transition.TRANSITION_CONFIGURE)
    assert state(ros) == 'unconfigured'
    assert ros.client.spin_until(lambda: 'pinpoint3d_lifecycle_test.pt' in ros.node.log(), 10)
    assert 'model not loaded' in ros.node.log()


def test_model_parameters_change_while_unconfigured_then_configure_and_activate(ros):
    assert set_param(ros, 'checkpoint', 'untrained').successful
    assert set_param(ros, 'device', 'cpu').successful
    assert transition(ros, Transition.TRANSITION_CONFIGURE)
    assert state(ros) == 'inactive'
    assert not service_up(ros, False, timeout=2)   # configured is not serving
    assert counts(ros, 0, 1) == (0, 1)   # publishers exist, no subscriptions yet
    refused = set_param(ros, 'device', 'auto')
    assert not refused.successful and 'unconfigured' in refused.reason
    assert transition(ros, Transition.TRANSITION_ACTIVATE)
    assert state(ros) == 'active'
    assert service_up(ros, True)
    assert counts(ros, 1, 1) == (1, 1)
    resp = segment(ros)
    assert resp.success, resp.message
    assert 'UNTRAINED' in resp.message
    status = model_status(ros)
    assert values(status)['lifecycle state'] == 'active'
    assert values(status)['loaded'] == 'true' and values(status)['device'] == 'cpu'
    assert 'UNTRAINED' in status.message   # honest about the weights
    refused = set_param(ros, 'checkpoint', MISSING)
    assert not refused.successful and "'active'" in refused.reason


def test_deactivate_removes_the_services_and_cleanup_releases_the_model(ros):
    assert transition(ros, Transition.TRANSITION_DEACTIVATE)
    assert state(ros) == 'inactive'
    assert not service_up(ros, False)
    assert counts(ros, 0, 1) == (0, 1)   # no longer subscribed to the cloud
    assert transition(ros, Transition.TRANSITION_CLEANUP)
    assert state(ros) == 'unconfigured'
    assert counts(ros, 0, 0) == (0, 0)   # publishers released too
    assert values(model_status(ros))['loaded'] == 'false'
    # unconfigured again: the parameters can change, and configure loads the new ones
    assert set_param(ros, 'checkpoint', 'untrained:small').successful
    assert transition(ros, Transition.TRANSITION_CONFIGURE)
    assert transition(ros, Transition.TRANSITION_ACTIVATE)
    assert service_up(ros, True)
    assert segment(ros).success


def test_shutdown_finalizes(ros):
    req = ChangeState.Request()
    req.transition.id = Transition.TRANSITION_ACTIVE_SHUTDOWN
    assert ros.client.call(ros.change, req, timeout=60).success
    assert ros.client.call(ros.get, GetState.Request(), timeout=30).current_state.id == (
        State.PRIMARY_STATE_FINALIZED)
    assert not service_up(ros, False)
    assert ros.node.alive()
