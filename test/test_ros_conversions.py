"""PointCloud2 <-> numpy conversions against hand-built messages of every layout."""

import re

from hypothesis import given, settings
from hypothesis import strategies as st
import numpy as np
from pinpoint3d_core.errors import InvalidCloudError
from pinpoint3d_ros import conversions as conv
import pytest
from sensor_msgs.msg import PointCloud2, PointField
from std_msgs.msg import Header

TYPE_OF = {'i1': PointField.INT8, 'u1': PointField.UINT8, 'i2': PointField.INT16,
           'u2': PointField.UINT16, 'i4': PointField.INT32, 'u4': PointField.UINT32,
           'f4': PointField.FLOAT32, 'f8': PointField.FLOAT64}


def build_cloud(columns, height, width, order='<', pad_point=0, pad_row=0, field_order=None):
    """Pack named columns {name: (type code, values)} into a PointCloud2, the slow obvious way."""
    names = field_order or list(columns)
    offsets, offset = {}, 0
    for name in names:
        offsets[name] = offset
        offset += np.dtype(columns[name][0]).itemsize
    point_step = offset + pad_point
    row_step = point_step * width + pad_row
    data = bytearray(row_step * height)
    for name in names:
        code, values = columns[name]
        raw = np.asarray(values).astype(order + code).tobytes()
        size = np.dtype(code).itemsize
        for i in range(height * width):
            row, col = divmod(i, width)
            start = row * row_step + col * point_step + offsets[name]
            data[start:start + size] = raw[i * size:(i + 1) * size]
    msg = PointCloud2()
    msg.height, msg.width = height, width
    msg.fields = [PointField(name=n, offset=offsets[n], datatype=TYPE_OF[columns[n][0]],
                             count=1) for n in names]
    msg.is_bigendian = order == '>'
    msg.point_step, msg.row_step = point_step, row_step
    msg.is_dense = False
    msg.data = bytes(data)
    return msg


def packed(colors, code):
    """Pack uint8 colours as 0x00RRGGBB in uint32 or reinterpreted float32."""
    c = colors.astype(np.uint32)
    value = (c[:, 0] << 16) | (c[:, 1] << 8) | c[:, 2]
    return value.view(np.float32) if code == 'f4' else value


def assert_same_points(actual, expected):
    """Compare coordinates with NaNs in the same places."""
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected))
    np.testing.assert_allclose(np.nan_to_num(actual), np.nan_to_num(expected), rtol=1e-6)


def test_xyz_float32_zero_copy_view():
    pts = np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32)
    msg = build_cloud({'x': ('f4', pts[:, 0]), 'y': ('f4', pts[:, 1]), 'z': ('f4', pts[:, 2])},
                      1, 50, pad_point=4)
    out = conv.cloud_to_arrays(msg)
    np.testing.assert_array_equal(out.points, pts)
    assert out.points.dtype == np.float32
    assert not out.points.flags.owndata   # a view into msg.data, no copy
    assert out.colors is None and out.intensity is None
    assert (out.height, out.width, out.size) == (1, 50, 50)


def test_xyz_float64_keeps_precision():
    pts = np.array([[1e6 + 0.001, 2.0, 3.0], [4.0, 5.0, 6.0]])
    msg = build_cloud({'x': ('f8', pts[:, 0]), 'y': ('f8', pts[:, 1]), 'z': ('f8', pts[:, 2])},
                      1, 2)
    out = conv.cloud_to_arrays(msg)
    assert out.points.dtype == np.float64
    np.testing.assert_array_equal(out.points, pts)


@pytest.mark.parametrize('name,code', [('rgb', 'f4'), ('rgba', 'u4'), ('rgb', 'u4')])
def test_packed_colour_fields(name, code):
    rng = np.random.default_rng(1)
    pts = rng.normal(size=(20, 3)).astype(np.float32)
    cols = rng.integers(0, 256, size=(20, 3)).astype(np.uint8)
    msg = build_cloud({'x': ('f4', pts[:, 0]), 'y': ('f4', pts[:, 1]), 'z': ('f4', pts[:, 2]),
                       name: (code, packed(cols, code))}, 1, 20)
    out = conv.cloud_to_arrays(msg)
    np.testing.assert_array_equal(out.colors, cols)


def test_separate_rgb_channels_and_intensity_types():
    rng = np.random.default_rng(2)
    pts = rng.normal(size=(10, 3)).astype(np.float32)
    cols = rng.integers(0, 256, size=(10, 3)).astype(np.uint8)
    inten = rng.integers(0, 1000, size=10)
    msg = build_cloud({'x': ('f4', pts[:, 0]), 'y': ('f4', pts[:, 1]), 'z': ('f4', pts[:, 2]),
                       'intensity': ('u2', inten), 'r': ('u1', cols[:, 0]),
                       'g': ('u1', cols[:, 1]), 'b': ('u1', cols[:, 2])}, 1, 10)
    out = conv.cloud_to_arrays(msg)
    np.testing.assert_array_equal(out.colors, cols)
    assert out.intensity.dtype == np.float32
    np.testing.assert_array_equal(out.intensity, inten.astype(np.float32))


def test_organised_cloud_with_row_padding_and_nans():
    h, w = 4, 5
    pts = np.arange(h * w * 3, dtype=np.float32).reshape(-1, 3)
    pts[[3, 7]] = np.nan   # invalid depth pixels stay in place
    msg = build_cloud({'x': ('f4', pts[:, 0]), 'y': ('f4', pts[:, 1]), 'z': ('f4', pts[:, 2])},
                      h, w, pad_point=4, pad_row=12)
    out = conv.cloud_to_arrays(msg)
    assert (out.height, out.width, out.size) == (h, w, h * w)
    assert_same_points(out.points, pts)


def test_big_endian_cloud():
    rng = np.random.default_rng(3)
    pts = rng.normal(size=(7, 3))
    cols = rng.integers(0, 256, size=(7, 3)).astype(np.uint8)
    msg = build_cloud({'x': ('f4', pts[:, 0]), 'y': ('f4', pts[:, 1]), 'z': ('f4', pts[:, 2]),
                       'rgb': ('f4', packed(cols, 'f4')), 'intensity': ('f4', pts[:, 0])},
                      1, 7, order='>')
    out = conv.cloud_to_arrays(msg)
    np.testing.assert_allclose(out.points, pts.astype(np.float32))
    assert out.points.dtype.isnative
    np.testing.assert_array_equal(out.colors, cols)
    np.testing.assert_allclose(out.intensity, pts[:, 0].astype(np.float32))


def test_fields_in_unusual_order():
    pts = np.random.default_rng(4).normal(size=(9, 3)).astype(np.float32)
    cols = {'x': ('f4', pts[:, 0]), 'y': ('f4', pts[:, 1]), 'z': ('f4', pts[:, 2]),
            'intensity': ('f8', pts[:, 1])}
    msg = build_cloud(cols, 1, 9, field_order=['intensity', 'z', 'x', 'y'])
    out = conv.cloud_to_arrays(msg)
    np.testing.assert_array_equal(out.points, pts)


def test_empty_cloud_gives_empty_arrays():
    msg = build_cloud({'x': ('f4', []), 'y': ('f4', []), 'z': ('f4', [])}, 1, 0)
    out = conv.cloud_to_arrays(msg)
    assert out.points.shape == (0, 3)


@pytest.mark.parametrize('breakage,fragment', [
    ('no_z', 'no field(s) z'),
    ('short_data', 'truncated'),
    ('long_data', 'row_step*height'),
    ('small_row_step', 'row_step'),
    ('field_past_point_step', 'point_step'),
    ('bad_datatype', 'unknown datatype'),
    ('int_x', 'FLOAT32 or FLOAT64'),
    ('zero_point_step', 'point_step is 0'),
])
def test_malformed_clouds_raise_invalid_cloud_error(breakage, fragment):
    pts = np.zeros((4, 3), np.float32)
    msg = build_cloud({'x': ('f4', pts[:, 0]), 'y': ('f4', pts[:, 1]), 'z': ('f4', pts[:, 2])},
                      1, 4)
    if breakage == 'no_z':
        msg.fields = msg.fields[:2]
    elif breakage == 'short_data':
        msg.data = bytes(msg.data)[:-3]
    elif breakage == 'long_data':
        msg.data = bytes(msg.data) + b'\0'
    elif breakage == 'small_row_step':
        msg.row_step = 8
    elif breakage == 'field_past_point_step':
        msg.fields[2].offset = 10
    elif breakage == 'bad_datatype':
        msg.fields[0].datatype = 42
    elif breakage == 'int_x':
        msg.fields[0].datatype = PointField.INT32
    elif breakage == 'zero_point_step':
        msg.point_step = 0
    with pytest.raises(InvalidCloudError, match=re.escape(fragment)) as info:
        conv.cloud_to_arrays(msg)
    assert isinstance(info.value, conv.CloudFormatError)


def test_not_a_cloud():
    with pytest.raises(conv.CloudFormatError):
        conv.cloud_to_arrays(Header())


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_any_layout_round_trips(data):
    """Random layouts (types, order, padding, organisation, endianness) read back exactly."""
    height = data.draw(st.integers(1, 4))
    width = data.draw(st.integers(1, 6))
    n = height * width
    coord_code = data.draw(st.sampled_from(['f4', 'f8']))
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 16)))
    pts = rng.normal(size=(n, 3)) * 10
    nan_rows = rng.random(n) < 0.2
    pts[nan_rows] = np.nan
    columns = {'x': (coord_code, pts[:, 0]), 'y': (coord_code, pts[:, 1]),
               'z': (coord_code, pts[:, 2])}
    colour_field = data.draw(st.sampled_from([None, ('rgb', 'f4'), ('rgba', 'u4')]))
    cols = rng.integers(0, 256, size=(n, 3)).astype(np.uint8)
    if colour_field:
        columns[colour_field[0]] = (colour_field[1], packed(cols, colour_field[1]))
    inten_code = data.draw(st.sampled_from([None, 'f4', 'f8', 'u1', 'u2', 'i4']))
    inten = rng.integers(0, 100, size=n)
    if inten_code:
        columns['intensity'] = (inten_code, inten)
    if data.draw(st.booleans()):
        columns['ring'] = ('u2', rng.integers(0, 64, size=n))
    order = data.draw(st.permutations(list(columns)))
    msg = build_cloud(columns, height, width,
                      order=data.draw(st.sampled_from(['<', '>'])),
                      pad_point=data.draw(st.sampled_from([0, 1, 4, 8])),
                      pad_row=data.draw(st.sampled_from([0, 3, 16])),
                      field_order=list(order))
    out = conv.cloud_to_arrays(msg)
    expect = pts.astype(np.float32) if coord_code == 'f4' else pts
    assert out.points.shape == (n, 3)
    assert_same_points(out.points, expect)
    if colour_field:
        np.testing.assert_array_equal(out.colors, cols)
    else:
        assert out.colors is None
    if inten_code:
        np.testing.assert_array_equal(out.intensity, inten.astype(np.float32))
    else:
        assert out.intensity is None


def test_labeled_cloud_round_trip_keeps_order_and_organisation():
    h, w = 3, 4
    pts = np.random.default_rng(5).normal(size=(h * w, 3)).astype(np.float32)
    pts[2] = np.nan
    obj = np.array([0, 1, 1, 2, 0, 0, 1, 2, 2, 0, 1, 1], np.uint32)
    part = np.array([0, 0, 3, 0, 0, 0, 3, 4, 0, 0, 0, 3], np.uint32)
    header = Header(frame_id='camera')
    msg = conv.labeled_cloud(header, pts, obj, part, height=h, width=w)
    assert [f.name for f in msg.fields] == ['x', 'y', 'z', 'rgb', 'object_id', 'part_id']
    assert [f.datatype for f in msg.fields[4:]] == [PointField.UINT32] * 2
    assert (msg.height, msg.width, msg.point_step) == (h, w, 24)
    assert msg.row_step * msg.height == len(msg.data)
    assert not msg.is_dense
    assert msg.header.frame_id == 'camera'
    points, obj_back, part_back = conv.labeled_cloud_to_arrays(msg)
    assert_same_points(points, pts)
    np.testing.assert_array_equal(obj_back, obj)
    np.testing.assert_array_equal(part_back, part)
    colors = conv.cloud_to_arrays(msg).colors
    np.testing.assert_array_equal(colors, conv.label_colors(obj, part))


def test_label_colours_distinguish_objects_parts_and_background():
    obj = np.array([0, 1, 1, 2, 2])
    part = np.array([0, 0, 1, 0, 1])
    colors = conv.label_colors(obj, part, colouring='part')
    assert len({tuple(c) for c in colors}) == 5
    by_object = conv.label_colors(obj, part, colouring='object')
    np.testing.assert_array_equal(by_object[1], by_object[2])
    base = np.full((5, 3), 200, np.uint8)
    np.testing.assert_array_equal(conv.label_colors(obj, part, base_colors=base)[0], [100] * 3)


def test_arrays_to_cloud_round_trip():
    rng = np.random.default_rng(6)
    pts = rng.normal(size=(30, 3)).astype(np.float32)
    cols = rng.integers(0, 256, size=(30, 3)).astype(np.uint8)
    inten = rng.random(30).astype(np.float32)
    msg = conv.arrays_to_cloud(Header(frame_id='map'), pts, cols, inten)
    out = conv.cloud_to_arrays(msg)
    np.testing.assert_array_equal(out.points, pts)
    np.testing.assert_array_equal(out.colors, cols)
    np.testing.assert_array_equal(out.intensity, inten)


def test_label_table_matches_the_scheme_for_large_and_absurd_ids():
    obj = np.array([0, 1, 21, 3, 3, 2 ** 31], np.uint32)
    part = np.array([0, 0, 0, 1, 500, 7], np.uint32)
    colors = conv.label_colors(obj, part, colouring='part')
    np.testing.assert_array_equal(colors[0], conv.BACKGROUND_RGB)
    np.testing.assert_array_equal(colors[1], conv.PALETTE[0] // 2)   # object 1, no part
    np.testing.assert_array_equal(colors[2], conv.PALETTE[0] // 2)   # palette wraps at 20
    np.testing.assert_array_equal(colors[3], conv.PALETTE[(3 * 7 + 1) % 20])
    assert len({tuple(c) for c in colors}) >= 4
    packed = conv.label_rgb(obj, part)
    assert packed.dtype == np.uint32
    np.testing.assert_array_equal(conv.unpack_rgb(packed), colors)
