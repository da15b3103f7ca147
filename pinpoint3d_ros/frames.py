"""
Bring clicks into the cloud's frame with TF.

RViz publishes /clicked_point in its fixed frame and stamps it with wall time, so the transform
is looked up at the *cloud's* stamp (the scene the user clicked on). The Python module tf2_ros
comes from the ROS package tf2_ros_py (not tf2_ros, which is the C++ library); the ROS 2 wheels
on PyPI have neither. Without it only clicks already in the cloud frame can be used, any other
frame is refused with a message that says what to install, and the node logs that once.
"""

import importlib.metadata
import os

import numpy as np

from pinpoint3d_core.errors import ClickError

try:  # tf2_ros_py is in every desktop/ros_base install; the PyPI wheels do not have it
    import tf2_ros
    _TF2_IMPORT_ERROR = None
except ImportError as _exc:  # pragma: no cover - depends on the installation
    tf2_ros = None
    _TF2_IMPORT_ERROR = _exc


class FrameError(ClickError):
    """A click's frame cannot be transformed into the cloud's frame."""


def quaternion_matrix(x, y, z, w):
    """Return the 3x3 rotation matrix of a (normalised) quaternion in ROS (x, y, z, w) order."""
    q = np.array([w, x, y, z], dtype=np.float64)
    norm = np.dot(q, q)
    if norm < 1e-12:
        raise FrameError('transform has a zero quaternion; its rotation is undefined.')
    w, x, y, z = q * np.sqrt(2.0 / norm)
    return np.array([
        [1.0 - y * y - z * z, x * y - z * w, x * z + y * w],
        [x * y + z * w, 1.0 - x * x - z * z, y * z - x * w],
        [x * z - y * w, y * z + x * w, 1.0 - x * x - y * y],
    ])


def apply_transform(transform, points):
    """Apply a geometry_msgs Transform (or TransformStamped) to (N, 3) points."""
    tf = getattr(transform, 'transform', transform)
    r = tf.rotation
    rot = quaternion_matrix(r.x, r.y, r.z, r.w)
    t = np.array([tf.translation.x, tf.translation.y, tf.translation.z])
    return np.asarray(points, dtype=np.float64) @ rot.T + t


class ClickTransformer:
    """
    Transforms click positions into the cloud frame, through a tf2 buffer when there is one.

    ``buffer`` is anything with ``lookup_transform(target, source, time, timeout)`` (a
    tf2_ros.Buffer, or a fake in tests). With ``node`` and tf2_ros importable, a Buffer and
    TransformListener are created on that node.
    """

    def __init__(self, node=None, buffer=None, timeout_s=0.2):
        self.timeout_s = float(timeout_s)
        self.buffer = buffer
        self._listener = None
        if buffer is None and node is not None:
            if tf2_ros is not None:
                self.buffer = tf2_ros.Buffer()
                self._listener = tf2_ros.TransformListener(self.buffer, node, spin_thread=False)
            else:   # said once at start-up, not only when the first foreign click arrives
                node.get_logger().warning(
                    f'{tf2_missing_reason()}: clicks are used only when they are already in '
                    "the cloud's frame.")

    @property
    def available(self):
        """Return True when clicks in foreign frames can be transformed."""
        return self.buffer is not None

    def to_cloud_frame(self, points, source_frame, cloud_frame, stamp):
        """
        Return (N, 3) float64 points in ``cloud_frame``; raise FrameError if impossible.

        An empty ``source_frame`` means the clicks are already in the cloud frame.
        """
        points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        if not source_frame or source_frame == cloud_frame:
            return points
        if not cloud_frame:
            raise FrameError(
                f"the cloud has no frame_id, so clicks in frame '{source_frame}' cannot be "
                'related to it; set header.frame_id on the cloud.')
        if self.buffer is None:
            raise FrameError(
                f"click frame '{source_frame}' differs from the cloud frame '{cloud_frame}' "
                f"and {tf2_missing_reason()}; or send clicks in '{cloud_frame}' (an empty "
                "frame_id also means the cloud frame), or set RViz's Fixed Frame to it.")
        transform = self.lookup(cloud_frame, source_frame, stamp,
                                f"'{source_frame}' to '{cloud_frame}'")
        return apply_transform(transform, points)

    def lookup(self, target_frame, source_frame, stamp, what, advice=''):
        """
        Return the TF transform taking ``source_frame`` into ``target_frame`` at ``stamp``.

        A FrameError says ``what`` could not be had ("no transform from <what> ...") and why.
        """
        try:
            return self.buffer.lookup_transform(
                target_frame, source_frame, stamp, timeout=_duration(self.timeout_s))
        except Exception as exc:  # tf2 raises several exception types; all mean the same here
            raise FrameError(
                f"no transform from {what} at the cloud's stamp within {self.timeout_s:.2f} s "
                f'({type(exc).__name__}: {exc}); check that the TF tree connects both '
                f'frames{advice}.') from exc


class ResultFrame:
    """A rigid transform of results from the cloud frame into a target frame (REP 103)."""

    def __init__(self, frame_id, rotation=None, translation=None):
        self.frame_id = frame_id
        self.rotation = np.eye(3) if rotation is None else np.asarray(rotation, np.float64)
        self.translation = np.zeros(3) if translation is None else np.asarray(translation,
                                                                              np.float64)

    @property
    def identity(self):
        """Return True when the transform changes nothing (results stay in the cloud frame)."""
        return bool(np.array_equal(self.rotation, np.eye(3))
                    and not np.any(self.translation))

    def apply(self, points):
        """Return (N, 3) points in the target frame (float32 in, float32 out; NaN stays NaN)."""
        points = np.asarray(points)
        if self.identity:
            return points
        out = points.astype(np.float64) @ self.rotation.T + self.translation
        return out.astype(points.dtype if points.dtype.kind == 'f' else np.float64)


def results_frame(transformer, target_frame, cloud_frame, stamp):
    """
    Return the ResultFrame that takes results from ``cloud_frame`` into ``target_frame``.

    An empty ``target_frame`` (or the cloud's own) keeps the cloud frame. Raises FrameError
    naming both frames when the transform cannot be had (no tf2, no TF path, timeout).
    """
    if not target_frame or target_frame == cloud_frame:
        return ResultFrame(cloud_frame)
    if not cloud_frame:
        raise FrameError(f"target_frame is '{target_frame}' but the cloud has no frame_id; "
                         'set header.frame_id on the cloud.')
    if transformer.buffer is None:
        raise FrameError(
            f"results were asked in target_frame '{target_frame}' but the cloud is in "
            f"'{cloud_frame}' and {tf2_missing_reason()}; or set target_frame:='' for results "
            "in the cloud's frame.")
    transform = transformer.lookup(
        target_frame, cloud_frame, stamp,
        f"the cloud frame '{cloud_frame}' to target_frame '{target_frame}'",
        " (e.g. the robot's URDF and a static transform to the camera)")
    tf = getattr(transform, 'transform', transform)
    r, t = tf.rotation, tf.translation
    return ResultFrame(target_frame, quaternion_matrix(r.x, r.y, r.z, r.w), (t.x, t.y, t.z))


def tf2_missing_reason(distro=None, pypi_wheels=None):
    """
    Say why tf2_ros does not import here and what to install.

    ``distro`` defaults to $ROS_DISTRO; ``pypi_wheels`` to whether rclpy came from the PyPI
    wheels (the ``ros-rclpy`` distribution), which have no tf2 at all.
    """
    distro = os.environ.get('ROS_DISTRO', '') if distro is None else distro
    if pypi_wheels is None:
        try:
            importlib.metadata.version('ros-rclpy')
            pypi_wheels = True
        except importlib.metadata.PackageNotFoundError:
            pypi_wheels = False
    if pypi_wheels and not distro:
        where = ('this environment runs the ROS 2 wheels from PyPI, which have no tf2; use a '
                 'ROS 2 install (apt) with ros-<distro>-tf2-ros-py for clicks in other frames')
    else:
        package = f'ros-{distro or "<distro>"}-tf2-ros-py'
        where = (f'install {package} (sudo apt install {package}; `rosdep install` does it '
                 'from package.xml), then restart the node')
    detail = f' ({_TF2_IMPORT_ERROR})' if _TF2_IMPORT_ERROR is not None else ''
    return f'tf2_ros is not available: the Python module tf2_ros{detail} is missing; {where}'


def _duration(seconds):
    """Return an rclpy Duration (tf2 wants one), or the float where rclpy is absent."""
    try:
        from rclpy.duration import Duration
    except ImportError:  # pragma: no cover
        return seconds
    return Duration(nanoseconds=int(seconds * 1e9))
