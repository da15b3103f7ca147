"""
What the launch files decide at launch time, as plain functions (testable without launch).

- ``resolve_config``: ``config:=kitti_lidar.yaml`` (a shipped file by name) or a path.
- ``choose_weights``: the preset of a parameter file picks the shipped weights (the node
  loads them by preset, ``pinpoint3d_core.presets`` names the file); an explicit
  ``checkpoint:=`` wins, and the message says so.
- ``rviz_config``: the shipped RViz config with the fixed frame, the input topic, the node's
  namespace and the click topic of this launch filled in.
"""

import os
from typing import Optional, Tuple

from pinpoint3d_core.presets import PRESETS
import yaml

# Preset name -> shipped weights file (weights/): pinpoint3d_core.presets is the one table.
# Parameter files name their preset in a `preset:` line; files without one are known by name.
PRESET_WEIGHTS = {name: preset.weights for name, preset in PRESETS.items()}
CONFIG_PRESETS = {
    'indoor_rgbd.yaml': 'indoor',
    'tabletop_rgbd.yaml': 'tabletop',
    'kitti_lidar.yaml': 'lidar',
}
NODE_NAME = 'pinpoint3d_node'
RVIZ_FILE = 'pinpoint3d.rviz'


class LaunchSetupError(ValueError):
    """A launch argument cannot be used; the message says which values work."""


def resolve_config(config: str, share: str) -> str:
    """Return the parameter file for ``config:=``: a path, or a file name in share/config."""
    if os.path.isfile(config):
        return os.path.abspath(config)
    shipped = os.path.join(share, 'config', config)
    if os.sep not in config and os.path.isfile(shipped):
        return shipped
    names = sorted(f for f in os.listdir(os.path.join(share, 'config')) if f.endswith('.yaml'))
    raise LaunchSetupError(f'config:={config} is neither a file nor one of the shipped '
                           f'parameter files {names}')


def config_preset(config_path: str) -> Optional[str]:
    """Return the preset a parameter file names (its `preset:` line, else its file name)."""
    with open(config_path) as f:
        data = yaml.safe_load(f) or {}
    for section in data.values():
        params = (section or {}).get('ros__parameters', {}) if isinstance(section, dict) else {}
        if params.get('preset'):
            return str(params['preset'])
    return CONFIG_PRESETS.get(os.path.basename(config_path))


def choose_weights(config_path: str, checkpoint: str, share: str,
                   preset: str = '') -> Tuple[str, str, str]:
    """
    Return (preset, checkpoint for the node, message to log) for one launch.

    ``checkpoint`` non-empty wins over the preset (logged as such); otherwise the node gets
    ``checkpoint: ''`` and loads its ``preset``'s shipped weights itself (from
    share/pinpoint3d/weights); a missing file is said loudly (the node then runs the preset's
    non-learned baseline and says so), so the LiDAR or tabletop configuration can never run
    the indoor weights without a word.
    """
    preset = preset or config_preset(config_path) or ''
    if preset and preset not in PRESET_WEIGHTS:
        raise LaunchSetupError(f"preset '{preset}' (from {config_path}) is not one of "
                               f'{sorted(PRESET_WEIGHTS)}')
    source = f"preset '{preset}' of {os.path.basename(config_path)}" if preset else (
        f'{os.path.basename(config_path)} (no preset)')
    weights = PRESET_WEIGHTS.get(preset, '')
    if checkpoint:
        note = (f"; it replaces the preset's weights {weights}" if weights
                and os.path.basename(checkpoint) != weights else '')
        return preset, checkpoint, f'checkpoint:={checkpoint} given ({source}){note}'
    if not weights:
        return preset, '', f"{source}: no preset, so the node's default weights are used"
    message = f'{source}: weights {weights}'
    if not os.path.isfile(os.path.join(share, 'weights', weights)):
        message += (f' - NOT FOUND in {os.path.join(share, "weights")}: the node runs the '
                    "preset's non-learned baseline (and says so) until they are installed or "
                    'a checkpoint:=<file.pt> is given')
    return preset, '', message


def _topic(namespace: str, name: str) -> str:
    """Return the absolute name of a topic of the node under ``namespace``."""
    ns = '/' + namespace.strip('/') if namespace.strip('/') else ''
    return f'{ns}/{NODE_NAME}/{name}'


def rviz_config(template: str, fixed_frame: str, input_topic: str, namespace: str = '',
                clicked_point_topic: str = '/clicked_point') -> dict:
    """
    Return the RViz config of ``template`` adapted to this launch (a dict to dump as YAML).

    The input cloud display shows ``input_topic``, the output displays the node's topics under
    ``namespace``, the Publish Point tool publishes on ``clicked_point_topic`` (the topic the
    launch remaps the node's clicks to) and the fixed frame is ``fixed_frame``.
    """
    if not fixed_frame:
        raise LaunchSetupError('fixed_frame:= is empty; give the frame of the cloud (for a '
                               'RealSense camera_color_optical_frame) or a frame TF connects')
    with open(template) as f:
        config = yaml.safe_load(f)
    manager = config['Visualization Manager']
    manager['Global Options']['Fixed Frame'] = fixed_frame
    outputs = {'Labelled cloud': 'labeled_points', 'Objects, parts and clicks': 'markers'}
    for display in manager['Displays']:
        if display.get('Name') == 'Input cloud':
            display['Topic']['Value'] = input_topic
        elif display.get('Name') in outputs:
            display['Topic']['Value'] = _topic(namespace, outputs[display['Name']])
    for tool in manager['Tools']:
        if tool.get('Class') == 'rviz_default_plugins/PublishPoint':
            tool['Topic']['Value'] = clicked_point_topic
    return config


def write_rviz_config(path: str, *args, **kwargs) -> str:
    """Write ``rviz_config(*args, **kwargs)`` to ``path``; return ``path``."""
    with open(path, 'w') as f:
        yaml.safe_dump(rviz_config(*args, **kwargs), f, sort_keys=False)
    return path
