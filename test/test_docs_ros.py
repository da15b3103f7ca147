"""docs/ros.md against the files it names: scripts, parameter files, launch arguments."""

import ast
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
with open(os.path.join(ROOT, 'docs', 'ros.md')) as _f:
    DOC = _f.read()


def launch_arguments(name):
    """Return the DeclareLaunchArgument names of launch/<name>, read with ast."""
    with open(os.path.join(ROOT, 'launch', name)) as f:
        tree = ast.parse(f.read())
    return {node.args[0].value for node in ast.walk(tree)
            if isinstance(node, ast.Call) and getattr(node.func, 'id', '') ==
            'DeclareLaunchArgument'}


def test_scripts_the_install_steps_name_exist_and_run():
    for script in set(re.findall(r'tools/[\w.]+\.(?:sh|py)', DOC)):
        path = os.path.join(ROOT, script)
        with open(path) as f:
            run = f.readline().startswith('#!')   # tools/env.sh is sourced, not run
        assert not run or os.access(path, os.X_OK), script


def test_every_config_named_is_shipped():
    for name in set(re.findall(r'config:=([\w.]+\.yaml)', DOC)):
        assert os.path.isfile(os.path.join(ROOT, 'config', name)), name


def launch_commands():
    """Return (launch file, command) of each `ros2 launch pinpoint3d` in docs and launch files."""
    text = DOC
    for name in ('pinpoint3d.launch.py', 'demo.launch.py'):
        with open(os.path.join(ROOT, 'launch', name)) as f:
            text += '\n' + ast.get_docstring(ast.parse(f.read()))
    text = text.replace('\\\n', ' ')
    return re.findall(r'ros2 launch pinpoint3d ([\w.]+\.launch\.py)([^\n`]*)', text)


def test_launch_arguments_in_the_docs_are_declared():
    commands = launch_commands()
    assert len(commands) >= 6
    main = launch_arguments('pinpoint3d.launch.py')
    for launch, command in commands:
        declared = launch_arguments(launch) | (main if launch == 'pinpoint3d.launch.py' else set())
        for arg in re.findall(r'\b(\w+):=', command.split('#')[0]):
            assert arg in declared, (launch, arg, command)


def test_executables_named_are_installed():
    with open(os.path.join(ROOT, 'CMakeLists.txt')) as f:
        cmake = f.read()
    for exe in ('pinpoint3d_node', 'pinpoint3d_lifecycle_node', 'scene_player', 'demo_planner',
                'replay'):
        assert f'scripts/{exe}' in cmake and f'`{exe}`' in DOC


def _fields(path):
    """Return the field names of a .msg file, or of the request and response of a .srv."""
    with open(os.path.join(ROOT, path)) as f:
        parts = f.read().split('\n---\n')
    return [{line.split()[1] for line in part.splitlines()
             if line.strip() and not line.startswith('#')} for part in parts]


def test_python_examples_compile_and_use_real_fields():
    blocks = re.findall(r'```python\n(.*?)```', DOC, re.S)
    assert len(blocks) >= 2
    request, response = _fields('srv/ClickSegment.srv')
    obj, = _fields('msg/SegmentedObject.msg')
    click, = _fields('msg/Click.msg')
    for block in blocks:
        ast.parse(block)
        for name in re.findall(r'\bresp\.(\w+)', block):
            assert name in response, name
        for name in re.findall(r'\bobj\.(\w+)', block):
            assert name in obj, name
        for name in re.findall(r'\breq\.(\w+)', block):
            assert name in request, name
        for call in re.findall(r'\bClick\(((?:[^()]|\([^()]*\))*)\)', block):
            for name in re.findall(r'(\w+)=', call):
                assert name in click | {'x', 'y', 'z'}, name


def test_every_node_parameter_is_in_the_parameter_table():
    import pytest
    params = pytest.importorskip('pinpoint3d_ros.params')
    section = DOC.split('## Parameters', 1)[1].split('\n## ', 1)[0]
    documented = set(re.findall(r'^\| `(\w+)`', section, re.M))
    documented |= set(re.findall(r'`(click_\w+)`', section))
    assert set(params.BY_NAME) <= documented, set(params.BY_NAME) - documented
    assert documented <= set(params.BY_NAME), documented - set(params.BY_NAME)
