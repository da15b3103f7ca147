"""
Everything after the network and around it: settings, the neighbour graph, the rules.

- ``inference.config``: ``InferenceConfig``, what a user may change without retraining;
- ``inference.graph``: ``NeighbourGraph``, the voxel links the rules and the baseline walk;
- ``inference.view``: ``ViewLabels``, the one structure the rules act on;
- ``inference.rules``: one function per rule; ``inference.pipeline``: which run, in order.

docs/architecture.md shows where this sits between ``PinPoint3D.decode`` and the caller's
labels. This package file imports only the numpy parts (the baseline needs no torch).
"""

from pinpoint3d_core.inference.config import (
    default_inference, InferenceConfig, REFERENCE_INFERENCE, resolve_inference)
from pinpoint3d_core.inference.graph import NeighbourGraph

__all__ = ['InferenceConfig', 'REFERENCE_INFERENCE', 'default_inference', 'resolve_inference',
           'NeighbourGraph']
