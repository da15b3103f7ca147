"""Shared test set-up: every ROS process started by the tests stays on this machine."""

import os
import random

import pytest


def pytest_configure(config):
    # Discovery must never leave the machine, whatever the caller's shell had.
    os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    os.environ.setdefault('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp')
    # A domain of our own so a demo or another test run on this machine cannot answer us.
    # (0-101 is the range safe from Linux ephemeral ports.)
    shell_domain = os.environ.get('ROS_DOMAIN_ID')
    choices = [d for d in range(1, 102) if str(d) != shell_domain]
    os.environ['ROS_DOMAIN_ID'] = str(random.SystemRandom().choice(choices))


@pytest.fixture
def ros_env():
    """Environment for child processes: the whole current one (the ROS wheels need it)."""
    return dict(os.environ)


@pytest.fixture(scope='session')
def minkowski():
    """MinkowskiEngine, or a skip where it is not built (tests that run the real network)."""
    from pinpoint3d_core.me_shim import import_minkowski
    try:
        return import_minkowski()
    except ImportError as exc:
        pytest.skip(f'MinkowskiEngine missing: {exc}')
