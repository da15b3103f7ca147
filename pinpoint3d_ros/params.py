"""
Node parameters: one table with defaults, ranges and descriptions, and their validation.

Ranges are declared in ParameterDescriptors (rclpy enforces them); choices and cross-checks
that descriptors cannot express are checked in ``validate``, which the node registers with
``add_on_set_parameters_callback``.
"""

import dataclasses
from dataclasses import dataclass

from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                SetParametersResult)

GRANULARITIES = ('object', 'part', 'both')
COLOURINGS = ('object', 'part')
RELIABILITIES = ('best_effort', 'reliable')


@dataclass(frozen=True)
class Spec:
    """One parameter: default, description, optional numeric range or choices."""

    name: str
    default: object
    description: str
    low: float = None
    high: float = None
    choices: tuple = None
    read_only: bool = False


# Read-only parameters named after ModelConfig fields: a value >= 0 replaces the checkpoint's.
INFERENCE_SETTINGS = ('focus_half_extent', 'component_gap_voxels', 'click_claim_voxels',
                      'part_prior_voxels', 'object_logit_bias')

# pinpoint3d_core.presets names them (kept here as plain names: no torch import to declare).
PRESETS = ('indoor', 'tabletop', 'lidar')
# What configure loads: read-only in a plain node, changeable while a lifecycle node is
# unconfigured (node.Pinpoint3DNode._check_parameters).
MODEL_PARAMETERS = ('preset', 'checkpoint', 'device', 'voxel_size') + INFERENCE_SETTINGS

SPECS = (
    Spec('preset', 'indoor', 'sensor setting: picks the shipped weights and their inference '
         'settings together (pinpoint3d_core/presets.py): indoor (RGB-D rooms), tabletop '
         '(RGB-D camera over a table, optical frame), lidar (spinning LiDAR); a preset whose '
         'weights are not installed runs its non-learned baseline and says so', choices=PRESETS,
         read_only=True),
    Spec('checkpoint', '', "model checkpoint (.pt); '' = the preset's shipped weights; a "
         'path or a bare file name of a shipped file (pinpoint3d_small_lidar.pt) wins over the '
         "preset (logged); 'untrained' or 'untrained:<config>' = random weights for tests",
         read_only=True),
    Spec('device', 'auto', "'auto' (CUDA when available), 'cpu', 'cuda' or 'cuda:N'",
         read_only=True),
    Spec('voxel_size', 0.0, "voxel edge in metres; 0 = the checkpoint's (models that cannot "
         'run at another voxel size ignore it with a warning)', 0.0, 1.0, read_only=True),
    Spec('focus_half_extent', -1.0, 'metres around the positive clicks that the backbone '
         "encodes (0 = the whole cloud); -1 = the checkpoint's value (docs/model.md)",
         -1.0, 1000.0, read_only=True),
    Spec('component_gap_voxels', -1.0, 'masks keep only the pieces a positive click reaches '
         'over neighbour links up to this many voxel sizes long (0 = keep every labelled '
         "voxel); -1 = the checkpoint's value", -1.0, 1000.0, read_only=True),
    Spec('click_claim_voxels', -1.0, 'a part click gives its part label to the points of '
         'its object within this many voxel sizes of it along neighbour links, where no other '
         "click is nearer (0 = off); -1 = the checkpoint's value", -1.0, 1000.0,
         read_only=True),
    Spec('part_prior_voxels', -1.0, 'between clicked parts, every this many voxel sizes a '
         "point lies farther from a part's nearest click than from the nearest part click "
         'costs that part one unit of log-probability (0 = the part decoder alone); -1 = the '
         "checkpoint's value", -1.0, 1000.0, read_only=True),
    Spec('object_logit_bias', -1.0, "added to each clicked object's logit before a point "
         'is labelled: larger = wider object masks (0 = the plain argmax); -1 = the '
         "checkpoint's value", -1.0, 1000.0, read_only=True),
    Spec('snap_radius', 0.05, 'clicks farther than this (m) from every point are rejected; '
         'a service request may override it (both at most 1 m)', 0.0, 1.0),
    Spec('max_points', 400000, 'clouds with more points are rejected (memory guard)',
         1, 10000000),
    Spec('granularity', 'both', 'default prediction level when a request leaves it empty',
         choices=GRANULARITIES),
    Spec('colouring', 'part', "labelled cloud colours: 'object' or 'part' (parts stand out)",
         choices=COLOURINGS),
    Spec('max_cloud_age', 0.0, 'refuse to segment the latest cloud when it was received more '
         'than this many seconds ago; 0 = no limit', 0.0, 3600.0),
    Spec('tf_timeout', 0.2, 'seconds to wait for a click transform at the cloud stamp',
         0.0, 10.0),
    Spec('qos_reliability', 'best_effort', "input cloud QoS reliability: 'best_effort' "
         "(sensor data, accepts both) or 'reliable'", choices=RELIABILITIES, read_only=True),
    Spec('qos_depth', 5, 'input cloud QoS history depth', 1, 100, read_only=True),
    Spec('click_object_id', 1, 'object the next /clicked_point refines (0 = a new object); '
         'also set by ~/click_mode', 0, 1000),
    Spec('click_part_id', 0, 'part the next /clicked_point refines (0 = the object itself)',
         0, 1000),
    Spec('click_positive', True, 'polarity of the next /clicked_point'),
    Spec('publish_markers', True, 'publish ~/markers (click spheres, boxes, labels)'),
    Spec('max_queue', 16, 'service requests waiting or running at once; one more is answered '
         "at once with success false ('busy: N requests waiting')", 1, 256, read_only=True),
    Spec('max_interactions', 32, 'live interactions (click histories, each with its cached '
         'encoding); a new one beyond this forgets the least recently used', 1, 1024,
         read_only=True),
    Spec('interaction_idle_timeout', 600.0, 'seconds after which an unused interaction is '
         'forgotten (0 = never); refining a forgotten one fails with the reason',
         0.0, 86400.0, read_only=True),
    Spec('cpu_fallback', True, 'on CUDA out-of-memory reload the model on the CPU and retry'),
    Spec('target_frame', '', 'frame of every result (labelled cloud, boxes, markers, '
         "detections), e.g. base_link, through TF at the cloud's stamp; '' = the cloud's frame. "
         'A missing transform fails the request with both frames named'),
    Spec('publish_detections', True, 'publish ~/detections (vision_msgs/Detection3DArray) '
         'when vision_msgs is installed'),
    Spec('diagnostics_period', 1.0, 'seconds between /diagnostics reports (0 = none)',
         0.0, 60.0, read_only=True),
)
BY_NAME = {spec.name: spec for spec in SPECS}


def descriptor(spec):
    """Build the ParameterDescriptor (description, range, read-only) of a spec."""
    desc = ParameterDescriptor(description=spec.description, read_only=spec.read_only)
    if spec.choices:
        desc.additional_constraints = 'one of: ' + ', '.join(spec.choices)
    if spec.low is not None:
        if isinstance(spec.default, float):
            desc.floating_point_range = [FloatingPointRange(
                from_value=float(spec.low), to_value=float(spec.high), step=0.0)]
        else:
            desc.integer_range = [IntegerRange(
                from_value=int(spec.low), to_value=int(spec.high), step=1)]
    return desc


def declare(node, reloadable=False):
    """
    Declare every parameter on ``node``; returns {name: value}.

    ``reloadable``: the model parameters are declared writable (a lifecycle node lets them
    change while unconfigured and refuses them otherwise).
    """
    for spec in SPECS:
        if reloadable and spec.name in MODEL_PARAMETERS:
            spec = dataclasses.replace(spec, read_only=False)
        node.declare_parameter(spec.name, spec.default, descriptor(spec))
    return {spec.name: node.get_parameter(spec.name).value for spec in SPECS}


def check(name, value):
    """Return an error message for a bad value of parameter ``name``, or None."""
    spec = BY_NAME.get(name)
    if spec is None:
        return None
    if spec.choices and value not in spec.choices:
        return f"{name} must be one of {', '.join(spec.choices)}, not '{value}'"
    if spec.low is not None and not spec.low <= value <= spec.high:
        return f'{name} must be within [{spec.low}, {spec.high}], not {value}'
    if name == 'device' and not (value in ('auto', 'cpu', 'cuda')
                                 or (value.startswith('cuda:') and value[5:].isdigit())):
        return f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', not '{value}'"
    return None


def validate(parameters):
    """Reject a parameter change with the reason (for add_on_set_parameters_callback)."""
    for param in parameters:
        reason = check(param.name, param.value)
        if reason:
            return SetParametersResult(successful=False, reason=reason)
    return SetParametersResult(successful=True)
