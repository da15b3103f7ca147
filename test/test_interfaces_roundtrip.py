"""The generated interfaces work across processes: a ClickSegment call with a 100k-point cloud."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
from pinpoint3d.msg import Click
from pinpoint3d.srv import ClickSegment
import rclpy
from sensor_msgs.msg import PointField

HERE = os.path.dirname(os.path.abspath(__file__))


def _cloud_request(n):
    rng = np.random.default_rng(0)
    xyz = rng.uniform(-5, 5, size=(n, 3)).astype('<f4')
    req = ClickSegment.Request()
    req.header.frame_id = 'map'
    req.granularity = 'both'
    req.clicks = [Click(object_id=1, part_id=0, positive=True),
                  Click(object_id=1, part_id=2, positive=True)]
    req.clicks[0].position.x = float(xyz[0, 0])
    c = req.cloud
    c.header.frame_id = 'map'
    c.height, c.width = 1, n
    c.fields = [PointField(name=a, offset=4 * i, datatype=PointField.FLOAT32, count=1)
                for i, a in enumerate('xyz')]
    c.point_step, c.row_step, c.is_dense = 12, 12 * n, True
    c.data = xyz.tobytes()
    return req, xyz


def test_click_segment_roundtrip_100k_points(ros_env):
    server = subprocess.Popen([sys.executable, os.path.join(HERE, 'helpers',
                                                            'echo_segment_server.py')],
                              env=ros_env, stdout=subprocess.PIPE, text=True)
    rclpy.init()
    node = rclpy.create_node('roundtrip_client')
    try:
        assert server.stdout.readline().strip() == 'ready'
        client = node.create_client(ClickSegment, '/echo_segment_server/click_segment')
        assert client.wait_for_service(timeout_sec=20.0), 'server did not appear over DDS'
        req, xyz = _cloud_request(100_000)
        future = client.call_async(req)
        deadline = time.monotonic() + 30.0
        while not future.done() and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.1)
        resp = future.result()
        assert resp is not None and resp.success, resp
        assert resp.message == '100000 points, 2 clicks, both'
        lab = resp.labeled_cloud
        assert (lab.width, lab.point_step) == (100_000, 24)
        assert [f.name for f in lab.fields] == ['x', 'y', 'z', 'rgb', 'object_id', 'part_id']
        arr = np.frombuffer(bytes(lab.data), dtype='<f4').reshape(-1, 6)
        np.testing.assert_array_equal(arr[:, :3], xyz)
        assert (arr.view('<u4')[:, 4] == 1).all() and (arr.view('<u4')[:, 5] == 2).all()
        assert len(resp.objects) == 1 and len(resp.objects[0].indices) == 100
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    assert server.returncode == 0
