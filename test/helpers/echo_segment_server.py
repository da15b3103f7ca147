"""
A minimal ClickSegment server for the interface round-trip test (a separate process).

It answers with the request's cloud relabelled (object_id = 1 for every point) so the client can
check that a 100k-point cloud crossed DDS both ways intact.
"""

import sys

import numpy as np
from pinpoint3d.msg import SegmentedObject
from pinpoint3d.srv import ClickSegment
import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from sensor_msgs.msg import PointField


class EchoSegmentServer(Node):
    """Serves ~/click_segment by echoing the cloud with label fields added."""

    def __init__(self):
        super().__init__('echo_segment_server')
        self.create_service(ClickSegment, '~/click_segment', self.on_request)

    def on_request(self, request, response):
        cloud = request.cloud
        n = cloud.width * cloud.height
        xyz = np.frombuffer(bytes(cloud.data), dtype='<f4').reshape(n, -1)[:, :3]
        out = np.zeros((n, 6), dtype='<f4')
        out[:, :3] = xyz
        out.view('<u4')[:, 4] = 1
        out.view('<u4')[:, 5] = len(request.clicks)
        lab = response.labeled_cloud
        lab.header = cloud.header
        lab.height, lab.width = 1, n
        lab.fields = [PointField(name=name, offset=4 * i, datatype=dt, count=1) for i, (name, dt)
                      in enumerate([('x', 7), ('y', 7), ('z', 7), ('rgb', 7),
                                    ('object_id', 6), ('part_id', 6)])]
        lab.point_step, lab.row_step, lab.is_dense = 24, 24 * n, True
        lab.data = out.tobytes()
        obj = SegmentedObject(object_id=1, score=1.0)
        obj.indices = list(range(0, n, 1000))
        response.objects = [obj]
        response.success = True
        response.message = f'{n} points, {len(request.clicks)} clicks, {request.granularity}'
        return response


def main():
    rclpy.init()
    node = EchoSegmentServer()
    print('ready', flush=True)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
