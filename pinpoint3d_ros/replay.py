"""
Replay a recorded rosbag2 through the node: clouds from the bag, clicks from a YAML file.

  ros2 run pinpoint3d replay BAG --clicks clicks.yaml [--start-node] [--out out/replay]
  python -m pinpoint3d_ros.replay BAG --clicks clicks.yaml --start-node

The bag (a rosbag2 folder or its .mcap/.db3 file; MCAP and SQLite3 are read by the `rosbags`
library, no ROS install needed) holds sensor_msgs/PointCloud2 messages. Each request of the
clicks file is sent to ``~/click_segment`` with its cloud inside the request, so what is
segmented is exactly the recorded cloud, whatever else runs. With ``--start-node`` the node is
started here (parameter file and preset weights as the launch file picks them); otherwise a
running node is used. ``--publish`` also publishes each cloud on its topic (for RViz).

Results, as the demo's: segmentation.ply (labelled points of the last successful answer),
segmentation.png (sensor colours next to the labels) and summary.json (every request's
message and timings, and per object and part: point count, centroid, axis-aligned and oriented
box). Exit codes: 0 every request succeeded, 1 a request failed, 2 no node answered, 3 the bag
or the clicks file cannot be used (the message says why).

clicks.yaml:

  topic: /camera/camera/depth/color/points   # optional: the bag's only PointCloud2 topic
  frame_id: ''                               # frame of the click coordinates; '' = cloud's
  requests:
    - cloud: 0            # index of the cloud on the topic (default: the previous request's)
      reset: true         # default: true for the first request, false after
      granularity: both   # object | part | both ('' = the node's parameter)
      snap_radius: 0.0    # metres, 0 = the node's parameter
      clicks:
        - [0.42, 0.10, 0.81]                     # object 1, object-level, positive
        - {position: [0.45, 0.1, 0.9], object_id: 1, part_id: 1, positive: true}
"""

import argparse
import os
import sys
import time

import numpy as np
import yaml

SERVICE = '/pinpoint3d_node/click_segment'
CLOUD_TYPE = 'sensor_msgs/msg/PointCloud2'
EXIT_OK, EXIT_FAILED, EXIT_NO_NODE, EXIT_BAD_INPUT = 0, 1, 2, 3


class ReplayInputError(ValueError):
    """The bag or the clicks file cannot be used; the message says what to fix."""


def _click(entry, where):
    """Return (position, object_id, part_id, positive) from one clicks-file entry."""
    if isinstance(entry, (list, tuple)):
        entry = {'position': entry}
    if not isinstance(entry, dict) or 'position' not in entry:
        raise ReplayInputError(f'{where}: a click is [x, y, z] or {{position: [x, y, z], '
                               f'object_id, part_id, positive}}, not {entry!r}')
    unknown = set(entry) - {'position', 'object_id', 'part_id', 'positive'}
    if unknown:
        raise ReplayInputError(f'{where}: unknown click field(s) {sorted(unknown)}')
    position = entry['position']
    try:
        position = [float(v) for v in position]
    except (TypeError, ValueError):
        position = []
    if len(position) != 3 or not np.isfinite(position).all():
        raise ReplayInputError(f'{where}: position must be three finite numbers, '
                               f'not {entry["position"]!r}')
    ids = []
    for key, default in (('object_id', 1), ('part_id', 0)):
        value = entry.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ReplayInputError(f'{where}: {key} must be a non-negative integer')
        ids.append(value)
    positive = entry.get('positive', True)
    if not isinstance(positive, bool):
        raise ReplayInputError(f'{where}: positive must be true or false')
    return position, ids[0], ids[1], positive


def load_clicks(path):
    """Read and check a clicks file; return its dict with normalised requests."""
    try:
        with open(path) as f:
            data = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as exc:
        raise ReplayInputError(f'{path}: cannot read the clicks file ({exc})') from exc
    if not isinstance(data, dict) or not isinstance(data.get('requests'), list) \
            or not data['requests']:
        raise ReplayInputError(f'{path}: needs a non-empty `requests:` list (see '
                               '`python -m pinpoint3d_ros.replay --help`)')
    unknown = set(data) - {'topic', 'frame_id', 'requests'}
    if unknown:
        raise ReplayInputError(f'{path}: unknown key(s) {sorted(unknown)}')
    requests, cloud = [], 0
    for i, req in enumerate(data['requests']):
        where = f'{path}: requests[{i}]'
        if not isinstance(req, dict) or not req.get('clicks'):
            raise ReplayInputError(f'{where}: needs a non-empty `clicks:` list')
        unknown = set(req) - {'cloud', 'reset', 'granularity', 'snap_radius', 'clicks'}
        if unknown:
            raise ReplayInputError(f'{where}: unknown key(s) {sorted(unknown)}')
        cloud = req.get('cloud', cloud)
        if not isinstance(cloud, int) or isinstance(cloud, bool) or cloud < 0:
            raise ReplayInputError(f'{where}: cloud must be a message index (0, 1, ...)')
        snap = req.get('snap_radius', 0.0)
        if not isinstance(snap, (int, float)) or not np.isfinite(snap) or snap < 0:
            raise ReplayInputError(f'{where}: snap_radius must be a number >= 0')
        requests.append({
            'cloud': cloud, 'reset': bool(req.get('reset', i == 0)),
            'granularity': str(req.get('granularity', '')), 'snap_radius': float(snap),
            'clicks': [_click(c, f'{where}.clicks[{j}]') for j, c in enumerate(req['clicks'])],
        })
    return {'topic': data.get('topic'), 'frame_id': str(data.get('frame_id') or ''),
            'requests': requests}


def _bag_folder(path):
    """Return the rosbag2 folder of a folder or of one of its .mcap/.db3 files."""
    path = os.path.abspath(path)
    if os.path.isfile(path):
        path = os.path.dirname(path)
    if not os.path.isfile(os.path.join(path, 'metadata.yaml')):
        raise ReplayInputError(f'{path}: not a rosbag2 folder (no metadata.yaml)')
    return path


def read_clouds(bag, topic=None, wanted=None):
    """
    Return (topic, storage, {index: (timestamp ns, serialised PointCloud2)}, count).

    ``wanted``: the message indices to keep (None = all). The CDR bytes are deserialised by
    rclpy later, into the real sensor_msgs type.
    """
    from rosbags.rosbag2 import Reader
    from rosbags.rosbag2.errors import ReaderError
    folder = _bag_folder(bag)
    try:
        with Reader(folder) as reader:
            clouds = sorted({c.topic for c in reader.connections if c.msgtype == CLOUD_TYPE})
            if topic is None:
                if len(clouds) != 1:
                    raise ReplayInputError(
                        f'{folder}: {"no" if not clouds else "several"} PointCloud2 topics '
                        f'{clouds}; name one with `topic:` in the clicks file or --topic')
                topic = clouds[0]
            elif topic not in clouds:
                raise ReplayInputError(f'{folder}: no PointCloud2 on {topic}; the bag has '
                                       f'{clouds or "none"}')
            connections = [c for c in reader.connections if c.topic == topic]
            kept, count = {}, 0
            for _, stamp, raw in reader.messages(connections=connections):
                if wanted is None or count in wanted:
                    kept[count] = (stamp, bytes(raw))
                count += 1
    except ReaderError as exc:
        raise ReplayInputError(f'{folder}: cannot read the bag ({exc})') from exc
    with open(os.path.join(folder, 'metadata.yaml')) as f:
        info = (yaml.safe_load(f) or {}).get('rosbag2_bagfile_information', {})
    return topic, info.get('storage_identifier', ''), kept, count


def _start_node(args, log_path):
    """Start the node as a child process with the preset's weights; return the Popen."""
    import subprocess
    from pinpoint3d_ros import launch_support
    share = _share()
    config = launch_support.resolve_config(args.config, share)
    _, checkpoint, note = launch_support.choose_weights(config, args.checkpoint, share)
    print(f'replay: {note}', flush=True)
    cmd = [sys.executable, '-m', 'pinpoint3d_ros.node', '--ros-args', '--params-file', config]
    if checkpoint:
        cmd += ['-p', f'checkpoint:={checkpoint}']
    log = open(log_path, 'wb')
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ))


def _share():
    """Return the package's share folder (installed), or the source tree it came from."""
    try:
        from ament_index_python.packages import get_package_share_directory
        return get_package_share_directory('pinpoint3d')
    except Exception:  # not installed with colcon: the source checkout has the same layout
        return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _stop(proc):
    import signal
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except Exception:
            proc.kill()
            proc.wait(timeout=10)


# The replay's own interaction: refinements (reset: false) build on its earlier requests.
REPLAY_INTERACTION = 'replay'


def _request(srv_type, cloud, spec, frame_id):
    from pinpoint3d.msg import Click
    request = srv_type.Request()
    request.header.frame_id = frame_id
    request.cloud = cloud
    request.interaction_id = REPLAY_INTERACTION
    request.reset = spec['reset']
    request.granularity = spec['granularity']
    request.snap_radius = spec['snap_radius']
    for position, object_id, part_id, positive in spec['clicks']:
        click = Click(object_id=object_id, part_id=part_id, positive=positive)
        click.position.x, click.position.y, click.position.z = position
        request.clicks.append(click)
    return request


def _box_summary(region):
    out = {'points': int(len(region.indices)), 'score': round(float(region.score), 4),
           'centroid': [round(float(v), 4) for v in region.centroid],
           'box_center': [round(float(v), 4) for v in region.box_center],
           'box_size': [round(float(v), 4) for v in region.box_size]}
    box = region.oriented_box
    if box is not None:
        out['oriented_box'] = {'center': [round(float(v), 4) for v in box.center],
                               'quaternion_xyzw': [round(float(v), 6) for v in box.quaternion],
                               'size': [round(float(v), 4) for v in box.size]}
    return out


def write_results(out, response, cloud, summary):
    """Write segmentation.ply/.png and summary.json for the last successful response."""
    from pinpoint3d_ros import conversions, demo_planner
    points, obj, part = conversions.labeled_cloud_to_arrays(response.labeled_cloud)
    sensor = conversions.cloud_to_arrays(cloud)
    colors = conversions.label_colors(obj, part, 'part', sensor.colors)
    scores = {int(o.object_id): float(o.score) for o in response.objects}
    part_scores = {(int(o.object_id), int(p.part_id)): float(p.score)
                   for o in response.objects for p in o.parts}
    regions = conversions.summarise(points, obj, part, scores, part_scores)
    summary['objects'] = [dict(_box_summary(r), object_id=int(r.label), parts=[
        dict(_box_summary(p), part_id=int(p.label)) for p in r.parts]) for r in regions]
    base = sensor.colors
    if base is None:   # a cloud without colour (LiDAR): grey
        base = np.full((len(points), 3), 160, np.uint8)
    finite = np.isfinite(np.asarray(points, np.float64)).all(axis=1)
    target = (obj > 0) if (obj > 0).any() else finite
    title = (f"{summary['bag']} cloud {summary['requests'][-1]['cloud']}: "
             f'{len(regions)} object(s), {sum(len(r.parts) for r in regions)} part(s)')
    return demo_planner.write_outputs(
        out, points, obj, part, colors, summary,
        lambda path: demo_planner.write_png(
            path, np.asarray(points, np.float64), base, colors, target, title,
            columns=('sensor colours', 'prediction')),
        comment='pinpoint3d replay segmentation')


def run(args):
    """Replay the bag; return the exit code."""
    import rclpy
    from rclpy.node import Node
    from rclpy.qos import QoSDurabilityPolicy, QoSProfile, QoSReliabilityPolicy
    from rclpy.serialization import deserialize_message
    from pinpoint3d.srv import ClickSegment
    from sensor_msgs.msg import PointCloud2
    try:
        clicks = load_clicks(args.clicks)
        wanted = {r['cloud'] for r in clicks['requests']}
        topic, storage, raw, count = read_clouds(args.bag, args.topic or clicks['topic'],
                                                 wanted)
        missing = sorted(wanted - set(raw))
        if missing:
            raise ReplayInputError(f'{args.bag}: the clicks file asks for cloud(s) {missing} '
                                   f'but {topic} has {count} message(s) (0..{count - 1})')
    except ReplayInputError as exc:
        print(f'replay: {exc}', file=sys.stderr)
        return EXIT_BAD_INPUT
    clouds = {i: deserialize_message(data, PointCloud2) for i, (_, data) in raw.items()}
    print(f'replay: {count} PointCloud2 message(s) on {topic} ({storage}); '
          f'{len(clicks["requests"])} request(s)', flush=True)
    os.makedirs(args.out, exist_ok=True)
    node_proc = _start_node(args, os.path.join(args.out, 'node.log')) if args.start_node \
        else None
    node = None
    try:
        node = Node('pinpoint3d_replay')
        client = node.create_client(ClickSegment, args.service)
        publisher = None
        if args.publish:
            publisher = node.create_publisher(PointCloud2, topic, QoSProfile(
                depth=1, reliability=QoSReliabilityPolicy.RELIABLE,
                durability=QoSDurabilityPolicy.TRANSIENT_LOCAL))
        if not client.wait_for_service(timeout_sec=args.timeout):
            print(f'replay: service {args.service} not available after {args.timeout:g} s'
                  + (f' (node log: {os.path.join(args.out, "node.log")})' if node_proc else
                     '; start the node, or pass --start-node'), file=sys.stderr)
            return EXIT_NO_NODE
        steps, last_good = [], None
        for i, spec in enumerate(clicks['requests']):
            cloud = clouds[spec['cloud']]
            if publisher is not None:
                publisher.publish(cloud)
            t0 = time.perf_counter()
            future = client.call_async(_request(ClickSegment, cloud, spec, clicks['frame_id']))
            rclpy.spin_until_future_complete(node, future, timeout_sec=args.timeout)
            response = future.result()
            rtt = (time.perf_counter() - t0) * 1e3
            if response is None:
                print(f'replay: request {i}: no answer within {args.timeout:g} s',
                      file=sys.stderr)
                return EXIT_NO_NODE
            steps.append({'request': i, 'cloud': spec['cloud'],
                          'stamp_ns': int(raw[spec['cloud']][0]),
                          'clicks': len(spec['clicks']), 'success': bool(response.success),
                          'message': response.message, 'round_trip_ms': round(rtt, 2),
                          'encode_ms': round(response.encode_ms, 2),
                          'decode_ms': round(response.decode_ms, 2)})
            print(f"replay: request {i}: {'ok' if response.success else 'FAILED'}: "
                  f'{response.message} (round trip {rtt:.1f} ms)', flush=True)
            if response.success:
                last_good = (response, cloud)
        summary = {'bag': os.path.basename(_bag_folder(args.bag)), 'storage': storage,
                   'topic': topic, 'messages': count,
                   'frame_id': clouds[clicks['requests'][0]['cloud']].header.frame_id,
                   'requests': steps, 'failed': [s for s in steps if not s['success']]}
        if last_good is None:
            print('replay: no request succeeded; nothing written', file=sys.stderr)
            return EXIT_FAILED
        paths = write_results(args.out, last_good[0], last_good[1], summary)
        for kind, path in paths.items():
            print(f'replay: wrote {kind.upper()} {os.path.abspath(path)}')
        return EXIT_FAILED if summary['failed'] else EXIT_OK
    finally:
        if node is not None:
            node.destroy_node()
        if node_proc is not None:
            _stop(node_proc)


def build_parser():
    """Return the command-line parser."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[1],
        epilog='clicks.yaml:' + __doc__.split('clicks.yaml:', 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('bag', help='rosbag2 folder (or its .mcap/.db3 file)')
    parser.add_argument('--clicks', required=True, help='clicks YAML file (below)')
    parser.add_argument('--topic', help='PointCloud2 topic (default: the clicks file, or the '
                                        "bag's only one)")
    parser.add_argument('--out', default='out/replay', help='where PLY, PNG, JSON are written')
    parser.add_argument('--service', default=SERVICE)
    parser.add_argument('--start-node', action='store_true', help='start the node here')
    parser.add_argument('--config', default='indoor_rgbd.yaml',
                        help='with --start-node: parameter file (shipped name or path)')
    parser.add_argument('--checkpoint', default='',
                        help="with --start-node: weights; '' = the parameter file's preset")
    parser.add_argument('--publish', action='store_true',
                        help='also publish each cloud on its topic (for RViz)')
    parser.add_argument('--timeout', type=float, default=120.0,
                        help='seconds to wait for the node and for each answer')
    return parser


def main(argv=None):
    """Parse arguments, replay, shut ROS down cleanly."""
    import rclpy
    from rclpy.executors import ExternalShutdownException
    argv = sys.argv if argv is None else argv
    args = build_parser().parse_args(rclpy.utilities.remove_ros_args(args=argv)[1:])
    rclpy.init(args=argv)
    try:
        return run(args)
    except (KeyboardInterrupt, ExternalShutdownException):
        return 130
    finally:
        rclpy.try_shutdown()


if __name__ == '__main__':
    sys.exit(main())
