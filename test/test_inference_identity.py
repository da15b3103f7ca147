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
        assert len(got['steps']) == len(want['steps']) and not diff, (
            f'{key}: labels differ at click steps {diff} of {len(want["steps"])}')
