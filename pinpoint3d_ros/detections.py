"""
Segmentation results as a vision_msgs/Detection3DArray, the message 3D perception stacks share.

One Detection3D per object and one per part, all with the source cloud's header:

- ``id``: ``"object:<object_id>"`` or ``"object:<object_id>/part:<part_id>"``, the same ids as
  pinpoint3d/SegmentedObjects on ``~/objects``. vision_msgs has no field for point indices
  (it dropped the source cloud in 4.0), so the indices of a detection are those of the
  SegmentedObject/SegmentedPart with that id in the ``~/objects`` message of the same header
  stamp (``parse_detection_id`` turns an id back into the two numbers).
- ``bbox``: the region's oriented box (pinpoint3d_core.boxes; the axis-aligned box when none
  was computed): ``center`` = box centre and orientation, ``size`` = extents along the box axes.
- ``results``: one hypothesis, ``class_id`` ``"object"`` or ``"part"`` (or a name from
  ``class_names``), ``score`` = the region's mean model confidence, ``pose`` = the box pose
  (covariance left zero: unknown).

vision_msgs is imported only when a message is built, so the node runs where it is absent (the
PyPI wheels); ``vision_msgs_available()`` says whether it is there.
"""

import re
from typing import Iterable, Mapping, Optional, Tuple

import numpy as np

_ID = re.compile(r'^object:(\d+)(?:/part:(\d+))?$')


class VisionMsgsUnavailable(ImportError):
    """vision_msgs is not installed in this ROS environment."""


def _types():
    """Return the vision_msgs message classes, or raise VisionMsgsUnavailable with the fix."""
    try:
        from vision_msgs.msg import (BoundingBox3D, Detection3D, Detection3DArray,
                                     ObjectHypothesisWithPose)
    except ImportError as exc:
        raise VisionMsgsUnavailable(
            f'vision_msgs is not installed ({exc}); install ros-<distro>-vision-msgs '
            '(`rosdep install` does it from package.xml) to get ~/detections') from exc
    return Detection3DArray, Detection3D, BoundingBox3D, ObjectHypothesisWithPose


def vision_msgs_available() -> bool:
    """Return True when vision_msgs imports here."""
    try:
        _types()
    except VisionMsgsUnavailable:
        return False
    return True


def detection_id(object_id: int, part_id: int = 0) -> str:
    """Return the Detection3D.id of an object (part 0) or of one of its parts."""
    return f'object:{int(object_id)}' + (f'/part:{int(part_id)}' if part_id else '')


def parse_detection_id(text: str) -> Tuple[int, int]:
    """Return (object_id, part_id) of a Detection3D.id (part_id 0 for an object)."""
    match = _ID.match(text)
    if not match:
        raise ValueError(f"'{text}' is not a pinpoint3d detection id "
                         "('object:<id>' or 'object:<id>/part:<id>')")
    return int(match.group(1)), int(match.group(2) or 0)


def _box(region):
    """Return (centre, quaternion x y z w, size) of a region's oriented or axis-aligned box."""
    box = getattr(region, 'oriented_box', None)
    if box is not None:
        return box.center, box.quaternion, box.size
    return np.asarray(region.box_center), np.array([0.0, 0.0, 0.0, 1.0]), region.box_size


def _fill_pose(pose, center, quaternion):
    pose.position.x, pose.position.y, pose.position.z = (float(v) for v in center)
    o = pose.orientation
    o.x, o.y, o.z, o.w = (float(v) for v in quaternion)


def _detection(types, header, region, det_id, class_id):
    _, detection_type, bbox_type, hypothesis_type = types
    center, quaternion, size = _box(region)
    detection = detection_type()
    detection.header = header
    detection.id = det_id
    bbox = bbox_type()
    _fill_pose(bbox.center, center, quaternion)
    bbox.size.x, bbox.size.y, bbox.size.z = (float(v) for v in size)
    detection.bbox = bbox
    hypothesis = hypothesis_type()
    hypothesis.hypothesis.class_id = class_id
    hypothesis.hypothesis.score = float(region.score)
    _fill_pose(hypothesis.pose.pose, center, quaternion)
    detection.results = [hypothesis]
    return detection


def detections_from_regions(header, regions: Iterable, *, include_parts: bool = True,
                            class_names: Optional[Mapping[int, str]] = None):
    """
    Return a vision_msgs/msg/Detection3DArray for conversions.summarise's regions.

    ``header``: the source cloud's (or the target frame's) std_msgs/Header, copied into the
    array and every detection. ``class_names``: object id -> class name for ``class_id``
    (default ``"object"``; parts are ``"part"``, or ``"<name>/part"`` with a name). Raises
    VisionMsgsUnavailable when vision_msgs is not installed.
    """
    types = _types()
    out = types[0]()
    out.header = header
    class_names = class_names or {}
    detections = []
    for region in regions:
        name = class_names.get(int(region.label))
        detections.append(_detection(types, header, region, detection_id(region.label),
                                     name or 'object'))
        if include_parts:
            for part in region.parts or ():
                detections.append(_detection(
                    types, header, part, detection_id(region.label, part.label),
                    f'{name}/part' if name else 'part'))
    out.detections = detections
    return out
