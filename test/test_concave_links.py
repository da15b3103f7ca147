"""Concave links: grooves between objects cost more than the convex edges of one object."""

import numpy as np
from pinpoint3d_core.inference.config import InferenceConfig
from pinpoint3d_core.inference.geodesic import GeodesicLabeller, GraphClick, handcrafted_link_costs
from pinpoint3d_core.toyscenes import box_surface

SENSOR = np.array([0.1, -0.5, 0.5])     # where the camera is, in the scene's table frame
TOP = 0.12                               # the big box's top, where the small box stands


def _visible_box(rng, centre, size, n):
    """Points on the faces of a box that the camera at SENSOR sees."""
    p = box_surface(rng, centre, size, n)
    c, h = np.asarray(centre), np.asarray(size) / 2
    keep = np.zeros(len(p), dtype=bool)
    for axis in range(3):
        for side in (-1, 1):
            normal = np.zeros(3)
            normal[axis] = side
            keep |= np.isclose(p[:, axis], c[axis] + side * h[axis]) & ((SENSOR - p) @ normal > 0)
    return p[keep]


def _stacked_boxes():
    """Return a 12 cm box on a 20 cm box on a table, in the camera frame, and labels."""
    rng = np.random.default_rng(0)
    table = np.column_stack([rng.uniform(-0.3, 0.3, 30000), rng.uniform(-0.3, 0.3, 30000),
                             rng.normal(0, 0.0005, 30000)])
    big = _visible_box(rng, (0, 0, TOP / 2), (0.2, 0.2, TOP), 20000)
    small = _visible_box(rng, (0.0, 0.03, TOP + 0.04), (0.12, 0.12, 0.08), 10000)
    table = table[~((np.abs(table[:, 0]) < 0.1) & (np.abs(table[:, 1]) < 0.1))]
    under = (np.abs(big[:, 0]) < 0.06) & (np.abs(big[:, 1] - 0.03) < 0.06)
    big = big[~(under & (big[:, 2] > TOP - 1e-3))]
    labels = np.repeat([0, 1, 2], [len(table), len(big), len(small)])
    return np.concatenate([table, big, small]) - SENSOR, labels


def _settings(factor):
    return InferenceConfig(graph_voxel=0.005, support_plane_m=0.003, geodesic_cutoff=1.0,
                           rim_radius=0.02, colour_weight=0.0, concave_factor=factor)


def test_link_concavity_is_positive_in_grooves_and_negative_on_ridges():
    pts, _ = _stacked_boxes()
    surface = _settings(10.0).surface_graph(pts)
    xyz = surface.xyz + SENSOR
    mid = 0.5 * (xyz[surface.links.src] + xyz[surface.links.dst])
    concavity = surface.link_concavity()
    # the groove where the small box's front face meets the big box's top
    groove = (np.abs(mid[:, 1] - (0.03 - 0.06)) < 0.006) & (np.abs(mid[:, 2] - TOP) < 0.006) \
        & (np.abs(mid[:, 0]) < 0.05)
    # the big box's front top edge (a ridge) and the middle of its front face (flat)
    ridge = (np.abs(mid[:, 1] + 0.1) < 0.006) & (np.abs(mid[:, 2] - TOP) < 0.006) \
        & (np.abs(mid[:, 0]) < 0.08)
    flat = (np.abs(mid[:, 1] + 0.1) < 0.003) & (np.abs(mid[:, 2] - TOP / 2) < 0.03)
    assert groove.sum() > 20 and ridge.sum() > 20 and flat.sum() > 20
    assert np.median(concavity[groove]) > 0.3
    assert np.median(concavity[ridge]) < -0.3
    assert np.abs(np.median(concavity[flat])) < 0.05
    # any sensor position: the definition, computed from scratch
    above = np.array([0.0, 0.0, 2.0]) - SENSOR
    n = surface.normals * np.sign(np.einsum('ij,ij->i', surface.normals,
                                            above - surface.xyz))[:, None]
    src, dst = surface.links.src, surface.links.dst
    d = surface.xyz[dst] - surface.xyz[src]
    want = np.einsum('ij,ij->i', n[src] - n[dst], d / np.linalg.norm(d, axis=1)[:, None])
    assert np.allclose(surface.link_concavity(sensor=above), want, atol=1e-9)
    from pinpoint3d_core.inference.surface import pair_concavity
    assert np.allclose(pair_concavity(surface.xyz[src], surface.xyz[dst], surface.normals[src],
                                      surface.normals[dst], sensor=above), want, atol=1e-9)


def test_concave_links_separate_stacked_boxes_better():
    pts, labels = _stacked_boxes()
    a, b = _box_clicks(pts, labels)
    ious = {}
    for factor in (1.0, 10.0):
        cfg = _settings(factor)
        surface = cfg.surface_graph(pts)
        labeller = GeodesicLabeller(surface, handcrafted_link_costs(cfg, surface),
                                    cfg.geodesic_cutoff, cfg.rim_radius)
        v = surface.voxel_of_row
        out = labeller.objects([GraphClick(int(v[a]), 1, 0, True),
                                GraphClick(int(v[b]), 2, 0, True)])[v]
        ious[factor] = [np.sum((out == k) & (labels == k)) / np.sum((out == k) | (labels == k))
                        for k in (1, 2)]
    assert all(with_ > without + 0.02 for with_, without in zip(ious[10.0], ious[1.0])), ious
    assert min(ious[10.0]) > 0.88, ious


def _box_clicks(pts, labels):
    """Rows of the big box's front face centre and the small box's top centre."""
    front = np.array([0, -0.1, TOP / 2]) - SENSOR
    top = np.array([0, 0.03, TOP + 0.08]) - SENSOR
    a = np.flatnonzero(labels == 1)[np.argmin(np.linalg.norm(pts[labels == 1] - front, axis=1))]
    b = np.flatnonzero(labels == 2)[np.argmin(np.linalg.norm(pts[labels == 2] - top, axis=1))]
    return int(a), int(b)


def _session_labels(points, rows, sensor_position):
    from pinpoint3d_core.interaction import Click
    from pinpoint3d_core.session import Segmenter
    settings = dict(_settings(10.0).to_dict(), object_masks='geodesic',
                    sensor_position=tuple(sensor_position))
    session = Segmenter.untrained(inference=settings, device='cpu').start(points)
    # by position: the session moves them into the sensor-centred frame
    session.add_clicks([Click(position=tuple(points[r]), object_id=k + 1)
                        for k, r in enumerate(rows)], snap_radius=1e-6)
    return session.predict('object').object_ids


def test_sensor_position_gives_a_cloud_in_another_frame_the_camera_frames_labels():
    """A cloud moved into the table's frame, with the camera's position there, is seen alike."""
    camera, labels = _stacked_boxes()
    rows = _box_clicks(camera, labels)
    want = _session_labels(camera, rows, (0.0, 0.0, 0.0))
    assert min(_iou(want == k, labels == k) for k in (1, 2)) > 0.88
    table = camera + SENSOR
    got = _session_labels(table, rows, SENSOR)
    assert np.mean(got == want) > 0.999
    # without it the camera is taken to sit under the table: grooves look like ridges
    wrong = _session_labels(table, rows, (0.0, 0.0, 0.0))
    assert min(_iou(wrong == k, labels == k) for k in (1, 2)) < \
        min(_iou(want == k, labels == k) for k in (1, 2)) - 0.02


def _iou(a, b):
    return float((a & b).sum()) / max(float((a | b).sum()), 1.0)
