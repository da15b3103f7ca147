"""The inference code keeps the shipped weights' labels bit for bit (test/label_fixture.py)."""

import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def test_labels_match_the_stored_digests(minkowski):
    import label_fixture
    with open(label_fixture.EXPECTED) as f:
        expected = json.load(f)
    # One thread everywhere (torch, MinkowskiEngine's OpenMP, BLAS): float reductions split
    # by thread count change the last bits, and the digests were recorded this way.
    env = dict(os.environ, OMP_NUM_THREADS='1', OPENBLAS_NUM_THREADS='1', MKL_NUM_THREADS='1')
    run = subprocess.run([sys.executable, os.path.join(HERE, 'label_fixture.py')], env=env,
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    actual = json.loads(run.stdout)
    assert sorted(actual) == sorted(expected)
    for key, want in expected.items():
        got = actual[key]
        assert got['scene'] == want['scene'], f'{key}: the scene itself changed (generator?)'
        assert got['sample'] == want['sample'] and got['targets'] == want['targets'], key
        diff = [i for i, (a, b) in enumerate(zip(got['steps'], want['steps'])) if a != b]
        # The decoder's float kernels differ in the last bits between CPUs (AVX2 / AVX-512
        # torch paths), which can flip a near-tied voxel at one late click step of a long run
        # (seen: step 28 of 31 of the LiDAR decoder case on another Xeon). A change to the
        # inference code moves every step after the first one it touches, so one isolated
        # late step in a long run is allowed; anything more fails.
        isolated = len(diff) == 1 and len(want['steps']) >= 20 and \
            diff[0] >= len(want['steps']) // 2
        assert len(got['steps']) == len(want['steps']) and (not diff or isolated), (
            f'{key}: labels differ at click steps {diff} of {len(want["steps"])}')
