"""
pip install of the pinpoint3d Python modules and the `pinpoint3d` command (no ROS needed).

ROS users build the package with colcon instead (CMakeLists.txt); both install the same modules.
"""

from setuptools import find_packages, setup

setup(
    name='pinpoint3d',
    version='0.1.0',
    description='Few-click 3D object and part segmentation (PinPoint3D) with a ROS 2 node.',
    license='Apache-2.0',
    python_requires='>=3.10',
    packages=find_packages(include=['pinpoint3d_core', 'pinpoint3d_core.*',
                                    'pinpoint3d_ros', 'pinpoint3d_ros.*']),
    install_requires=['numpy', 'scipy', 'pyyaml', 'transforms3d', 'matplotlib', 'tqdm',
                      'open3d-cpu', 'torch'],
    extras_require={'replay': ['rosbags']},   # pinpoint3d_ros.replay (bag replay)
    entry_points={'console_scripts': ['pinpoint3d = pinpoint3d_core.cli:main']},
)
