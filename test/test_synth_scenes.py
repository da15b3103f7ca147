"""Synthetic scenes: labels on the right meshes, nesting, determinism, occlusion, CLI."""

import numpy as np
import open3d as o3d
from pinpoint3d_core.errors import Pinpoint3DError
from pinpoint3d_core.scene import load_scene
from pinpoint3d_core.synth import generate, generate_scene, generate_scene_and_world
from pinpoint3d_core.synth import geometry as g
from pinpoint3d_core.synth import sensors
from pinpoint3d_core.synth.compose import World
from pinpoint3d_core.synth.objects import SynthObject
import pytest

CASES = [('indoor', 'scan'), ('indoor', 'single'), ('lidar', 'scan')]


@pytest.fixture(scope='module', params=CASES, ids=['-'.join(c) for c in CASES])
def exact(request):
    """Noise-free small scenes (points exactly on the surfaces)."""
    kind, mode = request.param
    return generate_scene_and_world(kind, seed=3, mode=mode, size='small', noise=False)


@pytest.fixture(scope='module', params=CASES, ids=['-'.join(c) for c in CASES])
def noisy(request):
    kind, mode = request.param
    return generate_scene_and_world(kind, seed=5, mode=mode, size='small')


def _distance_to(world, part_id, points):
    v, f = world.scene_part_mesh(part_id)
    rc = o3d.t.geometry.RaycastingScene()
    rc.add_triangles(o3d.core.Tensor(v), o3d.core.Tensor(f))
    return rc.compute_distance(o3d.core.Tensor(points.astype(np.float32))).numpy()


def _world_points(scene):
    """Scene coords back in the world frame (LiDAR coords are relative to the sensor)."""
    if scene.meta['kind'] == 'lidar':
        s = scene.meta['sensor']
        return scene.coords + np.array([0, scene.meta['layout']['ego_y'], s['height']],
                                       np.float32)
    return scene.coords


def test_labelled_points_lie_on_their_part_mesh(exact):
    scene, world = exact
    pts = _world_points(scene)
    parts = np.unique(scene.part_ids[scene.part_ids > 0])
    assert len(parts) >= 3
    for pid in parts:
        d = _distance_to(world, pid, pts[scene.part_ids == pid])
        assert d.max() < 2e-3, f'part {pid}: a point is {d.max():.4f} m from its mesh'


def _noise_bound(scene, pts):
    """Largest plausible point-to-surface error (m) under each sensor's noise model."""
    meta = scene.meta
    if meta['kind'] == 'lidar':
        return np.full(len(pts), 6 * 0.015 + 1e-3)
    if meta['mode'] == 'scan':
        return np.full(len(pts), 7 * generate.FUSED_NOISE + 1e-3)
    rng = np.linalg.norm(pts - np.array(meta['sensor']['position']), axis=1)
    return 6 * 1.3 * sensors.kinect_sigma(rng) + 1e-3  # axial noise, off-axis ray factor


def test_noisy_points_lie_on_their_part_within_the_noise(noisy):
    scene, world = noisy
    pts = _world_points(scene)
    bound = _noise_bound(scene, pts)
    for pid in np.unique(scene.part_ids[scene.part_ids > 0]):
        sel = scene.part_ids == pid
        d = _distance_to(world, pid, pts[sel])
        assert (d <= bound[sel]).all(), f'part {pid}: {d.max():.3f} m from its mesh'


def test_parts_nest_in_objects_and_match_meta(noisy):
    scene, _ = noisy
    owner = scene.part_to_object()  # raises inside Scene validation if a part is shared
    objects = scene.meta['objects']
    assert sorted(int(k) for k in objects) == sorted(np.unique(scene.object_ids[
        scene.object_ids > 0]).tolist())
    for oid, rec in objects.items():
        listed = {int(p) for p in rec['parts']}
        present = {p for p, o in owner.items() if o == int(oid)}
        assert listed == present
        assert rec['has_parts'] == bool(listed)
        for pid, parent in rec['part_parent'].items():
            assert parent == 0 or str(parent) in rec['parts']
        if rec['has_parts']:  # every point of an object with parts carries a part label
            assert (scene.part_ids[scene.object_ids == int(oid)] > 0).all()


def test_no_empty_or_tiny_parts(noisy):
    scene, _ = noisy
    counts = np.bincount(scene.part_ids)
    for rec in scene.meta['objects'].values():
        for pid in rec['parts']:
            assert counts[int(pid)] >= 5


def test_part_names_and_hierarchy_are_semantic():
    scene = generate_scene('indoor', seed=11, size='small', noise=False)
    names = {n for rec in scene.meta['objects'].values() for n in rec['parts'].values()}
    assert names & {'top', 'leg', 'seat', 'back', 'body', 'door', 'drawer', 'handle'}
    cats = {rec['category'] for rec in scene.meta['objects'].values()}
    assert {'floor', 'wall'} <= cats


def test_deterministic_for_a_seed():
    a = generate_scene('indoor', seed=42, size='small')
    b = generate_scene('indoor', seed=42, size='small')
    c = generate_scene('indoor', seed=43, size='small')
    for name in ('coords', 'colors', 'object_ids', 'part_ids'):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.meta == b.meta
    assert len(a) != len(c) or not np.array_equal(a.coords, c.coords)


def test_small_scenes_have_training_sizes():
    for kind, mode in CASES:
        scene = generate_scene(kind, seed=1, mode=mode, size='small')
        assert 8000 <= len(scene) <= 40000, (kind, mode, len(scene))
        assert scene.meta['num_parts'] >= 3


def test_single_view_occludes_what_a_scan_sees():
    scan = generate_scene('indoor', seed=8, mode='scan', size='small', noise=False)
    single = generate_scene('indoor', seed=8, mode='single', size='small', noise=False)
    assert single.meta['num_parts'] < scan.meta['num_parts']
    assert single.meta['num_objects'] < scan.meta['num_objects']


def test_occluded_box_gets_no_points():
    world = World()
    for x in (2.0, 4.0):  # the second box hides exactly behind the first
        o = SynthObject('box', has_parts=True)
        o.add('front' if x < 3 else 'hidden', g.box((0.5, 0.5, 0.5), (0, 0, 0)), 'grey')
        world.place(o.finish(), 0.0, (x, 0, 0))
    caster = sensors.Raycaster(world.arrays())
    hits = sensors.rgbd_frame(caster, np.zeros(3), sensors.look_rotation(0.0, 0.0),
                              np.random.default_rng(0), 64, 48, 40.0, 6.0, noise=0.0)
    tri_obj = world.arrays()[2]
    seen = np.bincount(tri_obj[hits.triangle], minlength=3)
    assert seen[1] > 50 and seen[2] == 0


def test_lidar_is_a_rotating_multibeam_scan():
    scene = generate_scene('lidar', seed=2, size='small', noise=False)
    xyz = scene.coords
    elev = np.degrees(np.arctan2(xyz[:, 2], np.hypot(xyz[:, 0], xyz[:, 1])))
    assert elev.max() <= 2.1 and elev.min() >= -25.0
    assert len(np.unique(np.round(elev, 1))) <= 64 * 3
    az = np.arctan2(xyz[:, 1], xyz[:, 0])
    assert np.histogram(az, 8)[0].min() > 0  # full 360 degrees
    assert scene.intensity.min() >= 0 and scene.intensity.max() <= 1
    assert scene.colors is None
    cats = {rec['category'] for rec in scene.meta['objects'].values()}
    assert 'Car' in cats and 'road' in cats


def test_bad_options_raise_clear_errors():
    with pytest.raises(Pinpoint3DError, match='kind'):
        generate_scene('forest')
    with pytest.raises(Pinpoint3DError, match='beams'):
        generate_scene('lidar', beams=16)


def test_cli_writes_loadable_scenes_and_previews(tmp_path):
    from pinpoint3d_core.cli import main
    rc = main(['synth', '--kind', 'indoor', '--count', '2', '--seed', '4', '--size', 'small',
               '--out', str(tmp_path), '--png'])
    assert rc == 0
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ['indoor_000004.npz', 'indoor_000004.png', 'indoor_000005.npz',
                     'indoor_000005.png']
    scene = load_scene(tmp_path / 'indoor_000005.npz')
    again = generate_scene('indoor', seed=5, size='small')
    np.testing.assert_array_equal(scene.part_ids, again.part_ids)
    assert scene.meta['seed'] == 5


def test_statistics_stay_calibrated_to_real_sensors():
    from pinpoint3d_core.synth.stats import scene_stats
    indoor = scene_stats(generate_scene('indoor', seed=21, size='small'))
    assert 2.3 <= indoor['nn_median_cm'] <= 3.5  # ScanNet: 2.9 cm
    assert all(60 <= c <= 190 for c in indoor['color_mean']) and indoor['color_std'] >= 25
    lidar = scene_stats(generate_scene('lidar', seed=21, size='normal', beams=64))
    assert 100_000 <= lidar['points'] <= 135_000  # SemanticKITTI: 123k
    assert 0.18 <= lidar['intensity_mean'] <= 0.4  # KITTI: 0.28
    assert 70 <= lidar['range_max_m'] <= 80.01
