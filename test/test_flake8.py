"""Style gate: ament's flake8 configuration over the whole package."""

import glob

from ament_flake8.main import main_with_errors
import pytest

PATHS = ['pinpoint3d_core', 'pinpoint3d_ros', 'launch', 'test', 'setup.py',
         'docs/session_example.py'] + sorted(
    glob.glob('scripts/*'))


@pytest.mark.flake8
@pytest.mark.linter
def test_flake8():
    rc, errors = main_with_errors(argv=PATHS)
    assert rc == 0, 'Found %d code style errors / warnings:\n' % len(errors) + '\n'.join(errors)
