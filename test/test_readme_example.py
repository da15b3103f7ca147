"""The README's session example runs as printed, with the shipped weights."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_session_example_runs():
    proc = subprocess.run([sys.executable, os.path.join(ROOT, 'docs', 'session_example.py')],
                          cwd=ROOT, env=dict(os.environ), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'object IoU after 1 click' in proc.stdout
    assert 'parts predicted' in proc.stdout
