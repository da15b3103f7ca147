"""
RViz MarkerArray: clicks as spheres, oriented boxes and text labels per object and part.

Each publish starts with DELETEALL so markers of objects that vanished do not linger; each
layer has its own namespace so users can hide it in RViz.
"""

from builtin_interfaces.msg import Duration
from geometry_msgs.msg import Point
from pinpoint3d_ros.conversions import PALETTE
from visualization_msgs.msg import Marker, MarkerArray

POSITIVE_RGBA = (0.1, 0.9, 0.1, 1.0)
NEGATIVE_RGBA = (0.95, 0.1, 0.1, 1.0)
CLICK_DIAMETER = 0.04


def _marker(header, ns, marker_id, kind):
    """Return a marker with the common fields set (ADD, identity orientation, no lifetime)."""
    m = Marker()
    m.header = header
    m.ns = ns
    m.id = int(marker_id)
    m.type = kind
    m.action = Marker.ADD
    m.pose.orientation.w = 1.0
    m.lifetime = Duration()
    return m


def _rgba(marker, rgba):
    marker.color.r, marker.color.g, marker.color.b, marker.color.a = (float(v) for v in rgba)


def _palette_rgba(index, alpha):
    r, g, b = PALETTE[(int(index) - 1) % len(PALETTE)] / 255.0
    return (r, g, b, alpha)


def _box(header, ns, marker_id, region, rgba):
    """Return a CUBE of the region's oriented box (the axis-aligned one where none was fitted)."""
    m = _marker(header, ns, marker_id, Marker.CUBE)
    box = getattr(region, 'oriented_box', None)
    if box is None:
        center, size = region.box_center, region.box_size
    else:
        center, size = box.center, box.size
    m.pose.position = Point(x=float(center[0]), y=float(center[1]), z=float(center[2]))
    if box is not None:
        o = m.pose.orientation
        o.x, o.y, o.z, o.w = (float(v) for v in box.quaternion)
    m.scale.x, m.scale.y, m.scale.z = (max(float(s), 0.005) for s in size)
    _rgba(m, rgba)
    return m


def _text(header, ns, marker_id, region, text, height):
    m = _marker(header, ns, marker_id, Marker.TEXT_VIEW_FACING)
    m.pose.position = Point(x=float(region.box_center[0]), y=float(region.box_center[1]),
                            z=float(region.box_center[2] + region.box_size[2] / 2 + height))
    m.scale.z = height
    m.text = text
    _rgba(m, (1.0, 1.0, 1.0, 1.0))
    return m


def build_markers(header, regions, clicks=()):
    """
    Build the MarkerArray for a segmentation result.

    ``regions``: conversions.Region list (objects with ``parts``); ``clicks``: iterable of
    (position (3,), positive) in the cloud frame.
    """
    out = MarkerArray()
    clear = Marker()
    clear.header = header
    clear.action = Marker.DELETEALL
    out.markers.append(clear)
    for i, (position, positive) in enumerate(clicks):
        m = _marker(header, 'clicks', i, Marker.SPHERE)
        m.pose.position = Point(x=float(position[0]), y=float(position[1]),
                                z=float(position[2]))
        m.scale.x = m.scale.y = m.scale.z = CLICK_DIAMETER
        _rgba(m, POSITIVE_RGBA if positive else NEGATIVE_RGBA)
        out.markers.append(m)
    for obj in regions:
        out.markers.append(_box(header, 'objects', obj.label, obj, _palette_rgba(obj.label, 0.25)))
        out.markers.append(_text(header, 'object_labels', obj.label, obj,
                                 f'object {obj.label} ({obj.score:.2f})', 0.06))
        for part in obj.parts or ():
            part_id = obj.label * 1000 + part.label
            out.markers.append(_box(header, 'parts', part_id, part,
                                    _palette_rgba(obj.label * 7 + part.label + 1, 0.45)))
            out.markers.append(_text(header, 'part_labels', part_id, part,
                                     f'{obj.label}.{part.label} ({part.score:.2f})', 0.04))
    return out
