"""
Demo: a synthetic scan played on /points, the node, RViz, and optionally the scripted planner.

  ros2 launch pinpoint3d demo.launch.py                 # click in RViz (Publish Point)
  ros2 launch pinpoint3d demo.launch.py sensor:=lidar config:=<share>/config/kitti_lidar.yaml
  ros2 launch pinpoint3d demo.launch.py run_planner:=true use_rviz:=false
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription
from launch.conditions import IfCondition
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare


def generate_launch_description():
    """Include pinpoint3d.launch.py and add the scene player (and planner)."""
    share = FindPackageShare('pinpoint3d')
    return LaunchDescription([
        DeclareLaunchArgument('sensor', default_value='indoor',
                              description="synthetic scan to play: 'indoor' (RGB-D) or 'lidar'"),
        DeclareLaunchArgument(
            'config', default_value=PathJoinSubstitution([share, 'config', 'indoor_rgbd.yaml']),
            description='node parameter file'),
        DeclareLaunchArgument('checkpoint', default_value='',
                              description="model checkpoint; '' = the shipped weights"),
        DeclareLaunchArgument('use_rviz', default_value='true', description='start RViz'),
        DeclareLaunchArgument('run_planner', default_value='false',
                              description='run the scripted planner client once'),
        DeclareLaunchArgument('out', default_value='out/demo',
                              description='where the planner writes PLY, PNG and JSON'),
        IncludeLaunchDescription(
            PythonLaunchDescriptionSource(
                PathJoinSubstitution([share, 'launch', 'pinpoint3d.launch.py'])),
            launch_arguments={
                'config': LaunchConfiguration('config'),
                'checkpoint': LaunchConfiguration('checkpoint'),
                'input_topic': '/points',
                'use_rviz': LaunchConfiguration('use_rviz'),
            }.items(),
        ),
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
