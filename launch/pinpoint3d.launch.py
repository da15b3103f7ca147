"""
Start pinpoint3d_node with a parameter file and its preset's weights, optionally RViz.

  ros2 launch pinpoint3d pinpoint3d.launch.py input_topic:=/camera/camera/depth/color/points \
      fixed_frame:=camera_color_optical_frame use_rviz:=true
  ros2 launch pinpoint3d pinpoint3d.launch.py config:=kitti_lidar.yaml \
      input_topic:=/velodyne_points fixed_frame:=velodyne use_rviz:=true
  ros2 launch pinpoint3d pinpoint3d.launch.py config:=tabletop_rgbd.yaml checkpoint:=/my/w.pt
  ros2 launch pinpoint3d pinpoint3d.launch.py lifecycle:=true   # then: ros2 lifecycle set ...
  ros2 launch pinpoint3d pinpoint3d.launch.py lifecycle:=true autostart:=true   # serves at once

`config` names a shipped parameter file (config/) or a path; its preset (indoor, tabletop,
lidar) picks the shipped weights unless `checkpoint` is given (the launch log says which; the
node logs the weights it runs). `lifecycle:=true` starts the managed node, unconfigured, for a
lifecycle manager to bring up; with `autostart:=true` launch configures and activates it.
RViz gets a config generated from rviz/pinpoint3d.rviz with this launch's fixed frame, input
topic, namespace and click topic.
"""

import os
import tempfile

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, LogInfo, OpaqueFunction
from launch_ros.actions import Node


def _setup(context):
    """Resolve config, preset, weights and the RViz config from the launch arguments."""
    from ament_index_python.packages import get_package_share_directory
    from pinpoint3d_ros import launch_support
    arg = context.launch_configurations
    share = get_package_share_directory('pinpoint3d')
    config = launch_support.resolve_config(arg['config'], share)
    preset, checkpoint, note = launch_support.choose_weights(
        config, arg['checkpoint'], share, arg['preset'])
    namespace = arg['namespace']
    clicks = arg['clicked_point_topic']
    lifecycle = _true(arg['lifecycle'])
    managed = {}
    if lifecycle:
        from launch_ros.actions import LifecycleNode as node_class
        # launch_ros drives configure -> activate itself when asked (no lifecycle manager).
        managed = {'autostart': _true(arg['autostart'])}
    else:
        node_class = Node
    actions = [
        LogInfo(msg=f'pinpoint3d: {note}'),
        node_class(
            package='pinpoint3d',
            executable='pinpoint3d_lifecycle_node' if lifecycle else 'pinpoint3d_node',
            name=launch_support.NODE_NAME,
            namespace=namespace,
            output='screen',
            emulate_tty=True,
            parameters=[config, dict({'checkpoint': checkpoint, 'preset': preset},
                                     **_if_set(target_frame=arg['target_frame']))],
            # Relative names in the node, so `namespace` moves its outputs; the clicks stay
            # on the absolute topic RViz's Publish Point tool uses, whatever the namespace
            # (both rules: the node may subscribe to `clicked_point` or to `/clicked_point`).
            remappings=[('points', arg['input_topic']), ('clicked_point', clicks),
                        ('/clicked_point', clicks)],
            **managed,
        ),
    ]
    if _true(arg['use_rviz']):
        rviz_file = launch_support.write_rviz_config(
            os.path.join(tempfile.mkdtemp(prefix='pinpoint3d-rviz-'), 'pinpoint3d.rviz'),
            os.path.join(share, 'rviz', launch_support.RVIZ_FILE), arg['fixed_frame'],
            arg['input_topic'], namespace, clicks)
        actions += [
            LogInfo(msg=f"pinpoint3d: RViz fixed frame '{arg['fixed_frame']}', input "
                        f"'{arg['input_topic']}', clicks on '{clicks}' ({rviz_file})"),
            Node(package='rviz2', executable='rviz2', name='rviz2', output='screen',
                 arguments=['-d', rviz_file]),
        ]
    return actions


def _true(value):
    """Read a boolean launch argument the way launch's own conditions do."""
    return value.strip().lower() in ('true', '1', 'yes')


def _if_set(**values):
    """Return the non-empty launch arguments (empty ones leave the parameter file's value)."""
    return {k: v for k, v in values.items() if v}


def generate_launch_description():
    """Declare the arguments; the node and RViz are made once their values are known."""
    return LaunchDescription([
        DeclareLaunchArgument(
            'config', default_value='indoor_rgbd.yaml',
            description='parameter file: indoor_rgbd.yaml, tabletop_rgbd.yaml, '
                        'kitti_lidar.yaml (shipped, by name) or a path'),
        DeclareLaunchArgument(
            'preset', default_value='',
            description="indoor, tabletop or lidar; '' = the parameter file's preset"),
        DeclareLaunchArgument(
            'checkpoint', default_value='',
            description="model checkpoint (.pt path or shipped file name); '' = the preset's "
                        'weights'),
        DeclareLaunchArgument(
            'input_topic', default_value='/points',
            description='sensor_msgs/PointCloud2 topic to segment'),
        DeclareLaunchArgument(
            'fixed_frame', default_value='camera_link',
            description="RViz fixed frame: the cloud's frame, or one TF connects to it"),
        DeclareLaunchArgument(
            'clicked_point_topic', default_value='/clicked_point',
            description="topic of RViz's Publish Point tool the node reads clicks from"),
        DeclareLaunchArgument(
            'namespace', default_value='', description='namespace of the node'),
        DeclareLaunchArgument(
            'use_rviz', default_value='false',
            description='also start RViz (Publish Point tool ready)'),
        DeclareLaunchArgument(
            'target_frame', default_value='',
            description="frame of the results, e.g. base_link (through TF); '' = the "
                        "parameter file's target_frame (shipped: the cloud's frame)"),
        DeclareLaunchArgument(
            'lifecycle', default_value='false',
            description='start the lifecycle (managed) node, unconfigured: configure loads '
                        'the weights, activate starts serving'),
        DeclareLaunchArgument(
            'autostart', default_value='false',
            description='with lifecycle:=true, configure and activate the node at launch '
                        '(no lifecycle manager needed)'),
        OpaqueFunction(function=_setup),
    ])
