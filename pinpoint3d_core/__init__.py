"""PinPoint3D core: model, data engine, training and evaluation (no ROS imports)."""

import os

# Before anything imports torch: idle OpenMP threads must sleep rather than spin, or they take
# the cores from every other process on small machines (see tools/env.sh).
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

__version__ = '0.1.0'
