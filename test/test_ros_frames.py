"""Click transforms into the cloud frame, checked against transforms3d with a fake tf buffer."""

from geometry_msgs.msg import TransformStamped
import numpy as np
from pinpoint3d_core.errors import ClickError
from pinpoint3d_ros import frames
import pytest
import transforms3d


def make_transform(translation, euler_xyz):
    """Build a TransformStamped from a translation and static-axes xyz Euler angles."""
    w, x, y, z = transforms3d.euler.euler2quat(*euler_xyz, axes='sxyz')
    msg = TransformStamped()
    msg.transform.translation.x, msg.transform.translation.y, msg.transform.translation.z = (
        float(v) for v in translation)
    r = msg.transform.rotation
    r.x, r.y, r.z, r.w = float(x), float(y), float(z), float(w)
    return msg


class FakeBuffer:
    """A tf2 buffer holding fixed transforms keyed by (target, source); records lookups."""

    def __init__(self, transforms):
        self.transforms = transforms
        self.lookups = []

    def lookup_transform(self, target, source, time, timeout=None):
        self.lookups.append((target, source, time, timeout))
        if (target, source) not in self.transforms:
            raise LookupError(f'"{source}" passed to lookupTransform does not exist')
        return self.transforms[(target, source)]


@pytest.mark.parametrize('seed', range(5))
def test_quaternion_matrix_matches_transforms3d(seed):
    rng = np.random.default_rng(seed)
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    w, x, y, z = q
    np.testing.assert_allclose(frames.quaternion_matrix(x, y, z, w),
                               transforms3d.quaternions.quat2mat(q), atol=1e-12)


def test_quaternion_matrix_normalises_and_rejects_zero():
    np.testing.assert_allclose(frames.quaternion_matrix(0, 0, 0, 2.0), np.eye(3))
    with pytest.raises(frames.FrameError):
        frames.quaternion_matrix(0, 0, 0, 0)


def test_transform_through_fake_buffer_matches_affine():
    translation, euler = (0.5, -1.0, 2.0), (0.1, -0.4, 1.2)
    buffer = FakeBuffer({('camera', 'map'): make_transform(translation, euler)})
    tf = frames.ClickTransformer(buffer=buffer, timeout_s=0.3)
    pts = np.random.default_rng(0).normal(size=(6, 3))
    stamp = object()
    out = tf.to_cloud_frame(pts, 'map', 'camera', stamp)
    affine = transforms3d.affines.compose(
        translation, transforms3d.euler.euler2mat(*euler, axes='sxyz'), np.ones(3))
    expect = (affine @ np.c_[pts, np.ones(6)].T).T[:, :3]
    np.testing.assert_allclose(out, expect, atol=1e-12)
    target, source, time, timeout = buffer.lookups[0]
    assert (target, source, time) == ('camera', 'map', stamp)   # looked up at the cloud stamp
    assert timeout.nanoseconds == 300_000_000


def test_same_or_empty_frame_needs_no_tf():
    tf = frames.ClickTransformer(buffer=None)
    pts = np.array([[1.0, 2.0, 3.0]])
    np.testing.assert_array_equal(tf.to_cloud_frame(pts, 'camera', 'camera', None), pts)
    np.testing.assert_array_equal(tf.to_cloud_frame(pts, '', 'camera', None), pts)


def test_foreign_frame_without_tf2_is_refused_with_reason():
    tf = frames.ClickTransformer(buffer=None)
    assert not tf.available
    with pytest.raises(ClickError, match='tf2_ros is not available') as info:
        tf.to_cloud_frame([[0, 0, 0]], 'map', 'camera', None)
    assert "'camera'" in str(info.value) and "'map'" in str(info.value)


def test_missing_transform_names_both_frames():
    tf = frames.ClickTransformer(buffer=FakeBuffer({}))
    with pytest.raises(frames.FrameError, match="no transform from 'odom' to 'camera'"):
        tf.to_cloud_frame([[0, 0, 0]], 'odom', 'camera', None)


def test_cloud_without_frame_cannot_take_foreign_clicks():
    tf = frames.ClickTransformer(buffer=FakeBuffer({}))
    with pytest.raises(frames.FrameError, match='no frame_id'):
        tf.to_cloud_frame([[0, 0, 0]], 'map', '', None)


def test_missing_tf2_names_the_package_to_install_on_a_ros_install():
    reason = frames.tf2_missing_reason(distro='jazzy', pypi_wheels=False)
    assert 'ros-jazzy-tf2-ros-py' in reason and 'PyPI' not in reason
    assert 'ros-<distro>-tf2-ros-py' in frames.tf2_missing_reason(distro='', pypi_wheels=False)
    # Only the PyPI wheels themselves are blamed on the PyPI wheels.
    assert 'wheels from PyPI' in frames.tf2_missing_reason(distro='', pypi_wheels=True)
    assert 'ros-kilted-tf2-ros-py' in frames.tf2_missing_reason(distro='kilted', pypi_wheels=True)


def test_transformer_without_tf2_warns_once_at_start_with_the_fix(monkeypatch):
    monkeypatch.setattr(frames, 'tf2_ros', None)
    said = []
    logger = type('L', (), {'warning': lambda self, text: said.append(text)})()
    node = type('N', (), {'get_logger': lambda self: logger})()
    tf = frames.ClickTransformer(node=node)
    assert not tf.available
    assert len(said) == 1 and 'tf2-ros-py' in said[0] and "cloud's frame" in said[0]
