"""
Launch files and the RViz config, checked statically against the node's interface.

launch/launch_ros are not available as wheels, so when they do not import, small recording
fakes of the few classes the launch files use are injected into sys.modules (monkeypatch undoes
it), and the launch-time functions (OpaqueFunction) are called with a fake context holding the
arguments. With a real ROS install the real modules are used and only the generic checks run.
The decisions themselves (config, preset, weights, RViz config) are plain functions in
pinpoint3d_ros/launch_support.py, tested directly.
"""

import importlib.util
import os
import re
import sys
import types

from pinpoint3d_ros import launch_support
import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Parameters the launch files and parameter files may set that the node does not declare.
PENDING_NODE_PARAMETERS = set()


class Recorded:
    """A fake launch class: remembers its positional and keyword arguments."""

    def __init__(self, *args, **kwargs):
        self.args = args
        self.kwargs = kwargs


def _fake_modules():
    names = {
        'launch': ['LaunchDescription'],
        'launch.actions': ['DeclareLaunchArgument', 'IncludeLaunchDescription', 'LogInfo',
                           'OpaqueFunction'],
        'launch.conditions': ['IfCondition'],
        'launch.launch_description_sources': ['PythonLaunchDescriptionSource'],
        'launch.substitutions': ['LaunchConfiguration', 'PathJoinSubstitution'],
        'launch_ros': [],
        'launch_ros.actions': ['LifecycleNode', 'Node'],
        'launch_ros.descriptions': ['ParameterValue'],
        'launch_ros.substitutions': ['FindPackageShare'],
    }
    modules = {}
    for module_name, classes in names.items():
        module = types.ModuleType(module_name)
        for cls in classes:
            setattr(module, cls, type(cls, (Recorded,), {}))
        modules[module_name] = module
    return modules


@pytest.fixture
def launch_api(monkeypatch):
    """Return the launch modules: the real ones when installed, else recording fakes."""
    try:
        import launch  # noqa: F401
        import launch_ros.actions  # noqa: F401
        return None
    except ImportError:
        pass
    fakes = _fake_modules()
    for name, module in fakes.items():
        monkeypatch.setitem(sys.modules, name, module)
    # The share directory of the package is this source tree (its installed copy).
    import ament_index_python.packages as packages
    monkeypatch.setattr(packages, 'get_package_share_directory',
                        lambda name: ROOT if name == 'pinpoint3d' else None)
    return fakes


def load_description(name):
    """Import launch/<name> and call generate_launch_description()."""
    path = os.path.join(ROOT, 'launch', name)
    spec = importlib.util.spec_from_file_location(name.replace('.', '_'), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.generate_launch_description()


def resolve(value):
    """Turn fake substitutions into strings; FindPackageShare('pinpoint3d') = source root."""
    kind = type(value).__name__
    if kind == 'FindPackageShare':
        assert value.args == ('pinpoint3d',)
        return ROOT
    if kind == 'PathJoinSubstitution':
        return os.path.join(*[resolve(p) for p in value.args[0]])
    if kind == 'LaunchConfiguration':
        return '$(' + value.args[0] + ')'
    if isinstance(value, list):
        return ''.join(resolve(v) for v in value)
    return value


def entities(description):
    return description.args[0]


def by_type(items, kind):
    return [e for e in items if type(e).__name__ == kind]


def defaults(description):
    return {a.args[0]: a.kwargs['default_value']
            for a in by_type(entities(description), 'DeclareLaunchArgument')}


def run_opaque(description, **arguments):
    """Call every OpaqueFunction with a context holding the defaults overridden by arguments."""
    values = {k: resolve(v) for k, v in defaults(description).items()}
    values.update(arguments)
    context = types.SimpleNamespace(launch_configurations=values)
    actions = []
    for opaque in by_type(entities(description), 'OpaqueFunction'):
        actions += opaque.kwargs['function'](context) or []
    return actions


def installed_programs():
    """Return the executables CMakeLists.txt installs into lib/pinpoint3d."""
    with open(os.path.join(ROOT, 'CMakeLists.txt')) as f:
        text = f.read()
    block = re.search(r'install\(PROGRAMS(.*?)DESTINATION', text, re.S)
    return {os.path.basename(p) for p in block.group(1).split()} if block else set()


def node_of(actions, executable):
    nodes = [n.kwargs for n in by_type(actions, 'Node') if n.kwargs['executable'] == executable]
    return nodes[0] if nodes else None


def logs(actions):
    return ' | '.join(a.kwargs['msg'] for a in by_type(actions, 'LogInfo'))


def test_main_launch_declares_described_arguments(launch_api):
    if launch_api is None:
        pytest.skip('real launch installed: covered by the generic test below')
    description = load_description('pinpoint3d.launch.py')
    args = {a.args[0]: a.kwargs for a in by_type(entities(description), 'DeclareLaunchArgument')}
    assert set(args) == {'config', 'preset', 'checkpoint', 'input_topic', 'fixed_frame',
                         'clicked_point_topic', 'namespace', 'use_rviz', 'lifecycle',
                         'autostart', 'target_frame'}
    assert all(kw.get('description') for kw in args.values())
    assert args['clicked_point_topic']['default_value'] == '/clicked_point'
    assert args['fixed_frame']['default_value'] != 'map'


def test_main_launch_starts_the_node_with_the_presets_weights(launch_api):
    if launch_api is None:
        pytest.skip('real launch installed')
    description = load_description('pinpoint3d.launch.py')
    actions = run_opaque(description)
    node = node_of(actions, 'pinpoint3d_node')
    assert node['package'] == 'pinpoint3d' and node['name'] == 'pinpoint3d_node'
    assert 'pinpoint3d_node' in installed_programs()
    assert os.access(os.path.join(ROOT, 'scripts', 'pinpoint3d_node'), os.X_OK)
    params_file, overrides = node['parameters']
    assert params_file == os.path.join(ROOT, 'config', 'indoor_rgbd.yaml')
    assert overrides == {'checkpoint': '', 'preset': 'indoor'}   # the node loads the preset
    assert dict(node['remappings']) == {'points': '/points', 'clicked_point': '/clicked_point',
                                        '/clicked_point': '/clicked_point'}
    assert node_of(actions, 'rviz2') is None   # use_rviz defaults to false
    assert "preset 'indoor'" in logs(actions)


@pytest.mark.parametrize('config, preset, weights', [
    ('kitti_lidar.yaml', 'lidar', 'pinpoint3d_small_lidar.pt'),
    ('tabletop_rgbd.yaml', 'tabletop', 'pinpoint3d_tabletop.pt'),
    ('indoor_rgbd.yaml', 'indoor', 'pinpoint3d_small.pt'),
])
def test_config_picks_the_matching_weights(launch_api, config, preset, weights):
    if launch_api is None:
        pytest.skip('real launch installed')
    actions = run_opaque(load_description('pinpoint3d.launch.py'), config=config)
    _, overrides = node_of(actions, 'pinpoint3d_node')['parameters']
    assert overrides == {'checkpoint': '', 'preset': preset}
    from pinpoint3d_core.presets import get_preset
    assert get_preset(preset).weights == weights   # one table: pinpoint3d_core.presets
    assert weights in logs(actions)
    shipped = os.path.isfile(os.path.join(ROOT, 'weights', weights))
    assert ('NOT FOUND' in logs(actions)) == (not shipped)   # said loudly
    if not shipped:
        assert 'non-learned baseline' in logs(actions)


def test_target_frame_argument_reaches_the_node_only_when_given(launch_api):
    if launch_api is None:
        pytest.skip('real launch installed')
    actions = run_opaque(load_description('pinpoint3d.launch.py'), target_frame='base_link')
    _, overrides = node_of(actions, 'pinpoint3d_node')['parameters']
    assert overrides['target_frame'] == 'base_link'
    _, overrides = node_of(run_opaque(load_description('pinpoint3d.launch.py')),
                           'pinpoint3d_node')['parameters']
    assert 'target_frame' not in overrides   # the parameter file's value stays


def test_lifecycle_launch_starts_the_managed_node(launch_api):
    if launch_api is None:
        pytest.skip('real launch installed')
    actions = run_opaque(load_description('pinpoint3d.launch.py'), lifecycle='true')
    managed = [n.kwargs for n in by_type(actions, 'LifecycleNode')]
    assert len(managed) == 1 and not by_type(actions, 'Node')
    assert managed[0]['executable'] == 'pinpoint3d_lifecycle_node'
    assert managed[0]['name'] == 'pinpoint3d_node' and 'namespace' in managed[0]
    assert managed[0]['autostart'] is False   # unconfigured, for a lifecycle manager
    assert 'pinpoint3d_lifecycle_node' in installed_programs()
    assert os.access(os.path.join(ROOT, 'scripts', 'pinpoint3d_lifecycle_node'), os.X_OK)


def test_lifecycle_autostart_is_passed_to_launch_ros(launch_api):
    if launch_api is None:
        pytest.skip('real launch installed')
    description = load_description('pinpoint3d.launch.py')
    managed = by_type(run_opaque(description, lifecycle='true', autostart='True'),
                      'LifecycleNode')
    assert managed[0].kwargs['autostart'] is True
    plain = node_of(run_opaque(description, autostart='true'), 'pinpoint3d_node')
    assert 'autostart' not in plain   # a plain node serves from the start anyway


def test_explicit_checkpoint_wins_and_is_logged(launch_api):
    if launch_api is None:
        pytest.skip('real launch installed')
    actions = run_opaque(load_description('pinpoint3d.launch.py'), config='kitti_lidar.yaml',
                         checkpoint='/data/my_lidar.pt')
    _, overrides = node_of(actions, 'pinpoint3d_node')['parameters']
    assert overrides['checkpoint'] == '/data/my_lidar.pt' and overrides['preset'] == 'lidar'
    assert 'checkpoint:=/data/my_lidar.pt' in logs(actions)
    assert 'pinpoint3d_small_lidar.pt' in logs(actions)   # what it replaces


def test_rviz_gets_this_launchs_frame_topics_and_namespace(launch_api, tmp_path):
    if launch_api is None:
        pytest.skip('real launch installed')
    actions = run_opaque(load_description('pinpoint3d.launch.py'), use_rviz='true',
                         input_topic='/camera/camera/depth/color/points',
                         fixed_frame='camera_color_optical_frame', namespace='robot1')
    node = node_of(actions, 'pinpoint3d_node')
    assert node['namespace'] == 'robot1'
    assert dict(node['remappings'])['clicked_point'] == '/clicked_point'   # absolute
    rviz = node_of(actions, 'rviz2')
    assert rviz['arguments'][0] == '-d'
    with open(rviz['arguments'][1]) as f:
        manager = yaml.safe_load(f)['Visualization Manager']
    assert manager['Global Options']['Fixed Frame'] == 'camera_color_optical_frame'
    topics = {d['Name']: d['Topic']['Value'] for d in manager['Displays'] if 'Topic' in d}
    assert topics == {'Input cloud': '/camera/camera/depth/color/points',
                      'Labelled cloud': '/robot1/pinpoint3d_node/labeled_points',
                      'Objects, parts and clicks': '/robot1/pinpoint3d_node/markers'}
    tool, = [t for t in manager['Tools'] if t['Class'] == 'rviz_default_plugins/PublishPoint']
    assert tool['Topic']['Value'] == '/clicked_point'
    # Another click topic: the node and RViz's tool move to it together.
    actions = run_opaque(load_description('pinpoint3d.launch.py'), use_rviz='true',
                         clicked_point_topic='/robot1/clicks')
    remaps = dict(node_of(actions, 'pinpoint3d_node')['remappings'])
    assert remaps['clicked_point'] == remaps['/clicked_point'] == '/robot1/clicks'
    with open(node_of(actions, 'rviz2')['arguments'][1]) as f:
        tools = yaml.safe_load(f)['Visualization Manager']['Tools']
    assert [t['Topic']['Value'] for t in tools if 'Topic' in t] == ['/robot1/clicks']


def test_unknown_config_is_refused_with_the_choices(launch_api):
    if launch_api is None:
        pytest.skip('real launch installed')
    with pytest.raises(launch_support.LaunchSetupError, match='kitti_lidar.yaml'):
        run_opaque(load_description('pinpoint3d.launch.py'), config='kitti.yaml')


def test_demo_launch_includes_main_launch_and_demo_tools(launch_api, tmp_path):
    if launch_api is None:
        pytest.skip('real launch installed')
    description = load_description('demo.launch.py')
    stale = tmp_path / 'scene.npz'
    stale.write_bytes(b'old run')
    actions = run_opaque(description, out=str(tmp_path), sensor='lidar')
    assert not stale.exists()   # the planner can only read this run's scene
    include, = by_type(actions, 'IncludeLaunchDescription')
    assert os.path.isfile(resolve(include.args[0].args[0]))
    forwarded = dict(include.kwargs['launch_arguments'])
    assert forwarded['input_topic'] == '/points' and forwarded['fixed_frame'] == 'map'
    assert forwarded['config'] == 'kitti_lidar.yaml'   # the sensor's parameter file
    assert {'checkpoint', 'use_rviz'} <= set(forwarded)
    nodes = {n.kwargs['executable']: n.kwargs for n in by_type(entities(description), 'Node')}
    assert set(nodes) == {'scene_player', 'demo_planner'}
    assert set(nodes) <= installed_programs()
    for exe in nodes:
        assert os.access(os.path.join(ROOT, 'scripts', exe), os.X_OK)
    assert nodes['scene_player']['remappings'] == [('points', '/points')]
    assert '--scene' in nodes['demo_planner']['arguments']


@pytest.mark.parametrize('name', ['pinpoint3d.launch.py', 'demo.launch.py'])
def test_launch_files_build_a_description(launch_api, name):
    description = load_description(name)
    assert description is not None


@pytest.mark.parametrize('name', ['indoor_rgbd.yaml', 'kitti_lidar.yaml', 'tabletop_rgbd.yaml'])
def test_parameter_files_use_only_valid_declared_parameters(name):
    params = pytest.importorskip('pinpoint3d_ros.params')
    with open(os.path.join(ROOT, 'config', name)) as f:
        data = yaml.safe_load(f)
    values = data['/**']['ros__parameters']
    known = set(params.BY_NAME) | PENDING_NODE_PARAMETERS
    assert set(values) <= known, set(values) - known
    for key, value in values.items():
        if key in PENDING_NODE_PARAMETERS:
            continue
        assert type(value) is type(params.BY_NAME[key].default), key
        assert params.check(key, value) is None, key
    assert 'checkpoint' not in values   # the launch argument owns it
    assert values['preset'] in launch_support.PRESET_WEIGHTS
    assert launch_support.config_preset(os.path.join(ROOT, 'config', name)) == values['preset']


def test_rviz_config_topics_match_the_node():
    node = pytest.importorskip('pinpoint3d_ros.node')
    assert node.NODE_NAME == launch_support.NODE_NAME
    with open(os.path.join(ROOT, 'rviz', 'pinpoint3d.rviz')) as f:
        config = yaml.safe_load(f)
    manager = config['Visualization Manager']
    topics = {d['Class']: [] for d in manager['Displays']}
    for display in manager['Displays']:
        if 'Topic' in display:
            topics[display['Class']].append(display['Topic']['Value'])
    prefix = '/' + node.NODE_NAME
    assert topics['rviz_default_plugins/PointCloud2'] == ['/points', prefix + '/labeled_points']
    assert topics['rviz_default_plugins/MarkerArray'] == [prefix + '/markers']
    tool, = [t for t in manager['Tools'] if t['Class'] == 'rviz_default_plugins/PublishPoint']
    assert tool['Topic']['Value'] == '/clicked_point'
    # Latched outputs: RViz must ask for transient local + reliable to see the last result.
    for display in manager['Displays']:
        if display.get('Topic', {}).get('Value', '').startswith(prefix):
            assert display['Topic']['Durability Policy'] == 'Transient Local'
            assert display['Topic']['Reliability Policy'] == 'Reliable'
    # Not `map`: a real camera has no map frame, and RViz would then show nothing.
    assert manager['Global Options']['Fixed Frame'] == 'camera_link'


def test_generated_rviz_config_keeps_everything_else(tmp_path):
    template = os.path.join(ROOT, 'rviz', 'pinpoint3d.rviz')
    out = launch_support.write_rviz_config(str(tmp_path / 'a.rviz'), template, 'base_link',
                                           '/velodyne_points')
    with open(template) as f:
        original = yaml.safe_load(f)
    with open(out) as f:
        generated = yaml.safe_load(f)
    assert generated['Visualization Manager']['Global Options']['Fixed Frame'] == 'base_link'
    generated['Visualization Manager']['Global Options']['Fixed Frame'] = 'camera_link'
    generated['Visualization Manager']['Displays'][1]['Topic']['Value'] = '/points'
    assert generated == original
    with pytest.raises(launch_support.LaunchSetupError, match='fixed_frame'):
        launch_support.rviz_config(template, '', '/points')
