"""Oriented boxes (pinpoint3d_core.boxes): containment, tightness, known boxes, edge cases."""

import numpy as np
from pinpoint3d_core import boxes
import pytest
import transforms3d


def random_rotation(rng):
    q = rng.normal(size=4)
    return transforms3d.quaternions.quat2mat(q / np.linalg.norm(q))


def solid_box(rng, size, n=3000):
    return (rng.random((n, 3)) - 0.5) * np.asarray(size)


def scanned_box(rng, size, n=6000):
    """Points on the three faces of a box a camera at +x+y+z sees, one face 8x denser."""
    size = np.asarray(size, float)
    faces = []
    for axis, weight in ((0, 8), (1, 1), (2, 1)):
        pts = (rng.random((n * weight // 10, 3)) - 0.5) * size
        pts[:, axis] = size[axis] / 2.0
        faces.append(pts)
    return np.concatenate(faces)


def pca_box_volume(points):
    centred = points - points.mean(axis=0)
    _, vectors = np.linalg.eigh(np.cov(centred.T))
    local = centred @ vectors
    return float(np.prod(local.max(axis=0) - local.min(axis=0)))


@pytest.mark.parametrize('seed', range(6))
def test_recovers_a_rotated_box(seed):
    rng = np.random.default_rng(seed)
    size = np.array([0.30, 0.12, 0.05])
    rot, shift = random_rotation(rng), rng.normal(size=3)
    pts = solid_box(rng, size) @ rot.T + shift
    box = boxes.oriented_box(pts)
    np.testing.assert_allclose(box.size, size, rtol=0.03)   # x = longest
    np.testing.assert_allclose(box.center, shift, atol=0.01)
    # Box axes match the true ones up to sign.
    cos = np.abs(np.sum(box.rotation * rot, axis=0))
    assert (cos > 0.995).all(), cos
    assert box.contains(pts).all()


@pytest.mark.parametrize('seed', range(4))
def test_single_view_scan_is_tighter_than_pca_and_axis_aligned(seed):
    rng = np.random.default_rng(100 + seed)
    size = np.array([0.20, 0.15, 0.10])
    pts = scanned_box(rng, size) @ random_rotation(rng).T
    box = boxes.oriented_box(pts)
    true_volume = float(np.prod(size))
    assert box.contains(pts).all()
    assert box.volume <= pca_box_volume(pts) + 1e-12
    assert box.volume <= boxes.axis_aligned_box(pts).volume + 1e-12
    assert box.volume == pytest.approx(true_volume, rel=0.03)


def test_never_larger_than_the_axis_aligned_box():
    rng = np.random.default_rng(7)
    for _ in range(20):
        pts = rng.normal(size=(200, 3)) * rng.random(3) * 2
        box = boxes.oriented_box(pts)
        assert box.contains(pts).all()
        assert box.volume <= boxes.axis_aligned_box(pts).volume + 1e-12


def test_rotation_is_proper_ordered_and_the_quaternion_matches():
    rng = np.random.default_rng(3)
    box = boxes.oriented_box(solid_box(rng, (0.1, 0.4, 0.2)) @ random_rotation(rng).T)
    np.testing.assert_allclose(box.rotation.T @ box.rotation, np.eye(3), atol=1e-9)
    assert np.linalg.det(box.rotation) == pytest.approx(1.0)
    assert box.size[0] >= box.size[1] >= box.size[2]
    x, y, z, w = box.quaternion
    assert w >= 0 and np.linalg.norm(box.quaternion) == pytest.approx(1.0)
    np.testing.assert_allclose(transforms3d.quaternions.quat2mat([w, x, y, z]), box.rotation,
                               atol=1e-9)


@pytest.mark.parametrize('seed', range(20))
def test_quaternion_of_any_rotation(seed):
    rot = random_rotation(np.random.default_rng(seed))
    x, y, z, w = boxes.rotation_to_quaternion(rot)
    np.testing.assert_allclose(transforms3d.quaternions.quat2mat([w, x, y, z]), rot, atol=1e-9)


def test_same_points_in_any_order_give_the_same_box():
    rng = np.random.default_rng(5)
    pts = solid_box(rng, (0.3, 0.2, 0.1)) @ random_rotation(rng).T
    a = boxes.oriented_box(pts)
    b = boxes.oriented_box(pts[rng.permutation(len(pts))])
    np.testing.assert_allclose(a.rotation, b.rotation, atol=1e-9)
    np.testing.assert_allclose(a.size, b.size, atol=1e-12)
    np.testing.assert_allclose(a.center, b.center, atol=1e-12)


@pytest.mark.parametrize('pts', [
    np.empty((0, 3)),
    np.array([[1.0, 2.0, 3.0]]),
    np.array([[0.0, 0.0, 0.0], [1.0, 1.0, 0.0]]),
    np.outer(np.linspace(0, 1, 50), [1.0, 2.0, 0.5]),                    # a line
    np.c_[np.random.default_rng(0).random((100, 2)), np.zeros(100)],      # a plane
    np.array([[0.0, 0.0, 0.0]] * 10),                                    # one point, repeated
])
def test_degenerate_inputs_give_finite_boxes(pts):
    box = boxes.oriented_box(pts)
    assert np.isfinite(box.center).all() and np.isfinite(box.size).all()
    assert np.linalg.det(box.rotation) == pytest.approx(1.0)
    assert (box.size >= 0).all()
    if len(pts):
        assert box.contains(pts, tolerance=1e-9).all()


def test_non_finite_points_are_ignored():
    rng = np.random.default_rng(1)
    pts = solid_box(rng, (0.2, 0.1, 0.05))
    with_nan = np.concatenate([pts, [[np.nan, 0, 0], [np.inf, 1, 1]]])
    np.testing.assert_allclose(boxes.oriented_box(with_nan).size,
                               boxes.oriented_box(pts).size)


def test_a_flat_plate_gets_its_plane():
    """A scanned table top (a plane) must come back as a thin box in its own plane."""
    rng = np.random.default_rng(2)
    plate = np.c_[(rng.random((2000, 2)) - 0.5) * [1.2, 0.8], rng.normal(0, 1e-3, 2000)]
    rot = random_rotation(rng)
    box = boxes.oriented_box(plate @ rot.T)
    np.testing.assert_allclose(box.size[:2], [1.2, 0.8], rtol=0.02)
    assert box.size[2] < 0.01
    assert abs(np.dot(box.rotation[:, 2], rot[:, 2])) > 0.999   # normal found


def test_summarise_adds_oriented_boxes_to_objects_and_parts():
    conversions = pytest.importorskip('pinpoint3d_ros.conversions')
    rng = np.random.default_rng(11)
    rot = random_rotation(rng)
    body = solid_box(rng, (0.4, 0.2, 0.1), 2000) @ rot.T
    handle = solid_box(rng, (0.05, 0.05, 0.15), 300) @ rot.T + rot @ [0.25, 0.0, 0.0]
    clutter = rng.normal(size=(500, 3)) + 5.0
    pts = np.concatenate([body, handle, clutter, [[np.nan, np.nan, np.nan]]]).astype(np.float32)
    obj = np.r_[np.ones(2300), np.zeros(501)].astype(np.uint32)
    obj[-1] = 1   # a NaN point of the object keeps its index but stays out of the box
    part = np.r_[np.zeros(2000), np.ones(300), np.zeros(501)].astype(np.uint32)
    region, = conversions.summarise(pts, obj, part)
    assert region.oriented_box.contains(pts[:2300], tolerance=1e-5).all()
    assert region.oriented_box.volume <= np.prod(region.box_size) + 1e-9
    handle_region, = region.parts
    np.testing.assert_allclose(handle_region.oriented_box.size, [0.15, 0.05, 0.05], rtol=0.08)
    assert conversions.summarise(pts, obj, part, oriented=False)[0].oriented_box is None
