"""Docstring gate: ament's pep257 configuration over the Python modules and tests."""

from ament_pep257.main import main
import pytest


@pytest.mark.linter
@pytest.mark.pep257
def test_pep257():
    rc = main(argv=['pinpoint3d_core', 'pinpoint3d_ros', 'launch', 'test', 'setup.py'])
    assert rc == 0, 'Found code style errors / warnings'
