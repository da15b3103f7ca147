"""ROS 2 front end of pinpoint3d: node, message conversions and demo tools."""
