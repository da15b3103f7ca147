"""
Print the latest vision_msgs/Detection3DArray on a topic as JSON (a separate process).

  python -m helpers.detections_listener TOPIC STAMP_SEC STAMP_NANOSEC TIMEOUT_S

vision_msgs is a generated stand-in where the real package is absent, and its libraries must be
on the paths when the interpreter starts, hence a process of its own. The topic is latched
(transient local), so the listener may start after the message was published; it waits for the
one with the given stamp.
"""

import json
import sys
import time

import rclpy
from rclpy.qos import QoSDurabilityPolicy, QoSProfile, QoSReliabilityPolicy


def _pose(p):
    return [p.position.x, p.position.y, p.position.z,
            p.orientation.x, p.orientation.y, p.orientation.z, p.orientation.w]


def dump(msg):
    """Return the fields of a Detection3DArray as plain lists and dicts."""
    return {
        'frame': msg.header.frame_id,
        'stamp': [msg.header.stamp.sec, msg.header.stamp.nanosec],
        'detections': [{
            'id': d.id, 'frame': d.header.frame_id,
            'center': _pose(d.bbox.center), 'size': [d.bbox.size.x, d.bbox.size.y, d.bbox.size.z],
            'results': [[r.hypothesis.class_id, r.hypothesis.score] for r in d.results],
        } for d in msg.detections]}


def main(argv):
    """Wait for the array with the wanted stamp and print it (exit 1 on timeout)."""
    from vision_msgs.msg import Detection3DArray
    topic, sec, nanosec, timeout = argv[1], int(argv[2]), int(argv[3]), float(argv[4])
    rclpy.init()
    node = rclpy.create_node('pinpoint3d_detections_listener')
    got = []
    qos = QoSProfile(depth=1, reliability=QoSReliabilityPolicy.RELIABLE,
                     durability=QoSDurabilityPolicy.TRANSIENT_LOCAL)
    node.create_subscription(Detection3DArray, topic, got.append, qos)
    deadline = time.monotonic() + timeout
    wanted = [m for m in got if (m.header.stamp.sec, m.header.stamp.nanosec) == (sec, nanosec)]
    while not wanted and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.1)
        wanted = [m for m in got
                  if (m.header.stamp.sec, m.header.stamp.nanosec) == (sec, nanosec)]
    node.destroy_node()
    rclpy.try_shutdown()
    if not wanted:
        print(json.dumps({'error': f'no Detection3DArray stamped {sec}.{nanosec} on {topic} '
                                   f'within {timeout} s ({len(got)} others)'}))
        return 1
    print(json.dumps(dump(wanted[-1])))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
