"""
Detection3DArray output (pinpoint3d_ros/detections.py) against real vision_msgs message types.

Where vision_msgs is installed (a full ROS install) it is used as it is. Elsewhere a package
with the same message definitions (test/interfaces/vision_msgs) is generated with rosidl once,
into the colcon build folder (or a temporary one), and the checks run in a child interpreter
that has it on its paths: the messages are built, serialised to CDR and read back, and their
contents compared with the regions they came from.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
from pinpoint3d_ros import detections
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFINITIONS = os.path.join(ROOT, 'test', 'interfaces', 'vision_msgs')

# Runs in the child: builds the array from a fixed scene, round-trips it through CDR and prints
# its contents as JSON (every field the converter fills).
CHILD = r"""
import json, sys
import numpy as np
from rclpy.serialization import deserialize_message, serialize_message
from std_msgs.msg import Header
from vision_msgs.msg import Detection3DArray
from pinpoint3d_ros import conversions, detections
sys.path.insert(0, sys.argv[1])
from test_ros_detections import scene
points, obj, part = scene()
regions = conversions.summarise(points, obj, part, {1: 0.9, 2: 0.6}, {(1, 1): 0.7})
header = Header(frame_id='camera_color_optical_frame')
header.stamp.sec, header.stamp.nanosec = 12, 345
msg = detections.detections_from_regions(header, regions, class_names={2: 'mug'})
back = deserialize_message(serialize_message(msg), Detection3DArray)
aligned = detections.detections_from_regions(
    header, conversions.summarise(points, obj, part, oriented=False), include_parts=False)
def pose(p):
    return [p.position.x, p.position.y, p.position.z,
            p.orientation.x, p.orientation.y, p.orientation.z, p.orientation.w]
def dump(array):
    return [{
        'id': d.id, 'frame': d.header.frame_id, 'stamp': d.header.stamp.sec,
        'center': pose(d.bbox.center), 'size': [d.bbox.size.x, d.bbox.size.y, d.bbox.size.z],
        'results': [[r.hypothesis.class_id, r.hypothesis.score, pose(r.pose.pose)]
                    for r in d.results]} for d in array.detections]
print(json.dumps({
    'available': detections.vision_msgs_available(),
    'header': [back.header.frame_id, back.header.stamp.sec, back.header.stamp.nanosec],
    'detections': dump(back), 'aligned': dump(aligned)}))
"""


def scene():
    """Two objects, the first with one part; a NaN point; clutter labelled background."""
    rng = np.random.default_rng(4)
    angle = 0.6
    rot = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0],
                    [0, 0, 1]])
    box = (rng.random((800, 3)) - 0.5) * [0.4, 0.2, 0.1] @ rot.T + [1.0, 0.0, 0.5]
    handle = (rng.random((100, 3)) - 0.5) * 0.04 + [1.25, 0.1, 0.5]
    mug = (rng.random((300, 3)) - 0.5) * [0.08, 0.08, 0.1] + [0.2, -0.4, 0.6]
    clutter = rng.normal(size=(200, 3)) + 4.0
    points = np.concatenate([box, handle, mug, clutter, [[np.nan] * 3]]).astype(np.float32)
    obj = np.r_[np.full(900, 1), np.full(300, 2), np.zeros(201)].astype(np.uint32)
    part = np.r_[np.zeros(800), np.ones(100), np.zeros(501)].astype(np.uint32)
    return points, obj, part


def _build_stand_in():
    """Generate the stand-in package once per definition set; return its install prefix."""
    digest = hashlib.sha256()
    for base, _, files in sorted(os.walk(DEFINITIONS)):
        for name in sorted(files):
            with open(os.path.join(base, name), 'rb') as f:
                digest.update(name.encode() + f.read())
    key = digest.hexdigest()[:12]
    parent = os.path.join(ROOT, 'build')
    if not os.access(parent, os.W_OK):
        parent = tempfile.gettempdir()
    ws = os.path.join(parent, 'pinpoint3d_test_interfaces', f'vision_msgs-{key}')
    install = os.path.join(ws, 'install')
    if os.path.isfile(os.path.join(install, '.complete')):
        return install
    shutil.rmtree(ws, ignore_errors=True)
    src = os.path.join(ws, 'src')
    shutil.copytree(DEFINITIONS, src)
    log = os.path.join(ws, 'build.log')
    steps = [['cmake', '-S', src, '-B', os.path.join(ws, 'build'), '-DBUILD_TESTING=OFF',
              f'-DCMAKE_INSTALL_PREFIX={install}', f'-DPython3_EXECUTABLE={sys.executable}'],
             ['cmake', '--build', os.path.join(ws, 'build'), '-j2'],
             ['cmake', '--install', os.path.join(ws, 'build')]]
    with open(log, 'wb') as out:
        for step in steps:
            if subprocess.run(step, stdout=out, stderr=subprocess.STDOUT).returncode:
                with open(log, errors='replace') as f:
                    pytest.fail(f'building the vision_msgs stand-in failed:\n{f.read()[-3000:]}')
    open(os.path.join(install, '.complete'), 'w').close()
    return install


@pytest.fixture(scope='module')
def vision_env():
    """Environment of a child interpreter in which vision_msgs imports."""
    env = dict(os.environ)
    if detections.vision_msgs_available():
        return env
    if shutil.which('cmake') is None:
        pytest.skip('no cmake to generate the vision_msgs stand-in')
    install = _build_stand_in()
    site = os.path.join(install, 'lib', f'python{sys.version_info[0]}.{sys.version_info[1]}',
                        'site-packages')
    env['PYTHONPATH'] = os.pathsep.join(p for p in (site, env.get('PYTHONPATH')) if p)
    env['LD_LIBRARY_PATH'] = os.pathsep.join(
        p for p in (os.path.join(install, 'lib'), env.get('LD_LIBRARY_PATH')) if p)
    env['AMENT_PREFIX_PATH'] = os.pathsep.join(
        p for p in (install, env.get('AMENT_PREFIX_PATH')) if p)
    return env


@pytest.fixture(scope='module')
def published(vision_env):
    proc = subprocess.run([sys.executable, '-c', CHILD, os.path.dirname(__file__)],
                          env=vision_env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_one_detection_per_object_and_part_with_the_documented_ids(published):
    assert published['available']
    assert [d['id'] for d in published['detections']] == [
        'object:1', 'object:1/part:1', 'object:2']
    for det in published['detections']:
        object_id, part_id = detections.parse_detection_id(det['id'])
        assert det['id'] == detections.detection_id(object_id, part_id)


def test_headers_are_the_clouds(published):
    assert published['header'] == ['camera_color_optical_frame', 12, 345]
    assert all(d['frame'] == 'camera_color_optical_frame' and d['stamp'] == 12
               for d in published['detections'])


def test_boxes_scores_and_classes_match_the_regions(published):
    conversions = pytest.importorskip('pinpoint3d_ros.conversions')
    points, obj, part = scene()
    regions = conversions.summarise(points, obj, part, {1: 0.9, 2: 0.6}, {(1, 1): 0.7})
    expected = [(regions[0], 'object', 0.9), (regions[0].parts[0], 'part', 0.7),
                (regions[1], 'mug', 0.6)]
    for det, (region, class_id, score) in zip(published['detections'], expected):
        box = region.oriented_box
        np.testing.assert_allclose(det['center'][:3], box.center, atol=1e-9)
        np.testing.assert_allclose(det['center'][3:], box.quaternion, atol=1e-9)
        np.testing.assert_allclose(det['size'], box.size, atol=1e-9)
        (got_class, got_score, got_pose), = det['results']
        assert got_class == class_id and got_score == pytest.approx(score)
        assert got_pose == det['center']
    # The box body turned 0.6 rad about z: its oriented box is tighter than the axis-aligned.
    assert np.prod(published['detections'][0]['size']) < 0.8 * np.prod(regions[0].box_size)
    assert published['detections'][2]['size'] == pytest.approx([0.1, 0.08, 0.08], rel=0.05)


def test_axis_aligned_box_is_used_when_no_oriented_box_was_computed(published):
    conversions = pytest.importorskip('pinpoint3d_ros.conversions')
    regions = conversions.summarise(*scene(), oriented=False)
    assert [d['id'] for d in published['aligned']] == ['object:1', 'object:2']   # no parts
    for det, region in zip(published['aligned'], regions):
        np.testing.assert_allclose(det['center'], list(region.box_center) + [0, 0, 0, 1])
        np.testing.assert_allclose(det['size'], region.box_size)


def test_ids_that_are_not_ours_are_refused():
    for text in ('object:', 'part:1', 'object:1/part:', 'object:x', 'object:1/part:2/x'):
        with pytest.raises(ValueError):
            detections.parse_detection_id(text)
    assert detections.parse_detection_id('object:7') == (7, 0)
    assert detections.parse_detection_id('object:7/part:3') == (7, 3)


def test_without_vision_msgs_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, 'vision_msgs', None)
    monkeypatch.setitem(sys.modules, 'vision_msgs.msg', None)
    assert not detections.vision_msgs_available()
    with pytest.raises(detections.VisionMsgsUnavailable, match='ros-<distro>-vision-msgs'):
        detections.detections_from_regions(None, [])
