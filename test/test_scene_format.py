"""Scene .npz format: round trip, validation errors, readers, and the shared real scans."""

import json
import os

import numpy as np
from pinpoint3d_core.errors import Pinpoint3DError, SceneFormatError
from pinpoint3d_core.scene import (
    load_scene, read_any, read_kitti_bin, read_point_file, real_data_dir, save_scene, Scene)
import pytest

REAL = real_data_dir()


def _scene(n=50, seed=0):
    rng = np.random.default_rng(seed)
    obj = rng.integers(0, 3, n).astype(np.int32)
    part = np.where(obj == 1, 1 + rng.integers(0, 2, n), 0).astype(np.int32)
    part[obj == 2] = 3
    meta = {'sensor': 'rgbd', 'objects': {'1': {'name': 'mug_1', 'parts': {'1': 'body',
                                                                           '2': 'handle'}}}}
    return Scene(rng.normal(size=(n, 3)), rng.integers(0, 256, (n, 3)), rng.uniform(0, 1, n),
                 obj, part, meta)


def test_round_trip_keeps_arrays_dtypes_and_meta(tmp_path):
    scene = _scene()
    path = save_scene(tmp_path / 'a.npz', scene)
    back = load_scene(path)
    for name in ('coords', 'colors', 'intensity', 'object_ids', 'part_ids'):
        np.testing.assert_array_equal(getattr(back, name), getattr(scene, name))
        assert getattr(back, name).dtype == getattr(scene, name).dtype
    assert back.meta['objects']['1']['parts']['2'] == 'handle'
    assert back.part_to_object() == {1: 1, 2: 1, 3: 2}


def test_optional_arrays_stay_absent(tmp_path):
    scene = Scene(np.zeros((4, 3)))
    back = load_scene(save_scene(tmp_path / 'b', scene))
    assert back.colors is None and back.intensity is None
    assert back.object_ids.dtype == np.int32 and not back.object_ids.any()


def test_errors_are_scene_format_errors(tmp_path):
    bad = tmp_path / 'garbage.npz'
    bad.write_bytes(b'not a zip file')
    with pytest.raises(SceneFormatError, match='not a readable'):
        load_scene(bad)
    with pytest.raises(SceneFormatError, match='no such'):
        load_scene(tmp_path / 'missing.npz')
    np.savez(tmp_path / 'nocoords.npz', object_ids=np.zeros(3, np.int32))
    with pytest.raises(SceneFormatError, match='coords'):
        load_scene(tmp_path / 'nocoords.npz')
    np.savez(tmp_path / 'shape.npz', coords=np.zeros((3, 3), np.float32),
             object_ids=np.zeros(4, np.int32))
    with pytest.raises(SceneFormatError, match='object_ids must have shape'):
        load_scene(tmp_path / 'shape.npz')
    np.savez(tmp_path / 'pickled.npz', coords=np.zeros((3, 3), np.float32),
             meta=np.array([{'a': 1}], dtype=object))
    with pytest.raises(SceneFormatError):
        load_scene(tmp_path / 'pickled.npz')
    np.savez(tmp_path / 'json.npz', coords=np.zeros((3, 3), np.float32), meta=np.array('{oops'))
    with pytest.raises(SceneFormatError, match='JSON'):
        load_scene(tmp_path / 'json.npz')
    np.savez(tmp_path / 'shared.npz', coords=np.zeros((2, 3), np.float32),
             object_ids=np.array([1, 2], np.int32), part_ids=np.array([5, 5], np.int32))
    with pytest.raises(SceneFormatError, match='unique within the scene'):
        load_scene(tmp_path / 'shared.npz')
    assert issubclass(SceneFormatError, Pinpoint3DError)


def test_part_without_object_is_rejected():
    with pytest.raises(SceneFormatError, match='must have an object id'):
        Scene(np.zeros((2, 3)), object_ids=[0, 1], part_ids=[1, 0])


def test_kitti_bin_and_ply_readers(tmp_path):
    raw = np.array([[1, 2, 3, 0.5], [4, 5, 6, 0.25]], np.float32)
    raw.tofile(tmp_path / 'x.bin')
    scene = read_kitti_bin(tmp_path / 'x.bin', object_ids=[0, 7])
    np.testing.assert_allclose(scene.coords, raw[:, :3])
    np.testing.assert_allclose(scene.intensity, [0.5, 0.25])
    assert scene.object_ids.tolist() == [0, 7]
    (tmp_path / 'odd.bin').write_bytes(b'\0' * 12)
    with pytest.raises(SceneFormatError, match='multiple of 16'):
        read_kitti_bin(tmp_path / 'odd.bin')
    import open3d as o3d
    pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(raw[:, :3].astype(float)))
    pcd.colors = o3d.utility.Vector3dVector(np.array([[1.0, 0, 0], [0, 0, 1.0]]))
    for ext in ('ply', 'pcd'):
        path = str(tmp_path / f'c.{ext}')
        o3d.io.write_point_cloud(path, pcd)
        scene = read_any(path)
        np.testing.assert_allclose(scene.coords, raw[:, :3], atol=1e-6)
        assert scene.colors.tolist() == [[255, 0, 0], [0, 0, 255]]
    (tmp_path / 'empty.ply').write_text('nothing')
    with pytest.raises(SceneFormatError):
        read_point_file(tmp_path / 'empty.ply')
    with pytest.raises(SceneFormatError, match='unknown extension'):
        read_any(tmp_path / 'x.xyz')


@pytest.mark.skipif(not os.path.isdir(REAL), reason='shared real scans not present')
@pytest.mark.parametrize('name', ['kitti_000008.npz', 'nuscenes_sweep.npz'])
def test_real_scans_load_with_normalised_intensity(name):
    path = os.path.join(REAL, name)
    scene = load_scene(path)
    with np.load(path, allow_pickle=False) as raw:
        n = len(raw['coords'])
        raw_meta = json.loads(str(raw['meta']))
    assert len(scene) == n and scene.colors is None
    assert scene.intensity.min() >= 0 and scene.intensity.max() <= 1
    assert raw_meta['num_objects'] == len(np.unique(scene.object_ids[scene.object_ids > 0]))
    if raw_meta['intensity_range'][1] > 1:  # nuScenes stores 0..255
        assert scene.intensity.max() > 0.5 / 255
    assert scene.meta['intensity_range'] == [0.0, 1.0]
