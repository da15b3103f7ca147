"""
Request validation and PointCloud2 reading against hostile input (issue #16, finding 5).

Property-based (hypothesis): random request values and random PointCloud2 layouts either give
a clear error of the type the node handles (Pinpoint3DError: its message goes to the user) or
a correct result; no other exception type may escape, because the node would answer it as an
"internal error" at best.
"""

import math

from hypothesis import given, HealthCheck, settings, strategies as st
import numpy as np
from pinpoint3d_core.errors import Pinpoint3DError
from pinpoint3d_ros import conversions, validation
from pinpoint3d_ros.validation import check_request, RequestError
import pytest
from sensor_msgs.msg import PointCloud2, PointField
from std_msgs.msg import Header

FUZZ = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


def good_click(obj=1):
    return ((0.1, 0.2, 0.3), obj, 0, True)


@pytest.mark.parametrize('radius', [math.nan, math.inf, -math.inf, 1e9, -0.1, 1.01])
def test_snap_radius_out_of_range_is_refused(radius):
    with pytest.raises(RequestError, match=r'snap_radius must be within \[0, 1.0\] m'):
        check_request('', [good_click()], '', False, radius)


def test_snap_radius_zero_means_the_parameter_and_the_maximum_is_allowed():
    assert check_request('', [], '', False, 0.0, default_snap_radius=0.07).snap_radius == 0.07
    assert check_request('', [], '', False, validation.MAX_SNAP_RADIUS).snap_radius == 1.0


@pytest.mark.parametrize('obj', [2 ** 31, 2 ** 32 - 1, validation.MAX_OBJECT_ID + 1])
def test_object_ids_beyond_the_maximum_are_refused(obj):
    with pytest.raises(RequestError, match='object_id must be an integer in 0..1000'):
        check_request('', [good_click(obj)], '', False, 0.0)


@pytest.mark.parametrize('position', [(math.nan, 0, 0), (0, math.inf, 0), (0, 0, 2e6)])
def test_non_finite_or_absurd_click_positions_are_refused(position):
    with pytest.raises(RequestError, match='must be finite'):
        check_request('', [(position, 1, 0, True)], '', False, 0.0)


@pytest.mark.parametrize('key', ['a b', 'x' * 65, 'tab\t', 'ü', "quote'"])
def test_malformed_interaction_keys_are_refused(key):
    with pytest.raises(RequestError, match='interaction_id'):
        check_request(key, [], '', False, 0.0)


def test_stamps_and_granularity_are_checked():
    with pytest.raises(RequestError, match='nanosec'):
        check_request('', [], '', False, 0.0, newer_than=(1, 2_000_000_000))
    with pytest.raises(RequestError, match="granularity must be 'object', 'part' or 'both'"):
        check_request('', [], 'everything', False, 0.0)
    ok = check_request('k-1', [good_click(3)], 'part', True, 0.2, newer_than=(5, 7))
    assert (ok.interaction_id, ok.granularity, ok.reset, ok.snap_radius, ok.newer_than_ns) == (
        'k-1', 'part', True, 0.2, 5_000_000_007)
    assert ok.clicks[0].object_id == 3


numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                    st.integers(-2 ** 40, 2 ** 40))
ids = st.one_of(st.integers(-5, 2 ** 33), st.booleans())
clicks = st.lists(st.tuples(st.tuples(numbers, numbers, numbers), ids, ids, st.booleans()),
                  max_size=4)


@FUZZ
@given(key=st.text(max_size=70), clicks=clicks, granularity=st.text(max_size=8),
       radius=numbers, sec=st.integers(-3, 2 ** 33), nsec=st.integers(-3, 2 ** 31))
def test_request_validation_fuzz(key, clicks, granularity, radius, sec, nsec):
    try:
        ok = check_request(key, clicks, granularity, True, radius, (sec, nsec))
    except RequestError as exc:
        assert str(exc)   # a clear message, never an empty one
        return
    assert 0 < ok.snap_radius <= validation.MAX_SNAP_RADIUS
    assert ok.granularity in validation.GRANULARITIES
    for c in ok.clicks:
        assert all(math.isfinite(v) and abs(v) <= validation.MAX_COORDINATE
                   for v in c.position)
        assert 0 <= c.object_id <= validation.MAX_OBJECT_ID
        assert 0 <= c.part_id <= validation.MAX_PART_ID
        assert not (c.positive and c.object_id == 0)
    assert ok.newer_than_ns >= 0


# ------------------------------------------------------------------ PointCloud2 layouts
def test_duplicated_fields_are_refused_with_the_name():
    pts = np.arange(30, dtype=np.float32).reshape(10, 3)
    msg = conversions.arrays_to_cloud(Header(frame_id='map'), pts)
    extra = PointField(name='x', offset=8, datatype=PointField.FLOAT32, count=1)
    msg.fields = list(msg.fields) + [extra]
    with pytest.raises(conversions.CloudFormatError, match="'x' appear more than once"):
        conversions.cloud_to_arrays(msg)


def test_overlapping_coordinates_are_refused():
    pts = np.arange(30, dtype=np.float32).reshape(10, 3)
    msg = conversions.arrays_to_cloud(Header(frame_id='map'), pts)
    msg.fields[1].offset = 2   # y shares bytes with x
    with pytest.raises(conversions.CloudFormatError, match="'x' and 'y' overlap"):
        conversions.cloud_to_arrays(msg)


def test_wrong_big_endian_flag_names_the_likely_cause():
    pts = np.random.default_rng(0).uniform(-3, 3, (50, 3)).astype(np.float32)
    msg = conversions.arrays_to_cloud(Header(frame_id='map'), pts)
    msg.is_bigendian = True
    with pytest.raises(conversions.CloudFormatError, match='is_bigendian flag is likely wrong'):
        conversions.cloud_to_arrays(msg)
    msg.is_bigendian = False
    np.testing.assert_array_equal(conversions.cloud_to_arrays(msg).points, pts)


def test_a_real_big_endian_cloud_still_reads():
    pts = np.random.default_rng(1).uniform(-3, 3, (40, 3)).astype(np.float32)
    msg = conversions.arrays_to_cloud(Header(frame_id='map'), pts)
    msg.data = pts.astype('>f4').tobytes()
    msg.is_bigendian = True
    np.testing.assert_array_equal(conversions.cloud_to_arrays(msg).points, pts)


DATATYPES = [PointField.INT8, PointField.UINT8, PointField.INT16, PointField.UINT16,
             PointField.INT32, PointField.UINT32, PointField.FLOAT32, PointField.FLOAT64]
field_names = st.sampled_from(['x', 'y', 'z', 'rgb', 'rgba', 'r', 'g', 'b', 'intensity', 'w'])
fields = st.lists(st.tuples(field_names, st.integers(0, 40), st.sampled_from(DATATYPES + [0, 9]),
                            st.integers(0, 3)), max_size=7)


@FUZZ
@given(fields=fields, point_step=st.integers(0, 48), width=st.integers(0, 6),
       height=st.integers(0, 3), row_pad=st.integers(-2, 8), data_delta=st.integers(-3, 3),
       big=st.booleans(), seed=st.integers(0, 2 ** 16))
def test_cloud_to_arrays_fuzz(fields, point_step, width, height, row_pad, data_delta, big,
                              seed):
    msg = PointCloud2(header=Header(frame_id='map'), width=width, height=height,
                      point_step=point_step, is_bigendian=big)
    msg.fields = [PointField(name=n, offset=o, datatype=d, count=c) for n, o, d, c in fields]
    msg.row_step = max(0, width * point_step + row_pad)
    size = max(0, msg.row_step * height + data_delta)
    msg.data = np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()
    try:
        arrays = conversions.cloud_to_arrays(msg)
    except Pinpoint3DError as exc:
        assert str(exc)
        return
    n = width * height
    assert arrays.points.shape == (n, 3) if len(msg.data) else arrays.size == 0
    if n and len(msg.data):   # the points are the bytes of the x, y, z fields, in row order
        table = {f.name: f for f in msg.fields}
        order = '>' if big else '<'
        for axis, name in enumerate('xyz'):
            f = table[name]
            kind = order + ('f4' if f.datatype == PointField.FLOAT32 else 'f8')
            for row in range(height):
                for col in range(width):
                    at = row * msg.row_step + col * point_step + f.offset
                    want = np.frombuffer(msg.data, kind, 1, at)[0]
                    got = arrays.points[row * width + col, axis]
                    assert (np.isnan(want) and np.isnan(got)) or want == got
        if arrays.colors is not None:
            assert arrays.colors.shape == (n, 3)
        if arrays.intensity is not None:
            assert arrays.intensity.shape == (n,)


@st.composite
def plausible_clouds(draw):
    """Layouts near valid ones: x, y, z floats at random offsets, extra fields, padding."""
    point_step = draw(st.integers(24, 48))
    slots = draw(st.permutations(range(point_step // 8)))
    specs = []
    for name, slot in zip('xyz', slots):
        datatype = draw(st.sampled_from([PointField.FLOAT32, PointField.FLOAT64]))
        shift = draw(st.sampled_from([0, 4])) if datatype == PointField.FLOAT32 else 0
        specs.append((name, 8 * slot + shift, datatype, 1))
    for _ in range(draw(st.integers(0, 3))):
        name = draw(st.sampled_from(['rgb', 'rgba', 'r', 'g', 'b', 'intensity', 'ring']))
        if name not in [s[0] for s in specs]:
            specs.append((name, draw(st.integers(0, point_step - 1)),
                          draw(st.sampled_from(DATATYPES)), draw(st.sampled_from([1, 1, 2]))))
    width, height = draw(st.integers(1, 6)), draw(st.integers(1, 3))
    row_pad = draw(st.sampled_from([0, 0, 0, 3, 8]))
    data_delta = draw(st.sampled_from([0, 0, 0, 0, -1, 2]))
    return specs, point_step, width, height, row_pad, data_delta


@FUZZ
@given(layout=plausible_clouds(), big=st.booleans(), seed=st.integers(0, 2 ** 16))
def test_cloud_to_arrays_fuzz_near_valid_layouts(layout, big, seed):
    specs, point_step, width, height, row_pad, data_delta = layout
    test_cloud_to_arrays_fuzz.hypothesis.inner_test(
        specs, point_step, width, height, row_pad, data_delta, big, seed)
