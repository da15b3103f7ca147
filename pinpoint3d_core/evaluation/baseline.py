"""
The strongest non-learned interactive segmenter we have, with the model's session contract.

It is the floor the learned model must beat. Every point takes the label of the click it is
closest to by geodesic distance over the surface graph (``inference/surface.py``): voxels at the
sensor's scale, k-NN links whose cost is their length scaled up by normal and colour/intensity
change, support planes (table, ground) out of the graph. Points nearest to a negative click, or
farther than the cutoff from every click, are background; parts are the nearest part click
inside the object.
"""

from typing import Optional

import numpy as np
from pinpoint3d_core.inference.config import InferenceConfig
from pinpoint3d_core.inference.geodesic import GeodesicSession
from pinpoint3d_core.interaction import DEFAULT_MAX_CLICKS, start_in_sensor_frame


class GraphBaselineSegmenter:
    """
    Geodesic nearest-click segmentation on the surface graph (no learning).

    ``settings`` is an InferenceConfig whose surface-graph and geodesic fields (graph voxel,
    neighbours, support planes, cutoff, rim radius, normal and colour weights) it uses; the
    presets carry the values tuned on the training part of each real development family
    (``pinpoint3d_core.presets``).
    """

    untrained = False

    def __init__(self, settings: Optional[InferenceConfig] = None,
                 max_clicks: int = DEFAULT_MAX_CLICKS, source: str = 'baseline'):
        self.settings = settings or InferenceConfig()
        self.max_clicks = int(max_clicks)
        self.source = source

    def describe(self) -> str:
        """One line for logs: what this segmenter is."""
        s = self.settings
        planes = f', support planes at {s.support_plane_m} m' if s.support_plane_m > 0 else ''
        return (f'non-learned baseline ({self.source}): geodesic nearest click on '
                f'{s.graph_voxel} m voxels{planes}, cutoff {s.geodesic_cutoff}')

    @classmethod
    def load(cls, checkpoint=None, device='auto', **kwargs) -> 'GraphBaselineSegmenter':
        """Mirror ``Segmenter.load``; the baseline has no weights."""
        return cls(**kwargs)

    def start(self, points: np.ndarray, colors: Optional[np.ndarray] = None,
              intensity: Optional[np.ndarray] = None, inference=None):
        """Build the surface graph of one cloud and return a session (in the sensor's frame)."""
        settings = inference or self.settings
        framed = start_in_sensor_frame(settings, points, colors, intensity, self.start)
        if framed is not None:
            return framed
        return GeodesicSession(settings, points, colors, intensity, max_clicks=self.max_clicks)
