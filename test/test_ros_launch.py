"""
Launch files and the RViz config, checked statically against the node's interface.

launch/launch_ros are not available as wheels, so when they do not import, small recording
fakes of the few classes the launch files use are injected into sys.modules (monkeypatch undoes
it). With a real ROS install the real modules are used and only the generic checks run.
"""

import importlib.util
import os
import re
import sys
import types

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Recorded:
    """A fake launch class: remembers its positional and keyword arguments."""

    def __init__(self, *args, **kwargs):
        self.args = args
        self.kwargs = kwargs


def _fake_modules():
    names = {
        'launch': ['LaunchDescription'],
        'launch.actions': ['DeclareLaunchArgument', 'IncludeLaunchDescription'],
        'launch.conditions': ['IfCondition'],
        'launch.launch_description_sources': ['PythonLaunchDescriptionSource'],
        'launch.substitutions': ['LaunchConfiguration', 'PathJoinSubstitution'],
        'launch_ros': [],
        'launch_ros.actions': ['Node'],
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
        assert value.args == ('pinpoint3d',) or value.args[0] == 'rviz2'
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


def by_type(description, kind):
    return [e for e in entities(description) if type(e).__name__ == kind]


def installed_programs():
    """Return the executables CMakeLists.txt installs into lib/pinpoint3d."""
    with open(os.path.join(ROOT, 'CMakeLists.txt')) as f:
        text = f.read()
    block = re.search(r'install\(PROGRAMS(.*?)DESTINATION', text, re.S)
    return {os.path.basename(p) for p in block.group(1).split()} if block else set()


def test_main_launch_declares_arguments_node_and_rviz(launch_api):
    if launch_api is None:
        pytest.skip('real launch installed: covered by the generic test below')
    description = load_description('pinpoint3d.launch.py')
    args = {a.args[0]: a.kwargs for a in by_type(description, 'DeclareLaunchArgument')}
    assert set(args) == {'config', 'checkpoint', 'input_topic', 'use_rviz'}
    assert all(kw.get('description') for kw in args.values())
    assert os.path.isfile(resolve(args['config']['default_value']))
    nodes = {n.kwargs['executable']: n.kwargs for n in by_type(description, 'Node')}
    node = nodes['pinpoint3d_node']
    assert node['package'] == 'pinpoint3d' and node['name'] == 'pinpoint3d_node'
    assert 'pinpoint3d_node' in installed_programs()
    assert os.access(os.path.join(ROOT, 'scripts', 'pinpoint3d_node'), os.X_OK)
    params_file, overrides = node['parameters']
    assert resolve(params_file) == '$(config)'
    value = overrides['checkpoint']
    assert type(value).__name__ == 'ParameterValue' and value.kwargs['value_type'] is str
    assert [(a, resolve(b)) for a, b in node['remappings']] == [('points', '$(input_topic)')]
    rviz = nodes['rviz2']
    assert rviz['arguments'][0] == '-d'
    assert os.path.isfile(resolve(rviz['arguments'][1]))
    assert resolve(rviz['condition'].args[0]) == '$(use_rviz)'


def test_demo_launch_includes_main_launch_and_demo_tools(launch_api):
    if launch_api is None:
        pytest.skip('real launch installed')
    description = load_description('demo.launch.py')
    include, = by_type(description, 'IncludeLaunchDescription')
    source = include.args[0]
    assert os.path.isfile(resolve(source.args[0]))
    forwarded = dict(include.kwargs['launch_arguments'])
    assert forwarded['input_topic'] == '/points'
    assert {'config', 'checkpoint', 'use_rviz'} <= set(forwarded)
    nodes = {n.kwargs['executable']: n.kwargs for n in by_type(description, 'Node')}
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


@pytest.mark.parametrize('name', ['indoor_rgbd.yaml', 'kitti_lidar.yaml'])
def test_parameter_files_use_only_valid_declared_parameters(name):
    params = pytest.importorskip('pinpoint3d_ros.params')
    with open(os.path.join(ROOT, 'config', name)) as f:
        data = yaml.safe_load(f)
    values = data['/**']['ros__parameters']
    assert set(values) <= set(params.BY_NAME), set(values) - set(params.BY_NAME)
    for key, value in values.items():
        assert type(value) is type(params.BY_NAME[key].default), key
        assert params.check(key, value) is None, key
    assert 'checkpoint' not in values   # the launch argument owns it


def test_rviz_config_topics_match_the_node():
    node = pytest.importorskip('pinpoint3d_ros.node')
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
    assert manager['Global Options']['Fixed Frame'] == 'map'   # the demo player's frame
