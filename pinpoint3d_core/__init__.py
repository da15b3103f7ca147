"""PinPoint3D core: model, data engine, training and evaluation (no ROS imports)."""

__version__ = '0.1.0'
