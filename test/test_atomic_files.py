"""
Result and scene files are written atomically; the demo planner never reads a partial one.

The reader below is the planner's own (demo_planner.wait_for_scene); the writers run in
another process, as the scene player does in the demo. A control with the same reader and an
in-place writer shows that the reader does catch partial files when they exist.
"""

import os
import stat
import subprocess
import sys
import time

import numpy as np
from pinpoint3d_core.atomic_files import atomic_path, write_text_atomic
from pinpoint3d_core.errors import Pinpoint3DError
from pinpoint3d_ros import demo_planner
import pytest

# A writer process: big scenes (coords of `points` points, about 5 MB compressed each), each
# with its version and coordinate checksum in meta, written with the player's function.
SCENE_WRITER = r"""
import sys
import numpy as np
from pinpoint3d_core.scene import Scene
from pinpoint3d_ros.scene_player import save_scene_atomic
path, points, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(0)
for version in range(count):
    coords = rng.normal(size=(points, 3)).astype(np.float32)
    meta = {'version': version, 'checksum': float(coords.astype(np.float64).sum())}
    save_scene_atomic(path, Scene(coords=coords, meta=meta))
"""

# A slow writer: copies a finished file in 64 KiB pieces, in place or through atomic_path.
SLOW_WRITER = r"""
import sys, time
from pinpoint3d_core.atomic_files import atomic_path
source, target, mode, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
data = open(source, 'rb').read()
def copy(path):
    with open(path, 'wb') as f:
        for i in range(0, len(data), 1 << 16):
            f.write(data[i:i + (1 << 16)])
            f.flush()
            time.sleep(0.002)
for _ in range(rounds):
    if mode == 'atomic':
        with atomic_path(target) as tmp:
            copy(tmp)
    else:
        copy(target)
"""


def read_while(proc, path, check):
    """Poll ``path`` with the planner's reader while ``proc`` runs; return (reads, errors)."""
    reads, errors = [], []
    while proc.poll() is None:
        if not os.path.isfile(path):
            time.sleep(0.001)
            continue
        try:
            scene = demo_planner.wait_for_scene(path, timeout=5.0)
        except (Pinpoint3DError, OSError) as exc:
            errors.append(f'{type(exc).__name__}: {exc}')
            continue
        problem = check(scene)
        if problem:
            errors.append(problem)
        else:
            reads.append(scene.meta.get('version'))
    return reads, errors


def scene_is_whole(scene):
    total = float(scene.coords.astype(np.float64).sum())
    if not np.isclose(total, scene.meta['checksum'], rtol=1e-9, atol=1e-6):
        return f"version {scene.meta['version']}: checksum {total} != {scene.meta['checksum']}"
    return None


def test_player_scene_files_are_never_read_half_written(tmp_path):
    path = str(tmp_path / 'scene.npz')
    proc = subprocess.Popen([sys.executable, '-c', SCENE_WRITER, path, '400000', '6'])
    try:
        reads, errors = read_while(proc, path, scene_is_whole)
    finally:
        proc.wait(timeout=120)
    assert proc.returncode == 0
    assert not errors, errors[:5]
    assert len(reads) >= 3 and len(set(reads)) >= 2, reads   # it really read while writing
    assert os.listdir(tmp_path) == ['scene.npz']             # no temporary file left


def _reference_scene(tmp_path):
    from pinpoint3d_core.scene import save_scene, Scene
    coords = np.random.default_rng(1).normal(size=(200000, 3)).astype(np.float32)
    meta = {'version': 0, 'checksum': float(coords.astype(np.float64).sum())}
    return save_scene(str(tmp_path / 'reference.npz'), Scene(coords=coords, meta=meta))


@pytest.mark.parametrize('mode', ['atomic', 'in_place'])
def test_a_slow_writer_is_read_whole_only_when_atomic(tmp_path, mode):
    source = _reference_scene(tmp_path)
    target = str(tmp_path / 'out' / 'scene.npz')
    os.makedirs(os.path.dirname(target))
    proc = subprocess.Popen([sys.executable, '-c', SLOW_WRITER, source, target, mode, '3'])
    try:
        reads, errors = read_while(proc, target, scene_is_whole)
    finally:
        proc.wait(timeout=120)
    assert proc.returncode == 0
    if mode == 'atomic':
        assert not errors and reads, (errors[:3], len(reads))
    else:   # the control: the same reader sees truncated files from an in-place writer
        assert errors, 'the reader never saw a partial file: this check would prove nothing'


def test_atomic_path_keeps_the_old_file_on_failure_and_cleans_up(tmp_path):
    path = tmp_path / 'summary.json'
    write_text_atomic(path, '{"v": 1}')
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            assert tmp.endswith('.json') and os.path.dirname(tmp) == str(tmp_path)
            with open(tmp, 'w') as f:
                f.write('{"v": 2, "trunc')
            raise RuntimeError('writer died')
    assert path.read_text() == '{"v": 1}'
    assert os.listdir(tmp_path) == ['summary.json']


def test_atomic_files_get_the_usual_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / 'a.txt', 'x')
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / 'a.txt').st_mode) == 0o644
