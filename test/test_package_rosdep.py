"""
package.xml against the rosdep database for Ubuntu 24.04 (Noble), Jazzy and Kilted.

No Noble machine and no rosdep cache exist here, so the rules the package needs are written
below as data, taken from ros/rosdistro: `rosdep/python.yaml` (the system keys and what they
install on Ubuntu) and `<distro>/distribution.yaml` (the ROS packages each distro releases).
The test fails when package.xml names a key without a Noble rule, a key that only installs
through pip (rosdep's pip installer stops on Noble's externally managed Python), a package that
the code imports but package.xml does not declare, or a declared package nothing uses.
"""

import ast
import os
import sys
import xml.etree.ElementTree as ElementTree

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# ROS packages released in both distros (ros/rosdistro jazzy/ and kilted/distribution.yaml:
# ament_cmake, ament_lint, common_interfaces, geometry2, launch, launch_ros, rcl_interfaces,
# rclpy, rosidl_defaults, rviz, vision_msgs (4.1 in Jazzy, 4.2 in Kilted), diagnostics).
ROS_PACKAGES = {
    distro: {
        'ament_cmake', 'ament_cmake_python', 'ament_cmake_pytest', 'ament_flake8',
        'ament_pep257', 'ament_index_python', 'builtin_interfaces', 'diagnostic_msgs',
        'diagnostic_updater', 'geometry_msgs', 'launch', 'launch_ros', 'lifecycle_msgs',
        'rcl_interfaces', 'rclpy', 'rosidl_default_generators', 'rosidl_default_runtime',
        'rviz2', 'sensor_msgs', 'std_msgs', 'std_srvs', 'tf2_ros', 'tf2_ros_py',
        'vision_msgs', 'visualization_msgs',
    }
    for distro in ('jazzy', 'kilted')
}

# rosdep/python.yaml, `ubuntu:` entries as they resolve on noble ('*' rules apply to every
# release without its own entry). None = no rule for Noble: rosdep stops with "Cannot locate
# rosdep definition". 'pip' = only a pip rule, which fails under PEP 668 on Noble.
SYSTEM_KEYS_NOBLE = {
    'python3-numpy': 'python3-numpy',
    'python3-scipy': 'python3-scipy',
    'python3-yaml': 'python3-yaml',
    'python3-matplotlib': 'python3-matplotlib',
    'python3-tqdm': 'python3-tqdm',                 # '*' rule (xenial: null)
    'python3-transforms3d': 'python3-transforms3d',  # '*' rule (bionic/focal: pip)
    'python3-pytest': 'python3-pytest',
    'python3-hypothesis': 'python3-hypothesis',
    'python3-open3d': None,          # no such key; only python3-open3d-pip
    'python3-open3d-pip': 'pip',
    'python3-torch': None,           # no such key
    'python3-pytorch-pip': None,     # migrated away at its 2025-04-30 end of life
}

# Top-level Python modules -> the rosdep key that provides them on a stock install. Modules
# mapped to None are installed by tools/install_python_deps.sh, never through rosdep.
MODULE_KEYS = {
    'numpy': 'python3-numpy', 'scipy': 'python3-scipy', 'yaml': 'python3-yaml',
    'matplotlib': 'python3-matplotlib', 'tqdm': 'python3-tqdm',
    'transforms3d': 'python3-transforms3d', 'pytest': 'python3-pytest',
    'hypothesis': 'python3-hypothesis', 'tf2_ros': 'tf2_ros_py',
    'torch': None, 'MinkowskiEngine': None, 'open3d': None, 'rosbags': None,
}
PIP_INSTALLED = sorted(m for m, key in MODULE_KEYS.items() if key is None)
OWN_MODULES = {'pinpoint3d', 'pinpoint3d_core', 'pinpoint3d_ros', 'conftest', 'helpers',
               'patch_minkowski'}
# Keys that no Python file imports but the build or the launch files need.
BUILD_ONLY = {'ament_cmake', 'ament_cmake_python', 'ament_cmake_pytest',
              'rosidl_default_generators', 'rosidl_default_runtime', 'rviz2'}
TEST_ONLY = {'python3-pytest', 'python3-hypothesis', 'python3-transforms3d',
             'ament_flake8', 'ament_pep257'}


def package_keys():
    """Return {dependency tag: [keys]} from package.xml."""
    root = ElementTree.parse(os.path.join(ROOT, 'package.xml')).getroot()
    keys = {}
    for element in root:
        if element.tag.endswith('depend'):
            keys.setdefault(element.tag, []).append(element.text.strip())
    return keys


def all_keys():
    return {key for keys in package_keys().values() for key in keys}


def imported_modules(folders, with_tests=False):
    """Return the top-level modules imported anywhere in the given folders."""
    found = set()
    for folder in folders:
        for base, dirs, files in os.walk(os.path.join(ROOT, folder)):
            dirs[:] = [d for d in dirs if not d.startswith(('.', '__'))]
            for name in files:
                path = os.path.join(base, name)
                if not (name.endswith('.py') or folder == 'scripts'):
                    continue
                with open(path, encoding='utf-8') as f:
                    tree = ast.parse(f.read(), path)
                for node in ast.walk(tree):
                    if isinstance(node, ast.Import):
                        found.update(a.name.split('.')[0] for a in node.names)
                    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                        found.add(node.module.split('.')[0])
    # a folder's own helper modules (test/label_fixture.py) are not dependencies
    local = {os.path.splitext(n)[0] for folder in folders
             for n in os.listdir(os.path.join(ROOT, folder)) if n.endswith('.py')}
    return found - set(sys.stdlib_module_names) - OWN_MODULES - local


@pytest.mark.parametrize('distro', ['jazzy', 'kilted'])
def test_every_key_resolves_on_noble_to_an_apt_package(distro):
    unresolved = []
    for key in sorted(all_keys()):
        if key in ROS_PACKAGES[distro]:
            continue
        rule = SYSTEM_KEYS_NOBLE.get(key)
        if rule is None or rule == 'pip':
            unresolved.append(f'{key} ({"pip only" if rule else "no Noble rule"})')
    assert not unresolved, f'rosdep install would stop on {distro}/noble: {unresolved}'


def test_package_xml_is_format_3_with_the_licence_file():
    root = ElementTree.parse(os.path.join(ROOT, 'package.xml')).getroot()
    assert root.get('format') == '3'
    licence = root.find('license')
    assert licence.text == 'Apache-2.0' and licence.get('file') == 'LICENSE'
    with open(os.path.join(ROOT, 'LICENSE')) as f:
        text = f.read()
    assert 'Apache License' in text and 'Version 2.0, January 2004' in text
    with open(os.path.join(ROOT, 'setup.py')) as f:
        assert "license='Apache-2.0'" in f.read()


def test_runtime_imports_are_declared():
    """Every third-party module the installed code imports has a key or the pip script."""
    modules = imported_modules(['pinpoint3d_core', 'pinpoint3d_ros', 'launch', 'scripts'])
    keys = all_keys()
    missing = []
    for module in sorted(modules):
        key = MODULE_KEYS.get(module, module)   # ROS packages: the module is the package
        if key is None:
            continue
        if key not in keys:
            missing.append(f'{module} -> {key}')
    assert not missing, f'imported but not in package.xml: {missing}'


def test_test_imports_are_declared_as_test_or_runtime_dependencies():
    modules = imported_modules(['test'])
    keys = all_keys()
    missing = sorted(m for m in modules
                     if MODULE_KEYS.get(m, m) is not None and MODULE_KEYS.get(m, m) not in keys)
    assert not missing, missing


def test_no_declared_key_is_unused():
    runtime = imported_modules(['pinpoint3d_core', 'pinpoint3d_ros', 'launch', 'scripts'])
    tests = imported_modules(['test'])
    used = {MODULE_KEYS.get(m, m) for m in runtime | tests}
    unused = sorted(all_keys() - used - BUILD_ONLY)
    assert not unused, f'declared in package.xml but never used: {unused}'
    test_keys = set(package_keys().get('test_depend', []))
    runtime_keys = {MODULE_KEYS.get(m, m) for m in runtime}
    assert TEST_ONLY <= test_keys
    assert not (test_keys & runtime_keys), 'a runtime import is declared as test_depend only'


def test_pip_installed_modules_are_the_ones_the_install_script_installs():
    with open(os.path.join(ROOT, 'tools', 'install_python_deps.sh')) as f:
        script = f.read()
    for module, pip_name in (('torch', 'torch'), ('open3d', 'open3d'),
                             ('rosbags', 'rosbags'), ('MinkowskiEngine', 'build_minkowski')):
        assert module in PIP_INSTALLED
        assert pip_name in script, module
    with open(os.path.join(ROOT, 'package.xml')) as f:
        comment = f.read()
    for module in PIP_INSTALLED:
        assert module in comment, f'package.xml does not say where {module} comes from'
