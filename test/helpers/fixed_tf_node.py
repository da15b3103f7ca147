"""
pinpoint3d_node with fixed transforms in place of TF (tf2_ros is not on PyPI), in its own process.

  python -m helpers.fixed_tf_node PARENT CHILD X Y Z QX QY QZ QW -- --ros-args ...

The node is the real one; only its transform source is injected: ``lookup_transform(target,
source, ...)`` answers for the one given pair (either way round) and raises like tf2 for any
other, as tf2_ros.Buffer does when the tree does not connect two frames.
"""

import sys

from geometry_msgs.msg import TransformStamped
import numpy as np
from pinpoint3d_ros import frames
from pinpoint3d_ros.node import Pinpoint3DNode
import rclpy
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor


class LookupException(Exception):
    """What tf2 raises when no path joins two frames."""


class FixedTransforms:
    """One transform PARENT <- CHILD (a point in CHILD maps to PARENT by it), both ways."""

    def __init__(self, parent, child, translation, quaternion):
        self.parent, self.child = parent, child
        self.rotation = frames.quaternion_matrix(*quaternion)
        self.translation = np.asarray(translation, np.float64)

    def lookup_transform(self, target, source, time, timeout=None):
        """Return the TransformStamped taking points from ``source`` into ``target``."""
        if (target, source) == (self.parent, self.child):
            rot, trans = self.rotation, self.translation
        elif (target, source) == (self.child, self.parent):
            rot = self.rotation.T
            trans = -rot @ self.translation
        else:
            raise LookupException(f'"{target}" passed to lookupTransform argument target_frame '
                                  'does not exist, or no path joins it to '
                                  f'"{source}"')
        out = TransformStamped()
        out.header.frame_id, out.child_frame_id = target, source
        t = out.transform.translation
        t.x, t.y, t.z = (float(v) for v in trans)
        r = out.transform.rotation
        r.x, r.y, r.z, r.w = (float(v) for v in _quaternion(rot))
        return out


def _quaternion(rot):
    from pinpoint3d_core.boxes import rotation_to_quaternion
    return rotation_to_quaternion(rot)


def main(argv):
    """Start the node with the transform of argv[1:10]; the rest goes to rclpy."""
    parent, child = argv[1], argv[2]
    values = [float(v) for v in argv[3:10]]
    rest = argv[11:] if len(argv) > 10 and argv[10] == '--' else argv[10:]
    rclpy.init(args=[argv[0]] + rest)
    node = None
    try:
        node = Pinpoint3DNode(tf_buffer=FixedTransforms(parent, child, values[:3], values[3:]))
        executor = MultiThreadedExecutor(num_threads=4)
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    main(sys.argv)
