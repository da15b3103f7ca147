"""
PointCloud2 <-> numpy without sensor_msgs_py (not shipped as a wheel).

Reading builds one numpy structured dtype from the message's fields and views the message
buffer through it, so x/y/z come back as strided views when the layout allows (no copy).
Every array is in row-major index order: index ``i`` is point ``i`` of the source cloud, also
for organised clouds and NaN points, so indices can be handed back to the sender unchanged.
"""

import array
from dataclasses import dataclass
import sys

import numpy as np
from pinpoint3d_core.boxes import oriented_box, OrientedBox
from pinpoint3d_core.errors import InvalidCloudError
from sensor_msgs.msg import PointCloud2, PointField

# PointField datatype constant -> numpy type code (byte order added later).
_DATATYPES = {
    PointField.INT8: 'i1', PointField.UINT8: 'u1',
    PointField.INT16: 'i2', PointField.UINT16: 'u2',
    PointField.INT32: 'i4', PointField.UINT32: 'u4',
    PointField.FLOAT32: 'f4', PointField.FLOAT64: 'f8',
}
_NATIVE = '<' if sys.byteorder == 'little' else '>'

LABELED_DTYPE = np.dtype({
    'names': ['x', 'y', 'z', 'rgb', 'object_id', 'part_id'],
    'formats': ['<f4', '<f4', '<f4', '<f4', '<u4', '<u4'],
    'offsets': [0, 4, 8, 12, 16, 20],
    'itemsize': 24,
})


class CloudFormatError(InvalidCloudError):
    """A PointCloud2 message cannot be read: missing fields, bad sizes or truncated data."""


@dataclass
class CloudArrays:
    """The arrays read from one PointCloud2, all indexed like the source cloud (row-major)."""

    points: np.ndarray          # (N, 3) float32 or float64, may be a read-only strided view
    colors: np.ndarray = None   # (N, 3) uint8 or None
    intensity: np.ndarray = None  # (N,) float32 or None
    height: int = 1
    width: int = 0

    @property
    def size(self):
        """Return the number of points, NaN points included."""
        return int(self.points.shape[0])


def _field_table(msg):
    """Map field name -> (offset, numpy type code, count), checking each field fits."""
    table = {}
    names = [field.name for field in msg.fields]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise CloudFormatError(
            f'PointCloud2 field(s) {", ".join(repr(n) for n in repeated)} appear more than '
            'once; which one holds the data is ambiguous. Publish each field once.')
    for field in msg.fields:
        code = _DATATYPES.get(field.datatype)
        if code is None:
            raise CloudFormatError(
                f"PointCloud2 field '{field.name}' has unknown datatype {field.datatype}; "
                'expected one of the sensor_msgs/PointField constants 1..8.')
        count = max(int(field.count), 1)
        end = field.offset + np.dtype(code).itemsize * count
        if end > msg.point_step:
            raise CloudFormatError(
                f"PointCloud2 field '{field.name}' ends at byte {end} but point_step is "
                f'{msg.point_step}; fix the field offsets or point_step.')
        table[field.name] = (int(field.offset), code, count)
    return table


def _check_sizes(msg):
    """Raise CloudFormatError unless width, height, row_step and data length agree."""
    n_bytes = len(msg.data)
    if msg.width * msg.height == 0:
        if n_bytes:
            raise CloudFormatError(
                f'PointCloud2 has width*height == 0 but {n_bytes} bytes of data.')
        return
    if msg.point_step <= 0:
        raise CloudFormatError('PointCloud2 point_step is 0; set it to the size of one point.')
    if msg.row_step < msg.width * msg.point_step:
        raise CloudFormatError(
            f'PointCloud2 row_step {msg.row_step} is smaller than width*point_step '
            f'({msg.width}*{msg.point_step}); set row_step = width * point_step (+ padding).')
    if n_bytes != msg.row_step * msg.height:
        raise CloudFormatError(
            f'PointCloud2 data has {n_bytes} bytes but row_step*height = '
            f'{msg.row_step}*{msg.height} = {msg.row_step * msg.height}; the message is '
            'truncated or its sizes are wrong.')


def _view(msg, fields, order):
    """Return the (height*width,) structured view of the data with only ``fields``."""
    dtype = np.dtype({
        'names': list(fields),
        'formats': [(order + code) if count == 1 else (order + code, count)
                    for _, code, count in fields.values()],
        'offsets': [offset for offset, _, _ in fields.values()],
        'itemsize': msg.point_step,
    })
    buf = memoryview(msg.data).cast('B') if not isinstance(msg.data, bytes) else msg.data
    if msg.height == 1 or msg.row_step == msg.width * msg.point_step:
        return np.frombuffer(buf, dtype=dtype, count=msg.width * msg.height)
    grid = np.ndarray(shape=(msg.height, msg.width), dtype=dtype, buffer=buf,
                      strides=(msg.row_step, msg.point_step))
    return grid.reshape(-1)   # copies: rows are not evenly spaced


def _xyz(msg, table, order, records):
    """Return (N, 3) coordinates, as a strided view when x, y, z are adjacent and alike."""
    (ox, cx, _), (oy, cy, _), (oz, cz, _) = (table[k] for k in 'xyz')
    size = np.dtype(cx).itemsize
    contiguous = (cx == cy == cz and cx in ('f4', 'f8') and oy == ox + size
                  and oz == ox + 2 * size)
    if contiguous and order == _NATIVE and (
            msg.height == 1 or msg.row_step == msg.width * msg.point_step):
        buf = memoryview(msg.data).cast('B') if not isinstance(msg.data, bytes) else msg.data
        return np.ndarray(shape=(msg.width * msg.height, 3), dtype=np.dtype(cx), buffer=buf,
                          offset=ox, strides=(msg.point_step, size))
    out_type = np.float64 if 'f8' in (cx, cy, cz) else np.float32
    points = np.empty((records.shape[0], 3), dtype=out_type)
    for i, name in enumerate('xyz'):
        points[:, i] = records[name]
    return points


def _colors(table, order, records):
    """Return (N, 3) uint8 colours from rgb/rgba (packed float32 or uint32) or r, g, b."""
    for name in ('rgb', 'rgba'):
        if name in table:
            offset, code, _ = table[name]
            if code not in ('f4', 'u4', 'i4'):
                raise CloudFormatError(
                    f"PointCloud2 field '{name}' must be FLOAT32 or UINT32 (packed 0x00RRGGBB),"
                    f' not {code}.')
            return unpack_rgb(records[name].view(order + 'u4'))
    if all(k in table for k in 'rgb'):
        colors = np.empty((records.shape[0], 3), dtype=np.uint8)
        for i, name in enumerate('rgb'):
            channel = records[name]
            if channel.dtype.kind == 'f':   # 0..1 floats
                channel = np.clip(np.nan_to_num(channel) * 255.0 + 0.5, 0, 255)
            colors[:, i] = channel
        return colors
    return None


def _check_xyz_overlap(table):
    """Refuse x, y, z fields that share bytes (a layout bug: two axes would read alike)."""
    spans = sorted((table[k][0], table[k][0] + np.dtype(table[k][1]).itemsize, k)
                   for k in 'xyz')
    for (_, end, a), (start, _, b) in zip(spans, spans[1:]):
        if start < end:
            raise CloudFormatError(
                f"PointCloud2 fields '{a}' and '{b}' overlap (bytes {start}..{end - 1} are "
                'shared); fix the field offsets.')


# Coordinates beyond this (metres) are no sensor's; with a wrong byte order they are typical.
_ABSURD_M = 1.0e6
_PLAUSIBLE_M = 1.0e4


def _check_byte_order(msg, points):
    """Name the likely cause when the coordinates only make sense in the other byte order."""
    with np.errstate(invalid='ignore', over='ignore'):   # garbage bytes are the question here
        sample = np.asarray(points[:4096], dtype=np.float64)
        finite = sample[np.isfinite(sample).all(axis=1)]
        if not finite.size or np.abs(finite).max() < _ABSURD_M:
            return   # all NaN: nothing to judge (the core says so); sane: nothing to say
        swapped = np.asarray(points[:4096]).byteswap().astype(np.float64)
        swapped = swapped[np.isfinite(swapped).all(axis=1)]
        plausible = swapped.size and np.abs(swapped).max() < _PLAUSIBLE_M
    if not plausible:
        return
    flag = 'true' if msg.is_bigendian else 'false'
    actual = 'little' if msg.is_bigendian else 'big'
    reach = f'{np.abs(finite).max():.3g} m'
    raise CloudFormatError(
        f'PointCloud2 coordinates reach {reach} with is_bigendian {flag}, but read as '
        f'{actual}-endian they stay within {np.abs(swapped).max():.3g} m: the is_bigendian '
        f'flag is likely wrong; set it to {"false" if msg.is_bigendian else "true"}.')


def cloud_to_arrays(msg):
    """
    Read points, colours and intensity from any PointCloud2 layout.

    Handles float32/float64 coordinates, packed rgb/rgba, intensity of any numeric type,
    point_step and row_step padding, organised clouds and big-endian data. NaN points are
    kept so that indices match the source. Raises CloudFormatError with the fix otherwise.
    """
    if not isinstance(msg, PointCloud2):
        raise CloudFormatError(f'expected sensor_msgs/PointCloud2, got {type(msg).__name__}.')
    if msg.width * msg.height == 0 and not len(msg.data):   # an empty scan, any fields
        return CloudArrays(points=np.empty((0, 3), np.float32), height=msg.height, width=0)
    table = _field_table(msg)
    missing = [k for k in 'xyz' if k not in table]
    if missing:
        raise CloudFormatError(
            f'PointCloud2 has no field(s) {", ".join(missing)} (fields: '
            f'{", ".join(table) or "none"}); publish a cloud with x, y, z coordinates.')
    for name in 'xyz':
        offset, code, count = table[name]
        if count != 1 or code not in ('f4', 'f8'):
            raise CloudFormatError(
                f"PointCloud2 field '{name}' must be one FLOAT32 or FLOAT64 value "
                f'(got {code} x{count}).')
    _check_xyz_overlap(table)
    _check_sizes(msg)
    order = '>' if msg.is_bigendian else '<'
    wanted = {k: v for k, v in table.items()
              if k in ('x', 'y', 'z', 'rgb', 'rgba', 'r', 'g', 'b', 'intensity')
              and v[2] == 1}
    if msg.width * msg.height == 0:
        return CloudArrays(points=np.empty((0, 3), np.float32), height=msg.height, width=0)
    records = _view(msg, wanted, order)
    points = _xyz(msg, table, order, records)
    if points.dtype.byteorder not in ('=', '|', _NATIVE):
        points = points.astype(points.dtype.newbyteorder('='))
    _check_byte_order(msg, points)
    intensity = None
    if 'intensity' in wanted:
        intensity = records['intensity'].astype(np.float32)
    return CloudArrays(points=points, colors=_colors(wanted, order, records),
                       intensity=intensity, height=int(msg.height), width=int(msg.width))


# Label colours: a fixed qualitative palette, so object k has the same colour in every frame.
PALETTE = np.array([
    [230, 25, 75], [60, 180, 75], [0, 130, 200], [245, 130, 48], [145, 30, 180],
    [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 190], [0, 128, 128],
    [220, 190, 255], [170, 110, 40], [255, 250, 200], [128, 0, 0], [170, 255, 195],
    [128, 128, 0], [255, 215, 180], [0, 0, 128], [255, 225, 25], [128, 128, 128],
], dtype=np.uint8)
BACKGROUND_RGB = np.array([90, 90, 90], dtype=np.uint8)


def _label_table(max_object, max_part, colouring):
    """Return packed colours for every (object, part) pair up to the maxima, (O+1, P+1)."""
    k = len(PALETTE)
    obj = np.arange(max_object + 1)[:, None]
    part = np.arange(max_part + 1)[None, :]
    slot = np.where(obj > 0, (obj - 1) % k + 1, 0) + 0 * part      # 0 = background
    lut = np.concatenate([BACKGROUND_RGB[None], PALETTE, PALETTE // 2, PALETTE])
    if colouring == 'part':
        slot = np.where((obj > 0) & (part == 0), slot + k, slot)  # darkened object colour
        slot = np.where((obj > 0) & (part > 0), (obj * 7 + part) % k + 2 * k + 1, slot)
    return pack_rgb(lut[slot.ravel()]).view(np.uint32).reshape(slot.shape)


def label_rgb(object_ids, part_ids=None, colouring='part', base_colors=None):
    """
    Return packed 0x00RRGGBB uint32 label colours, one gather through a small table.

    ``object``: one colour per object. ``part``: parts take their own palette colour and
    object points without a part a darkened object colour. Background keeps a dimmed copy
    of ``base_colors`` (the sensor colours) when given, else grey.
    """
    obj = np.asarray(object_ids).astype(np.uint32, copy=False)
    if part_ids is None or colouring != 'part':
        part = np.zeros_like(obj)
    else:
        part = np.asarray(part_ids).astype(np.uint32, copy=False)
    max_object = int(obj.max()) if obj.size else 0
    max_part = int(part.max()) if part.size else 0
    if (max_object + 1) * (max_part + 1) > 1 << 22:   # absurd ids: fold them, stay bounded
        obj = np.where(obj > 0, (obj - 1) % len(PALETTE) + 1, 0).astype(np.uint32)
        part = np.where(part > 0, (part - 1) % len(PALETTE) + 1, 0).astype(np.uint32)
        max_object, max_part = int(obj.max()), int(part.max())
    table = _label_table(max_object, max_part, colouring).ravel()
    packed = table[obj * np.uint32(max_part + 1) + part]
    if base_colors is not None:
        background = obj == 0
        dim = np.asarray(base_colors, dtype=np.uint8)[background] // 2
        packed[background] = pack_rgb(dim).view(np.uint32)
    return packed


def unpack_rgb(packed):
    """Unpack 0x00RRGGBB (uint32 or the float32 reinterpretation) into (N, 3) uint8."""
    packed = np.asarray(packed)
    if packed.dtype.kind == 'f':
        packed = packed.view(np.uint32)
    colors = np.empty((packed.shape[0], 3), dtype=np.uint8)
    colors[:, 0] = (packed >> 16) & 0xFF
    colors[:, 1] = (packed >> 8) & 0xFF
    colors[:, 2] = packed & 0xFF
    return colors


def label_colors(object_ids, part_ids=None, colouring='part', base_colors=None):
    """Return (N, 3) uint8 label colours (see label_rgb for the scheme)."""
    return unpack_rgb(label_rgb(object_ids, part_ids, colouring, base_colors))


def pack_rgb(colors):
    """Pack (N, 3) uint8 colours into the float32 ``rgb`` encoding RViz and PCL read."""
    colors = np.asarray(colors, dtype=np.uint32)
    packed = (colors[:, 0] << 16) | (colors[:, 1] << 8) | colors[:, 2]
    return packed.astype('<u4').view('<f4')


def _byte_array(records):
    """Return the records' bytes as array.array('B'), which rclpy stores without checks."""
    out = array.array('B')
    out.frombytes(np.ascontiguousarray(records).view(np.uint8).reshape(-1))
    return out


def make_fields(names_types):
    """Build PointField entries from (name, PointField datatype, offset) triples."""
    return [PointField(name=name, offset=offset, datatype=datatype, count=1)
            for name, datatype, offset in names_types]


LABELED_FIELDS = (('x', PointField.FLOAT32, 0), ('y', PointField.FLOAT32, 4),
                  ('z', PointField.FLOAT32, 8), ('rgb', PointField.FLOAT32, 12),
                  ('object_id', PointField.UINT32, 16), ('part_id', PointField.UINT32, 20))


def labeled_cloud(header, points, object_ids, part_ids, colors=None, height=1, width=None):
    """
    Build the labelled PointCloud2 (x, y, z, rgb, uint32 object_id, uint32 part_id).

    Points keep the source order and organisation (``height``/``width``), NaN points too,
    so index ``i`` of the output is index ``i`` of the input. ``colors``: (N, 3) uint8 or
    packed (N,) uint32 (``label_rgb``); default the label colours.
    """
    points = np.asarray(points)
    n = points.shape[0]
    width = n // max(height, 1) if width is None else width
    if height * width != n:
        raise CloudFormatError(f'height*width = {height}*{width} does not match {n} points.')
    if colors is None:
        colors = label_rgb(object_ids, part_ids)
    colors = np.asarray(colors)
    rgb = colors.astype(np.uint32) if colors.ndim == 1 else pack_rgb(colors).view(np.uint32)
    # Fill the message buffer itself as an (N, 6) table of 4-byte words: no intermediate
    # array, no copy, and ~5x faster than assigning the fields of a structured array.
    data = array.array('B', [0]) * (n * 24)
    records = np.frombuffer(data, dtype='<f4').reshape(n, 6) if n else np.empty((0, 6), '<f4')
    words = records.view('<u4')
    records[:, :3] = points
    words[:, 3] = rgb
    words[:, 4] = object_ids
    words[:, 5] = part_ids
    msg = PointCloud2()
    msg.header = header
    msg.height = int(height)
    msg.width = int(width)
    msg.fields = make_fields(LABELED_FIELDS)
    msg.is_bigendian = False
    msg.point_step = 24
    msg.row_step = msg.point_step * msg.width
    msg.is_dense = bool(np.isfinite(points).all())
    msg.data = data
    return msg


def labeled_cloud_to_arrays(msg):
    """Read a labelled cloud back: (points (N, 3), object_ids (N,), part_ids (N,))."""
    arrays = cloud_to_arrays(msg)
    table = _field_table(msg)
    for name in ('object_id', 'part_id'):
        if name not in table:
            raise CloudFormatError(f"labelled PointCloud2 has no '{name}' field.")
    order = '>' if msg.is_bigendian else '<'
    records = _view(msg, {k: table[k] for k in ('object_id', 'part_id')}, order)
    return (arrays.points, records['object_id'].astype(np.uint32),
            records['part_id'].astype(np.uint32))


def arrays_to_cloud(header, points, colors=None, intensity=None, height=1, width=None):
    """Build an x, y, z float32 cloud with optional packed rgb and intensity (for players)."""
    points = np.asarray(points)
    n = points.shape[0]
    width = n // max(height, 1) if width is None else width
    names = [('x', '<f4'), ('y', '<f4'), ('z', '<f4')]
    if colors is not None:
        names.append(('rgb', '<f4'))
    if intensity is not None:
        names.append(('intensity', '<f4'))
    dtype = np.dtype(names)
    records = np.empty(n, dtype=dtype)
    for i, name in enumerate('xyz'):
        records[name] = points[:, i]
    if colors is not None:
        records['rgb'] = pack_rgb(colors)
    if intensity is not None:
        records['intensity'] = intensity
    msg = PointCloud2()
    msg.header = header
    msg.height = int(height)
    msg.width = int(width)
    msg.fields = make_fields(
        [(name, PointField.FLOAT32, 4 * i) for i, (name, _) in enumerate(names)])
    msg.is_bigendian = False
    msg.point_step = dtype.itemsize
    msg.row_step = msg.point_step * msg.width
    msg.is_dense = bool(np.isfinite(points).all())
    msg.data = _byte_array(records)
    return msg


@dataclass
class Region:
    """Indices, axis-aligned and oriented boxes of one segmented object or part (finite points)."""

    label: int
    indices: np.ndarray   # uint32 indices into the source cloud
    centroid: np.ndarray  # (3,)
    box_center: np.ndarray  # (3,)
    box_size: np.ndarray  # (3,)
    score: float
    parts: list = None
    oriented_box: OrientedBox = None   # pinpoint3d_core.boxes (None when not asked for)


def _region(label, indices, columns, finite, score, oriented=True):
    """Summarise the points of one label; NaN points keep their index but not the box."""
    cols = np.take(columns, indices[finite[indices]], axis=1)   # (3, M), C order: fast rows
    if cols.shape[1]:
        low, high = cols.min(axis=1), cols.max(axis=1)
        centroid = cols.mean(axis=1, dtype=np.float64)
    else:
        low = high = centroid = np.zeros(3)
    return Region(label=int(label), indices=indices.astype(np.uint32), centroid=centroid,
                  box_center=(low + high) / 2.0, box_size=high - low, score=float(score),
                  oriented_box=oriented_box(cols.T) if oriented else None)


def _present(labels):
    """Return the non-zero labels present in a small-integer label array (O(N), no sort)."""
    if labels.size == 0:
        return np.empty(0, np.int64)
    counts = np.bincount(labels.astype(np.int64, copy=False))
    return np.flatnonzero(counts[1:]) + 1


def summarise(points, object_ids, part_ids, object_scores=None, part_scores=None,
              oriented=True):
    """
    Return one Region per object (ascending id) with its parts in ``Region.parts``.

    ``oriented``: also fit each region's oriented box (pinpoint3d_core.boxes; about 4 ms for
    1k points, 11 ms for 10k, 170 ms for 100k on one core here).
    """
    object_scores = object_scores or {}
    part_scores = part_scores or {}
    object_ids = np.asarray(object_ids)
    part_ids = np.asarray(part_ids)
    present = _present(object_ids)
    if len(present):
        columns = np.ascontiguousarray(np.asarray(points).T)
        finite = np.isfinite(columns[0] + columns[1] + columns[2])
    regions = []
    for label in present:
        idx = np.flatnonzero(object_ids == label)
        region = _region(label, idx, columns, finite, object_scores.get(int(label), 0.0),
                         oriented)
        region.parts = []
        obj_parts = part_ids[idx]
        for part in _present(obj_parts):
            pidx = idx[obj_parts == part]
            region.parts.append(_region(
                part, pidx, columns, finite, part_scores.get((int(label), int(part)), 0.0),
                oriented))
        regions.append(region)
    return regions
