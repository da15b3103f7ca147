"""
One name per setting (``indoor``, ``tabletop``, ``lidar``): the weights and their inference.

``Segmenter.load(preset=...)``, ``pinpoint3d segment/evaluate --preset`` and the node's
``preset`` parameter all read this table, so choosing the LiDAR or tabletop setting can never
silently run the indoor weights. A preset's weights file carries the inference settings it was
validated with; ``baseline`` holds the non-learned baseline's settings for the same sensor,
tuned on the training part of that real development family (docs/model.md, "Baseline").
"""

import dataclasses
from typing import Any, Dict, Optional, Tuple

from pinpoint3d_core.errors import Pinpoint3DError
from pinpoint3d_core.inference.config import InferenceConfig


@dataclasses.dataclass(frozen=True)
class Preset:
    """A sensor setting: its shipped weights file and the baseline's settings."""

    name: str
    weights: str                 # file name under weights/
    description: str
    baseline: InferenceConfig    # surface-graph settings of the non-learned baseline
    real_family: Optional[str]   # real development family that measures it (None: synthetic)
    # What the shipped weights change on top of ``baseline`` (``pinpoint3d package-weights``
    # writes baseline + these into the weights file; chosen on the training split).
    shipped: Tuple[Tuple[str, Any], ...] = ()

    def shipped_inference(self) -> InferenceConfig:
        """Return the inference settings the preset's weights file is written with."""
        return self.baseline.replace(**dict(self.shipped))


_GEODESIC = InferenceConfig(object_masks='geodesic')
PRESETS: Dict[str, Preset] = {
    'indoor': Preset(
        'indoor', 'pinpoint3d_small.pt',
        'indoor RGB-D scans and room reconstructions (5 cm voxels, any up direction)',
        _GEODESIC.replace(graph_voxel=0.05, support_plane_m=0.03, support_planes=6,
                          support_min_fraction=0.03, geodesic_cutoff=2.0), None,
        # Objects from the surface graph, parts from the click decoder inside them.
        shipped=(('geodesic_parts', 'decoder'),)),
    'tabletop': Preset(
        'tabletop', 'pinpoint3d_tabletop.pt',
        'a head or wrist RGB-D camera over a table, 5-30 cm objects, camera optical frame',
        # One camera at the frame's origin: pieces an occluder cut off are joined (20 cm gaps)
        # and concave links (grooves between objects) cost 10 times as much (training split;
        # docs/model.md, "Ninth release"); table-height pieces inside objects (a pot's inner
        # bottom) are not support, and pieces 2.5 cm apart across a rim without returns
        # join (tenth release). A cloud saved in another frame is checked for where it was
        # seen from (eleventh sitting).
        _GEODESIC.replace(graph_voxel=0.005, support_plane_m=0.006, rim_radius=0.02,
                          geodesic_cutoff=1.0, colour_weight=4.0, occlusion_gap=0.2,
                          concave_factor=10.0, concave_threshold=0.05,
                          support_piece_min=0.05, occlusion_rim_gap=0.025, find_sensor=True),
        'tabletop',
        # The boundary network's term on top of the handcrafted costs, and correction clicks
        # held back by sure boundaries (training split; docs/model.md, "Eighth release").
        shipped=(('boundary_over_handcrafted', True), ('boundary_weight', 16.0),
                 ('boundary_levels', (0.2, 0.4, 0.6, 0.8)))),
    'lidar': Preset(
        'lidar', 'pinpoint3d_small_lidar.pt',
        'KITTI-style spinning LiDAR sweeps in the sensor frame (x forward, z up)',
        _GEODESIC.replace(graph_voxel=0.1, support_plane_m=0.1, support_up=(0.0, 0.0, 1.0),
                          support_min_fraction=0.02, geodesic_cutoff=8.0, colour_weight=4.0),
        'lidar',
        # The LiDAR boundary network lost to these handcrafted costs on the validation sweep
        # (docs/model.md): objects from the baseline's costs, parts from the click decoder.
        shipped=(('geodesic_parts', 'decoder'),)),
}
DEFAULT_PRESET = 'indoor'


def get_preset(name: str) -> Preset:
    """Return a preset by name; a Pinpoint3DError lists the choices."""
    try:
        return PRESETS[name]
    except KeyError:
        raise Pinpoint3DError(
            f'unknown preset {name!r}; choose one of {sorted(PRESETS)}') from None


def preset_weights(name: str):
    """Return the path of a preset's shipped weights (CheckpointError if absent)."""
    from pinpoint3d_core.model.checkpoint import default_checkpoint_path
    return default_checkpoint_path(get_preset(name).weights)
