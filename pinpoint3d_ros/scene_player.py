"""
Publish a synthetic (or saved) labelled scan as a PointCloud2, like a sensor driver would.

The scene comes from ``pinpoint3d_core.synth.generate_scene`` (indoor RGB-D, LiDAR or a
tabletop RGB-D frame in the camera optical frame) or from a scene .npz (``--npz``). ``--save``
writes the scene, ground truth included, so a client can score the segmentation;
``--generate-only`` stops after that.
"""

import argparse
import os
import sys

from pinpoint3d_ros.conversions import arrays_to_cloud
from rclpy.node import Node
from rclpy.qos import QoSDurabilityPolicy, QoSProfile, QoSReliabilityPolicy
from sensor_msgs.msg import PointCloud2
from std_msgs.msg import Header


def make_scene(args):
    """Load ``--npz`` or generate a scene; returns a pinpoint3d_core.scene.Scene."""
    from pinpoint3d_core.scene import load_scene
    if args.npz:
        return load_scene(args.npz)
    from pinpoint3d_core.synth import generate_scene
    return generate_scene(kind=args.sensor, seed=args.seed, mode=args.mode, size=args.size)


OPTICAL_FRAME = 'camera_depth_optical_frame'


def default_frame(scene):
    """
    Return the frame_id a driver would give this scene's cloud.

    Camera-frame scenes (synthetic tabletop frames, real mOSD scans: x right, y down, z
    forward) are published in the depth camera's optical frame (REP 103), the rest in 'map'.
    """
    meta = scene.meta or {}
    if meta.get('kind') == 'tabletop' or 'optical' in str(meta.get('frame', '')):
        return OPTICAL_FRAME
    return 'map'


def save_scene_atomic(path, scene):
    """
    Write the scene .npz so that a polling reader never sees part of it; return the path.

    The demo planner starts at the same time as the player and reads this file as soon as it
    exists (tools/demo.sh, demo.launch.py run_planner:=true).
    """
    from pinpoint3d_core.atomic_files import atomic_path
    from pinpoint3d_core.scene import save_scene
    path = os.fspath(path)
    if not path.endswith('.npz'):
        path += '.npz'
    with atomic_path(path) as tmp:
        save_scene(tmp, scene)
    return path


def scene_cloud(scene, frame_id, stamp=None):
    """Build the PointCloud2 of a scene (x, y, z, rgb and/or intensity), scene point order."""
    header = Header(frame_id=frame_id)
    if stamp is not None:
        header.stamp = stamp
    return arrays_to_cloud(header, scene.coords, scene.colors, scene.intensity)


class ScenePlayer(Node):
    """Re-publish one scan at a fixed rate with fresh stamps (a static scene, a live driver)."""

    def __init__(self, scene, frame_id='map', rate=1.0, count=0):
        super().__init__('scene_player')
        qos = QoSProfile(depth=1, reliability=QoSReliabilityPolicy.RELIABLE,
                         durability=QoSDurabilityPolicy.VOLATILE)
        self._pub = self.create_publisher(PointCloud2, 'points', qos)
        self._msg = scene_cloud(scene, frame_id)
        self._count = count
        self.published = 0
        self.create_timer(1.0 / rate, self._tick)
        self.get_logger().info(
            f"playing {len(scene)} points in frame '{frame_id}' on "
            f"'{self.resolve_topic_name('points')}' at {rate:g} Hz")

    def _tick(self):
        if self._count and self.published >= self._count:
            raise SystemExit(0)
        self._msg.header.stamp = self.get_clock().now().to_msg()
        self._pub.publish(self._msg)
        self.published += 1


def build_parser():
    """Return the command-line parser."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--sensor', choices=('indoor', 'lidar', 'tabletop'), default='indoor',
                        help='generator kind: indoor RGB-D, LiDAR, or a tabletop RGB-D frame')
    parser.add_argument('--seed', type=int, default=7)
    parser.add_argument('--mode', choices=('scan', 'single'), default='scan',
                        help='indoor: fused scan or one RGB-D frame')
    parser.add_argument('--size', choices=('normal', 'small'), default='normal')
    parser.add_argument('--npz', help='play this scene file instead of generating one')
    parser.add_argument('--save', help='write the scene (.npz, with ground truth) here')
    parser.add_argument('--generate-only', action='store_true',
                        help='write --save and exit without ROS')
    parser.add_argument('--frame', default='',
                        help=f"frame_id of the published cloud (default: '{OPTICAL_FRAME}' for "
                             "camera-frame scenes such as tabletop, else 'map')")
    parser.add_argument('--rate', type=float, default=1.0, help='publish rate in Hz')
    parser.add_argument('--count', type=int, default=0, help='stop after N messages (0: never)')
    return parser


def main(argv=None):
    """Generate or load the scene, optionally save it, then publish until interrupted."""
    import rclpy
    from rclpy.executors import ExternalShutdownException
    argv = sys.argv if argv is None else argv
    args_without_ros = rclpy.utilities.remove_ros_args(args=argv)[1:]
    args = build_parser().parse_args(args_without_ros)
    scene = make_scene(args)
    if args.save:
        path = save_scene_atomic(args.save, scene)
        print(f'scene_player: wrote {path} ({len(scene)} points)', flush=True)
    if args.generate_only:
        return 0
    rclpy.init(args=argv)
    try:
        node = ScenePlayer(scene, args.frame or default_frame(scene), args.rate, args.count)
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException, SystemExit):
        pass
    finally:
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
