"""
Demo: a synthetic scan played on /points, the node, RViz, and optionally the scripted planner.

  ros2 launch pinpoint3d demo.launch.py                 # click in RViz (Publish Point)
  ros2 launch pinpoint3d demo.launch.py sensor:=lidar   # kitti_lidar.yaml and its weights
  ros2 launch pinpoint3d demo.launch.py sensor:=tabletop  # a camera-frame RGB-D table scene
  ros2 launch pinpoint3d demo.launch.py run_planner:=true use_rviz:=false
"""

import os

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription, OpaqueFunction
from launch.conditions import IfCondition
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

# Parameter file of each synthetic sensor (its preset picks the weights).
SENSOR_CONFIGS = {'indoor': 'indoor_rgbd.yaml', 'lidar': 'kitti_lidar.yaml',
                  'tabletop': 'tabletop_rgbd.yaml'}
# Frame the scene player publishes each sensor's cloud in (scene_player.default_frame).
SENSOR_FRAMES = {'tabletop': 'camera_depth_optical_frame'}
RESULT_FILES = ('scene.npz', 'segmentation.ply', 'segmentation.png', 'summary.json')


def _fresh_outputs(context):
    """Remove the previous run's files, so the planner can only read this run's scene."""
    out = context.launch_configurations['out']
    for name in RESULT_FILES:
        path = os.path.join(out, name)
        if os.path.isfile(path):
            os.unlink(path)
    return []


def _config(context):
    """Return the parameter file: config:= when given, else the sensor's."""
    arg = context.launch_configurations
    sensor = arg['sensor']
    if sensor not in SENSOR_CONFIGS:
        raise ValueError(f'sensor:={sensor}: use one of {sorted(SENSOR_CONFIGS)}')
    return arg['config'] or SENSOR_CONFIGS[sensor]


def _include_main(context):
    share = FindPackageShare('pinpoint3d')
    return [IncludeLaunchDescription(
        PythonLaunchDescriptionSource(
            PathJoinSubstitution([share, 'launch', 'pinpoint3d.launch.py'])),
        launch_arguments={
            'config': _config(context),
            'checkpoint': LaunchConfiguration('checkpoint'),
            'input_topic': '/points',
            'fixed_frame': SENSOR_FRAMES.get(context.launch_configurations['sensor'], 'map'),
            'use_rviz': LaunchConfiguration('use_rviz'),
        }.items(),
    )]


def generate_launch_description():
    """Include pinpoint3d.launch.py and add the scene player (and planner)."""
    return LaunchDescription([
        DeclareLaunchArgument('sensor', default_value='indoor',
                              description="synthetic scan to play: 'indoor' (RGB-D), 'lidar' "
                                          "or 'tabletop' (RGB-D frame, camera optical frame)"),
        DeclareLaunchArgument(
            'config', default_value='',
            description="parameter file; '' = the sensor's (indoor_rgbd.yaml, kitti_lidar.yaml, "
                        'tabletop_rgbd.yaml)'),
        DeclareLaunchArgument('checkpoint', default_value='',
                              description="model checkpoint; '' = the preset's weights"),
        DeclareLaunchArgument('use_rviz', default_value='true', description='start RViz'),
        DeclareLaunchArgument('run_planner', default_value='false',
                              description='run the scripted planner client once'),
        DeclareLaunchArgument('out', default_value='out/demo',
                              description='where the planner writes PLY, PNG and JSON'),
        OpaqueFunction(function=_fresh_outputs),
        OpaqueFunction(function=_include_main),
        Node(
            package='pinpoint3d',
            executable='scene_player',
            name='scene_player',
            output='screen',
            arguments=['--sensor', LaunchConfiguration('sensor'),
                       '--save', [LaunchConfiguration('out'), '/scene.npz']],
            remappings=[('points', '/points')],
        ),
        Node(
            package='pinpoint3d',
            executable='demo_planner',
            name='demo_planner',
            output='screen',
            arguments=['--scene', [LaunchConfiguration('out'), '/scene.npz'],
                       '--out', LaunchConfiguration('out')],
            condition=IfCondition(LaunchConfiguration('run_planner')),
        ),
    ])
