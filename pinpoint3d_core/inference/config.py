"""
What happens around the network: the focus box, the post-decoder rules, input guards.

``ModelConfig`` holds what the weights depend on; ``InferenceConfig`` holds everything a user
may change without retraining. A checkpoint stores both (``inference`` beside ``config``), and a
session may run with its own copy (``Segmenter.start(..., inference=...)``). Old checkpoints
kept these fields inside the model config; ``split_legacy`` separates them on load.
"""

import dataclasses
from typing import Any, Dict, Optional, Tuple

import numpy as np
from pinpoint3d_core.errors import CheckpointError


@dataclasses.dataclass(frozen=True)
class InferenceConfig:
    """Inference settings of one segmenter (plain values; saved in checkpoints)."""

    # Interactive sessions encode only the points within this many metres (per axis) of the
    # positive clicks, so the network sees scenes at the scale it was trained on (a room-sized
    # box indoors) and the rest of the cloud reads background; 0 = always the whole cloud.
    focus_half_extent: float = 0.0
    # Added to every clicked object's logit (against the background queries) before anything
    # reads object membership; > 0 widens object masks. On synthetic validation scenes 6 helps,
    # on the real LiDAR scans it hurts, so it is off (docs/model.md, "Object logit bias").
    object_logit_bias: float = 0.0
    # Pieces of a predicted object that no positive click of it reaches, over a nearest-
    # neighbour graph with links up to this many voxel sizes long, read background
    # (inference/rules.py); 0 = keep every voxel the decoder labels, as the reference does.
    component_gap_voxels: float = 10.0
    # A part click gives its part label to the voxels of its object's mask within this many
    # voxel sizes of it along those links, where no other click is nearer (docs/model.md,
    # "Click claim"). 0 = only the clicked voxel takes the click's label, as the reference.
    click_claim_voxels: float = 0.0
    # Between the parts of an object that carry clicks, each voxel leans towards the part
    # whose click is geodesically nearest: every this many voxel sizes of extra distance cost
    # a part one unit of decoder log-probability (docs/model.md, "Part prior"). 0 = off.
    part_prior_voxels: float = 0.5
    # Clicks by position snap to the nearest point within this many metres; None = two voxel
    # sizes, at least 5 cm.
    snap_radius: Optional[float] = None
    # Metres per unit of the caller's coordinates: a CAD shape in normalised units, or a
    # cloud in millimetres, is scaled to metres before anything else (positions and snap
    # radii of clicks too), so the metric settings below and the trained scale apply.
    input_scale: float = 1.0
    # Where the sensor was, in the caller's frame and units. The concave-link test and the
    # occlusion join look from it; (0, 0, 0) for clouds in the sensor's own frame (a camera's
    # optical frame, a LiDAR's frame). A cloud already moved into base_link or map gives the
    # camera's position there.
    sensor_position: Tuple[float, float, float] = (0.0, 0.0, 0.0)
    # With sensor_position at the origin: check that a camera at the origin could have seen
    # the cloud and, where not (a single view saved in a table or map frame), look for where
    # it was seen from (inference/viewpoint.py); a fused cloud keeps the origin.
    find_sensor: bool = False
    # Guards on input size (bounded memory).
    max_points: int = 20_000_000
    max_voxels: int = 2_000_000
    # Object masks: 'decoder' = the network's object decoder with the rules above;
    # 'geodesic' = every point takes its nearest click along the surface graph below, links
    # costed by the network's boundary head where the checkpoint has one (docs/model.md,
    # "Geodesic object masks"). The non-learned baseline always works the 'geodesic' way.
    object_masks: str = 'decoder'
    # Surface graph (inference/surface.py): voxel size (m) and nearest neighbours per voxel.
    graph_voxel: float = 0.05
    graph_neighbours: int = 10
    # Support planes (table, ground, floor) leave the graph: RANSAC inlier distance (m; 0 =
    # none), how many planes, the share of voxels each must hold, and an optional axis their
    # normal must be near (e.g. (0, 0, 1) for the ground under a z-up LiDAR).
    support_plane_m: float = 0.0
    support_planes: int = 1
    support_min_fraction: float = 0.1
    support_up: Optional[Tuple[float, float, float]] = None
    # Pieces of a plane's inliers (connected over the graph links) holding less than this
    # share of its inliers stay in the graph: the inner bottom of a bowl or a pot at table
    # height joins its walls instead of cutting the object in two; 0 = every inlier is support.
    support_piece_min: float = 0.0
    # Voxels farther than this path cost (m-equivalent) from every click are background.
    geodesic_cutoff: float = 1.2
    # A positive click on a plane voxel next to its object's other clicks frees the plane
    # voxels within this radius (m): the object's rim, not the whole table.
    rim_radius: float = 0.02
    # Handcrafted link costs (baseline): length x (1 + w_n normal change + w_c colour change).
    normal_weight: float = 4.0
    colour_weight: float = 12.0
    # Concave links (normals turned to the sensor at the frame's origin): where a link's end
    # normals converge by more than ``concave_threshold`` (their difference along the link),
    # two surfaces meet in a groove, as stacked or touching objects do and the faces of one
    # convex object do not; such links cost ``concave_factor`` times their price above.
    # 1 = off (clouds not seen from their origin, such as fused room reconstructions).
    concave_factor: float = 1.0
    concave_threshold: float = 0.05
    # Learned link costs: base + this many voxel sizes x (-log(1 - P(boundary)))^power, the
    # base being the handcrafted costs above (True) or the bare link length (False).
    boundary_weight: float = 20.0
    boundary_power: float = 1.0
    boundary_over_handcrafted: bool = False
    # Thresholds on P(boundary) (inference/levels.py): a voxel goes to a click's object at the
    # lowest threshold where the links below it join the voxel to clicks of that object only;
    # () = off, every voxel takes its nearest click by summed costs.
    boundary_levels: Tuple[float, ...] = ()
    # Occluded pieces (inference/occlusion.py): a piece no click reaches joins a clicked object
    # up to this many metres away when the gap between them is hidden from the sensor at the
    # frame's origin and the two ends look like one surface continued (normals parallel and
    # across the gap within ``occlusion_coplanar``, a cosine margin); 0 = off (clouds not
    # seen from their origin, such as fused room reconstructions).
    occlusion_gap: float = 0.0
    occlusion_coplanar: float = 0.3
    # The same join across a convex edge whose rim gave no returns (a can's shiny lid rim):
    # pieces up to this many metres apart join when nowhere along the gap did the sensor see
    # past it, the two ends' normals diverge (a ridge, not a groove) and the gap does not run
    # along the line of sight (a step in depth); 0 = off. Needs ``occlusion_gap`` > 0.
    occlusion_rim_gap: float = 0.0
    # Parts under geodesic object masks: 'geodesic' = nearest part click inside the object;
    # 'decoder' = the part decoder's labels where it agrees on the object, else the nearest
    # part click (needs a checkpoint with a click decoder).
    geodesic_parts: str = 'geodesic'

    def to_dict(self) -> Dict[str, Any]:
        """Return a JSON/torch-safe dict (tuples become lists)."""
        out = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}

    def surface_graph(self, points, colors=None, intensity=None):
        """Build the SurfaceGraph of a cloud with these settings."""
        from pinpoint3d_core.inference.surface import SurfaceGraph
        up = None if self.support_up is None else np.asarray(self.support_up, dtype=np.float64)
        return SurfaceGraph(points, colors, intensity, self.graph_voxel, self.graph_neighbours,
                            self.support_plane_m, self.support_planes,
                            self.support_min_fraction, up, self.support_piece_min)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> 'InferenceConfig':
        """Build from ``to_dict`` output; unknown keys are a CheckpointError."""
        unknown = sorted(set(data) - field_names())
        if unknown:
            raise CheckpointError(
                f'inference config has unknown fields {unknown}: the checkpoint was written by '
                'a newer or different pinpoint3d version')
        fixed = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**fixed)

    def replace(self, **changes: Any) -> 'InferenceConfig':
        """Return a copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def graph_gap_voxels(self) -> float:
        """Longest neighbour link (voxel sizes) the configured rules need; 0 = no graph."""
        if self.component_gap_voxels > 0:
            return self.component_gap_voxels
        if self.click_claim_voxels > 0 or self.part_prior_voxels > 0:
            # Without the connectivity rule the links need only reach the claim radius.
            return max(self.click_claim_voxels, 3.0)
        return 0.0


def field_names() -> frozenset:
    """Return the names of InferenceConfig's fields."""
    return frozenset(f.name for f in dataclasses.fields(InferenceConfig))


# The plain reference behaviour: whole clouds, no rules after the decoder's argmax.
REFERENCE_INFERENCE = InferenceConfig(component_gap_voxels=0.0, part_prior_voxels=0.0)
# Defaults of the model configs shipped by the project (a checkpoint's own settings win).
DEFAULTS = {
    'reference': REFERENCE_INFERENCE,
    'small': InferenceConfig(focus_half_extent=2.0),
    'small_lidar': InferenceConfig(focus_half_extent=6.0),
}


def default_inference(model_config_name: str) -> InferenceConfig:
    """Return the default InferenceConfig of a named model config (plain defaults else)."""
    return DEFAULTS.get(model_config_name, InferenceConfig())


def split_legacy(config: Dict[str, Any]) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """
    Split a model-config dict of an old checkpoint into (network fields, inference fields).

    Checkpoints written before InferenceConfig existed kept the inference settings in the
    model config; their values are the ones those weights were validated with.
    """
    names = field_names()
    network = {k: v for k, v in config.items() if k not in names}
    inference = {k: v for k, v in config.items() if k in names}
    return network, inference


def resolve_inference(inference: Any, base: InferenceConfig) -> InferenceConfig:
    """Return ``base`` changed by ``inference`` (None, a dict of fields or an InferenceConfig)."""
    if inference is None:
        return base
    if isinstance(inference, InferenceConfig):
        return inference
    if isinstance(inference, dict):
        unknown = sorted(set(inference) - field_names())
        if unknown:
            raise ValueError(f'unknown inference settings {unknown}; known: '
                             f'{sorted(field_names())}')
        return base.replace(**inference)
    raise TypeError(f'inference must be None, a dict or an InferenceConfig, got '
                    f'{type(inference).__name__}')
