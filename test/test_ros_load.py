"""
Bounded loopback load test (issue #16): 16 clients x 20 calls against one node process.

Every call must be answered, and every answer is either a correct result for that client's
own clicks (its interaction, its click count, its object only, each of its clicked points
inside its mask) or ``success: false`` with the busy reason. The node runs the shipped weights
with max_queue 8, so both kinds of answer occur. Bounded: 320 calls, one cloud of 3000 points,
a private domain on loopback; answer counts are printed, no timing is asserted.
"""

import re

import numpy as np
from pinpoint3d_ros import conversions
from pinpoint3d_ros.testing import Client, floor_with_two_boxes, fresh_domain_id, Process
import pytest
from sensor_msgs.msg import PointCloud2
from std_msgs.msg import Header

msgs = pytest.importorskip('pinpoint3d.msg', reason='interfaces not built: run `make build`')
srvs = pytest.importorskip('pinpoint3d.srv', reason='interfaces not built: run `make build`')
pytest.importorskip('pinpoint3d_core.session', reason='pinpoint3d_core.session missing')

CLIENTS, CALLS = 16, 20
NODE = '/pinpoint3d_node'


def test_sixteen_clients_twenty_calls_each_every_answer_correct_or_busy(tmp_path):
    domain = fresh_domain_id()
    node = Process('pinpoint3d_ros.node', ['--ros-args', '-p', 'max_queue:=8'],
                   domain_id=domain, log_path=str(tmp_path / 'node.log'))
    client = Client(domain, 'pinpoint3d_load')
    try:
        srvs_ = [client.node.create_client(srvs.ClickSegment, NODE + '/click_segment')
                 for _ in range(CLIENTS)]
        assert all(s.wait_for_service(timeout_sec=90) for s in srvs_), node.log()
        pts = floor_with_two_boxes()
        header = Header(frame_id='map')
        header.stamp.sec = 42
        cloud = conversions.arrays_to_cloud(header, pts)
        pub = client.node.create_publisher(PointCloud2, '/points', 5)
        client.spin_until(lambda: pub.get_subscription_count() > 0, 10)
        probe = srvs.ClickSegment.Request(interaction_id='probe', reset=True)
        probe.cloud_newer_than.sec = 41
        for _ in range(100):   # until the node holds the cloud
            pub.publish(cloud)
            resp = client.call(srvs_[0], probe)
            if resp is not None and resp.success:
                break
        assert resp.success, resp.message
        targets = np.flatnonzero(pts[:, 2] > 0.05)   # points on the two boxes

        def make(k, call):
            index = int(targets[(k * CALLS + call) % len(targets)])
            req = srvs.ClickSegment.Request(interaction_id=f'load{k}', reset=call == 0)
            c = msgs.Click(object_id=k + 1, part_id=0, positive=True)
            c.position.x, c.position.y, c.position.z = (float(v) for v in pts[index])
            req.clicks = [c]
            return req, index

        issued = [0] * CLIENTS
        inflight = {}
        kept = {k: [] for k in range(CLIENTS)}   # the client's successful clicks so far
        answers = {'ok': 0, 'busy': 0}
        bad = []
        for k in range(CLIENTS):
            req, index = make(k, 0)
            inflight[k] = (srvs_[k].call_async(req), index, req.reset)
            issued[k] = 1
        rounds = 0
        while inflight and rounds < 20000:
            rounds += 1
            client.executor.spin_once(timeout_sec=0.05)
            for k in [k for k, (f, _, _) in inflight.items() if f.done()]:
                future, index, was_reset = inflight.pop(k)
                resp = future.result()
                if resp.success:
                    answers['ok'] += 1
                    history = ([] if was_reset else kept[k]) + [index]
                    lab = conversions.labeled_cloud_to_arrays(resp.labeled_cloud)[1]
                    problems = [
                        resp.interaction_id != f'load{k}',
                        resp.num_clicks != len(history),
                        resp.cloud_points != len(pts),
                        not {o.object_id for o in resp.objects} <= {k + 1},
                        any(lab[i] != k + 1 for i in history)]
                    if any(problems):
                        bad.append((k, resp.message, problems))
                    kept[k] = history
                else:
                    if re.match(r'busy: \d+ requests waiting \(max_queue 8\)', resp.message):
                        answers['busy'] += 1
                    else:
                        bad.append((k, resp.message, 'unexpected failure'))
                if issued[k] < CALLS:
                    req, index = make(k, issued[k])
                    req.reset = not kept[k]   # a client without a kept click starts over
                    inflight[k] = (srvs_[k].call_async(req), index, req.reset)
                    issued[k] += 1
        assert not inflight, f'{len(inflight)} calls never answered'
        assert not bad, bad[:5]
        assert answers['ok'] + answers['busy'] == CLIENTS * CALLS
        assert answers['ok'] > 0 and node.alive()
        print(f"\nload: {CLIENTS} clients x {CALLS} calls: {answers['ok']} correct results, "
              f"{answers['busy']} busy answers, 0 unanswered, 0 wrong")
    finally:
        client.close()
        node.stop()
