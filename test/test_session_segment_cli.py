"""`pinpoint3d segment`: clicks from JSON/CLI in, labelled PLY/NPZ out."""

import json

import numpy as np
from pinpoint3d_core.cli import main
from pinpoint3d_core.scene import load_scene, save_scene, Scene
from pinpoint3d_core.segment_cli import parse_click_spec
from pinpoint3d_core.toyscenes import benchmark_room
import pytest


@pytest.fixture(scope='module')
def scene_file(minkowski, tmp_path_factory):
    r = benchmark_room(4000, 0)
    path = tmp_path_factory.mktemp('seg') / 'room.npz'
    save_scene(path, Scene(r['points'], r['colors'], None, r['object_ids'], r['part_ids']))
    return path, r


def test_segment_npz_and_ply(scene_file, tmp_path, capsys):
    path, r = scene_file
    leg = int(np.flatnonzero(r['part_ids'] == 2)[0])
    clicks = tmp_path / 'clicks.json'
    clicks.write_text(json.dumps({'clicks': [
        {'index': leg, 'object_id': 1, 'part_id': 2},
        {'position': r['points'][0].tolist(), 'object_id': 0, 'positive': False}]}))
    out_npz = tmp_path / 'out.npz'
    assert main(['segment', str(path), '--clicks', str(clicks), '--untrained',
                 '--out', str(out_npz)]) == 0
    s = load_scene(out_npz)
    assert len(s) == len(r['points'])
    assert s.object_ids[leg] == 1 and s.part_ids[leg] == 2 and s.object_ids[0] == 0
    assert s.meta['segmentation']['untrained'] is True
    assert 'untrained' in capsys.readouterr().err
    out_ply = tmp_path / 'out.ply'
    assert main(['segment', str(path), '--click', f'@{leg},1,2', '--untrained',
                 '--out', str(out_ply)]) == 0
    data = out_ply.read_bytes()
    header, body = data.split(b'end_header\n', 1)
    assert b'property uint part_id' in header
    rec = np.frombuffer(body, dtype=[('xyz', '<f4', 3), ('rgb', 'u1', 3), ('o', '<u4'),
                                     ('p', '<u4')])
    assert len(rec) == len(r['points'])
    assert rec['o'][leg] == 1 and rec['p'][leg] == 2
    assert np.allclose(rec['xyz'], r['points'])


def test_segment_errors(scene_file, tmp_path, capsys):
    path, _ = scene_file
    assert main(['segment', str(path), '--click', '1,2', '--untrained',
                 '--out', str(tmp_path / 'x.npz')]) == 1
    assert 'expected x,y,z' in capsys.readouterr().err
    assert main(['segment', str(path), '--untrained', '--out', str(tmp_path / 'x.npz')]) == 1
    assert 'no clicks' in capsys.readouterr().err
    assert main(['segment', str(path), '--click', '@0', '--untrained',
                 '--out', str(tmp_path / 'x.txt')]) == 1


def test_click_spec_parsing():
    c = parse_click_spec('1.5,2,3,4,7')
    assert c.position == (1.5, 2.0, 3.0) and c.object_id == 4 and c.part_id == 7 and c.positive
    c = parse_click_spec('@12,0')
    assert c.index == 12 and not c.positive


def test_segment_override_changes_the_settings_of_the_weights(scene_file, tmp_path, capsys):
    """A cloud in millimetres with input_scale=0.001 gets the labels of the metric cloud."""
    path, r = scene_file
    leg = int(np.flatnonzero(r['part_ids'] == 2)[0])
    mm = tmp_path / 'room_mm.npz'
    save_scene(mm, Scene(r['points'] * 1000.0, r['colors'], None, r['object_ids'],
                         r['part_ids']))
    metric, scaled = tmp_path / 'm.npz', tmp_path / 's.npz'
    x, y, z = r['points'][leg]
    # geodesic object masks: the untrained decoder's labels say nothing
    assert main(['segment', str(path), '--click', f'{x},{y},{z},1,2', '--untrained',
                 '--override', 'object_masks=geodesic', '--out', str(metric)]) == 0
    assert main(['segment', str(mm), '--click', f'{x * 1e3},{y * 1e3},{z * 1e3},1,2',
                 '--untrained', '--override', 'object_masks=geodesic,input_scale=0.001',
                 '--out', str(scaled)]) == 0
    np.testing.assert_array_equal(load_scene(scaled).object_ids, load_scene(metric).object_ids)
    assert load_scene(scaled).object_ids[leg] == 1
    capsys.readouterr()
    assert main(['segment', str(path), '--click', '@0', '--untrained', '--override',
                 'sensor_height=1', '--out', str(tmp_path / 'x.npz')]) == 1
    assert 'not a config field' in capsys.readouterr().err


def test_segment_says_when_it_estimated_the_camera(tmp_path, capsys):
    """A tabletop frame saved in its world frame: the CLI says where it put the camera."""
    from pinpoint3d_core.synth import generate_scene
    frame = generate_scene('tabletop', seed=11, size='small')
    sensor = frame.meta['sensor']
    world = frame.coords @ np.array(sensor['rotation']).T + np.array(sensor['position'])
    for name, coords in (('camera', frame.coords), ('world', world)):
        path = tmp_path / f'{name}.npz'
        save_scene(path, Scene(coords.astype(np.float32), frame.colors, None, frame.object_ids,
                               frame.part_ids))
        capsys.readouterr()
        assert main(['segment', str(path), '--preset', 'tabletop', '--click', '@0',
                     '--out', str(tmp_path / f'{name}_out.npz')]) == 0
        said = 'camera estimated at' in capsys.readouterr().err
        assert said == (name == 'world'), name
