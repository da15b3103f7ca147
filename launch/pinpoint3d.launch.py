"""
Start pinpoint3d_node with a parameter file, an optional checkpoint and optionally RViz.

  ros2 launch pinpoint3d pinpoint3d.launch.py input_topic:=/camera/camera/depth/color/points
  ros2 launch pinpoint3d pinpoint3d.launch.py config:=<share>/config/kitti_lidar.yaml \
      input_topic:=/velodyne_points use_rviz:=true
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare


def generate_launch_description():
    """Declare the arguments and the node (plus RViz when use_rviz is true)."""
    share = FindPackageShare('pinpoint3d')
    return LaunchDescription([
        DeclareLaunchArgument(
            'config', default_value=PathJoinSubstitution([share, 'config', 'indoor_rgbd.yaml']),
            description='parameter file (config/indoor_rgbd.yaml or config/kitti_lidar.yaml)'),
        DeclareLaunchArgument(
            'checkpoint', default_value='',
            description="model checkpoint (.pt); '' = the shipped weights/pinpoint3d_small.pt"),
        DeclareLaunchArgument(
            'input_topic', default_value='/points',
            description='sensor_msgs/PointCloud2 topic to segment'),
        DeclareLaunchArgument(
            'use_rviz', default_value='false',
            description='also start RViz with rviz/pinpoint3d.rviz (Publish Point tool ready)'),
        Node(
            package='pinpoint3d',
            executable='pinpoint3d_node',
            name='pinpoint3d_node',
            output='screen',
            emulate_tty=True,
            parameters=[
                LaunchConfiguration('config'),
                {'checkpoint': ParameterValue(LaunchConfiguration('checkpoint'), value_type=str)},
            ],
            remappings=[('points', LaunchConfiguration('input_topic'))],
        ),
        Node(
            package='rviz2',
            executable='rviz2',
            name='rviz2',
            arguments=['-d', PathJoinSubstitution([share, 'rviz', 'pinpoint3d.rviz'])],
            condition=IfCondition(LaunchConfiguration('use_rviz')),
        ),
    ])
