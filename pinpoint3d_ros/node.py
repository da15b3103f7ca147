"""
The pinpoint3d_node: clicks in, labelled clouds, objects and markers out.

The node is a thin adapter: it converts messages, keeps the latest cloud and the session that
holds its cached encoding, and calls ``pinpoint3d_core.session``; model logic lives there.

Threads: cloud reception (and click-mode updates) run in a reentrant callback group, so a
long segmentation never blocks them; services and /clicked_point share one mutually exclusive
group, so segmentation requests are served one after another and never interleave.
"""

import array
import inspect
import os
import threading
import time
import traceback

from geometry_msgs.msg import Point, PointStamped, Pose, Vector3
import numpy as np
from pinpoint3d.msg import ClickMode, SegmentedObject, SegmentedObjects, SegmentedPart
from pinpoint3d.srv import ClickSegment, ResetSession
from pinpoint3d_core.errors import ClickError, InvalidCloudError, Pinpoint3DError
from pinpoint3d_ros import conversions, frames, markers, params
import rclpy
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node
from rclpy.qos import (QoSDurabilityPolicy, QoSHistoryPolicy, QoSProfile,
                       QoSReliabilityPolicy)
from sensor_msgs.msg import PointCloud2
from visualization_msgs.msg import MarkerArray

NODE_NAME = 'pinpoint3d_node'
WEIGHTS_FILE = 'pinpoint3d_small.pt'


def default_checkpoint(name=WEIGHTS_FILE):
    """Return a shipped weights file: the first place the core searches that has it."""
    from pinpoint3d_core.model.checkpoint import default_checkpoint_candidates
    candidates = default_checkpoint_candidates(name)
    return str(next((c for c in candidates if c.is_file()), candidates[0]))


class ModelNotReady(Pinpoint3DError):
    """The model could not be loaded; every request answers with this reason."""


def _uint32_array(values):
    """Return an array.array('I') (rclpy takes it without a per-element copy)."""
    out = array.array('I')
    out.frombytes(np.ascontiguousarray(values, dtype=np.uint32).tobytes())
    return out


def _box(region):
    pose = Pose()
    pose.position = Point(x=float(region.box_center[0]), y=float(region.box_center[1]),
                          z=float(region.box_center[2]))
    pose.orientation.w = 1.0
    size = Vector3(x=float(region.box_size[0]), y=float(region.box_size[1]),
                   z=float(region.box_size[2]))
    return pose, size


def _fill_region(msg, region):
    """Copy what objects and parts share (indices, centroid, box, score) into a message."""
    msg.indices = _uint32_array(region.indices)
    msg.centroid = Point(x=float(region.centroid[0]), y=float(region.centroid[1]),
                         z=float(region.centroid[2]))
    msg.box_pose, msg.box_size = _box(region)
    msg.score = float(region.score)
    return msg


def region_messages(regions):
    """Convert conversions.Region objects into SegmentedObject messages."""
    out = []
    for region in regions:
        obj = _fill_region(SegmentedObject(object_id=int(region.label)), region)
        obj.parts = [_fill_region(SegmentedPart(part_id=int(part.label)), part)
                     for part in region.parts or ()]
        out.append(obj)
    return out


def _same_cloud(a, b):
    """Return True when two clouds hold the same points (a re-published scan keeps its cache)."""
    if a is b:
        return True
    if (a.header.frame_id != b.header.frame_id or a.width != b.width or a.height != b.height
            or a.point_step != b.point_step or len(a.data) != len(b.data)
            or list(a.fields) != list(b.fields)):
        return False
    return np.array_equal(np.frombuffer(a.data, np.uint8), np.frombuffer(b.data, np.uint8))


class Pinpoint3DNode(Node):
    """Interactive object and part segmentation of point clouds from clicks."""

    def __init__(self, **kwargs):
        super().__init__(NODE_NAME, **kwargs)
        self.p = params.declare(self)
        self.add_on_set_parameters_callback(params.validate)
        self.add_post_set_parameters_callback(self._after_set_parameters)

        self._state_lock = threading.Lock()   # guards the latest cloud and the click mode
        self._latest = None                   # (PointCloud2, monotonic receive time)
        self._mode = [self.p['click_object_id'], self.p['click_part_id'],
                      self.p['click_positive']]
        # Owned by the work group (one callback at a time):
        self._segmenter = None
        self._model_error = None
        self._weights_note = ''
        self._voxel_override = False
        self._notice = ''   # said once in the next answer (e.g. CPU fallback)
        self._session = None
        self._session_cloud = None
        self._session_arrays = None
        self._clicks = []   # (position in cloud frame, object_id, part_id, positive)

        # Load first: once the service is visible, a call is answered at once (or refused).
        self._load_model()
        self._work_group = MutuallyExclusiveCallbackGroup()
        self._input_group = ReentrantCallbackGroup()
        reliability = (QoSReliabilityPolicy.RELIABLE if self.p['qos_reliability'] == 'reliable'
                       else QoSReliabilityPolicy.BEST_EFFORT)
        cloud_qos = QoSProfile(history=QoSHistoryPolicy.KEEP_LAST, depth=self.p['qos_depth'],
                               reliability=reliability,
                               durability=QoSDurabilityPolicy.VOLATILE)
        self.create_subscription(PointCloud2, 'points', self._on_cloud, cloud_qos,
                                 callback_group=self._input_group)
        self.create_subscription(ClickMode, '~/click_mode', self._on_click_mode, 10,
                                 callback_group=self._input_group)
        self.create_subscription(PointStamped, 'clicked_point', self._on_clicked_point, 10,
                                 callback_group=self._work_group)
        self.create_service(ClickSegment, '~/click_segment', self._on_click_segment,
                            callback_group=self._work_group)
        self.create_service(ResetSession, '~/reset', self._on_reset,
                            callback_group=self._work_group)
        latched = QoSProfile(history=QoSHistoryPolicy.KEEP_LAST, depth=1,
                             reliability=QoSReliabilityPolicy.RELIABLE,
                             durability=QoSDurabilityPolicy.TRANSIENT_LOCAL)
        self._pub_cloud = self.create_publisher(PointCloud2, '~/labeled_points', latched)
        self._pub_objects = self.create_publisher(SegmentedObjects, '~/objects', latched)
        self._pub_markers = self.create_publisher(MarkerArray, '~/markers', latched)
        self._tf = frames.ClickTransformer(self, timeout_s=self.p['tf_timeout'])
        self.get_logger().info(
            f"ready: cloud topic '{self._resolve('points')}', service "
            f"'{self._resolve('~/click_segment')}'; {self._weights_note or self._model_error}")

    def _resolve(self, topic):
        return self.resolve_topic_name(topic)

    # ----------------------------------------------------------------- model
    def _load_model(self, device=None):
        """Load the segmenter; on failure keep the node up and remember why."""
        device = device or self.p['device']
        checkpoint = self.p['checkpoint']
        try:
            from pinpoint3d_core.session import Segmenter
            if checkpoint.startswith('untrained'):
                config = checkpoint.partition(':')[2] or 'small'
                segmenter = Segmenter.untrained(config, device=device)
            else:
                if (checkpoint and os.path.basename(checkpoint) == checkpoint
                        and not os.path.isfile(checkpoint)):
                    checkpoint = default_checkpoint(checkpoint)   # a shipped file, by name
                path = checkpoint or default_checkpoint()
                if not checkpoint and not os.path.isfile(path):
                    self.get_logger().warning(
                        f'the shipped checkpoint {path} does not exist yet: falling back to '
                        'UNTRAINED weights; pass checkpoint:=<file.pt> for real results')
                    segmenter = Segmenter.untrained('small', device=device)
                else:
                    segmenter = Segmenter.load(path, device=device)
            inference = {k: self.p[k] for k in params.INFERENCE_SETTINGS if self.p[k] >= 0}
            if inference:
                from pinpoint3d_core.evaluation.overrides import apply_overrides
                apply_overrides(segmenter, inference)
                self.get_logger().info(f"inference settings replace the checkpoint's: "
                                       f'{inference}')
        except Exception as exc:  # missing file, bad checkpoint, import failure: stay up
            self._segmenter = None
            self._model_error = f'model not loaded ({type(exc).__name__}): {exc}'
            self.get_logger().error(self._model_error)
            return
        self._segmenter, self._model_error = segmenter, None
        self._voxel_override = False
        if self.p['voxel_size'] > 0:
            if 'voxel_size' in inspect.signature(segmenter.start).parameters:
                self._voxel_override = True
            else:
                self.get_logger().warning(
                    f"voxel_size {self.p['voxel_size']} ignored: this model runs at its "
                    f'trained voxel size {segmenter.config.voxel_size} m')
        source = getattr(segmenter, 'source', checkpoint)
        if getattr(segmenter, 'untrained', False):
            self._weights_note = (f'UNTRAINED weights ({source}): segmentations are '
                                  'meaningless, for tests and plumbing only')
            self.get_logger().warning(self._weights_note)
        else:
            self._weights_note = f'weights {source}'
        self._weights_note += f" on {getattr(segmenter, 'device', device)}"

    def _after_set_parameters(self, parameters):
        for param in parameters:
            self.p[param.name] = param.value
            if param.name in ('click_object_id', 'click_part_id', 'click_positive'):
                with self._state_lock:
                    index = ('click_object_id', 'click_part_id',
                             'click_positive').index(param.name)
                    self._mode[index] = param.value
            elif param.name == 'tf_timeout':
                self._tf.timeout_s = param.value

    # ----------------------------------------------------------------- inputs
    def _on_cloud(self, msg):
        with self._state_lock:
            self._latest = (msg, time.monotonic())

    def _on_click_mode(self, msg):
        with self._state_lock:
            self._mode = [int(msg.object_id), int(msg.part_id), bool(msg.positive)]
        self.get_logger().info(
            'click mode: object %s, part %d, ' % (msg.object_id or 'new', msg.part_id)
            + ('positive' if msg.positive else 'negative'))

    def _latest_cloud(self):
        with self._state_lock:
            latest = self._latest
        if latest is None:
            raise InvalidCloudError(
                f"no cloud received yet on '{self._resolve('points')}'; publish one (QoS "
                f"{self.p['qos_reliability']}) or pass it in the request's cloud field.")
        msg, received = latest
        age = time.monotonic() - received
        if self.p['max_cloud_age'] > 0 and age > self.p['max_cloud_age']:
            raise InvalidCloudError(
                f'the latest cloud is {age:.1f} s old (max_cloud_age '
                f"{self.p['max_cloud_age']:.1f} s); is the sensor still publishing?")
        return msg

    # ----------------------------------------------------------------- core
    def _session_for(self, cloud, reset):
        """Return (session, encode_ms): reuse the cached encoding unless the cloud changed."""
        if self._segmenter is None:
            raise ModelNotReady(self._model_error or 'model not loaded')
        if self._session is not None and _same_cloud(cloud, self._session_cloud):
            self._session_cloud = cloud
            if reset:
                self._session.reset()
                self._clicks = []
            return self._session, 0.0
        arrays = conversions.cloud_to_arrays(cloud)
        if arrays.size == 0:
            raise InvalidCloudError('the cloud is empty (width*height == 0); nothing to segment.')
        if arrays.size > self.p['max_points']:
            raise InvalidCloudError(
                f'the cloud has {arrays.size} points, more than max_points '
                f"({self.p['max_points']}); downsample it or raise the parameter.")
        start = {'colors': arrays.colors, 'intensity': arrays.intensity}
        if self._voxel_override:
            start['voxel_size'] = self.p['voxel_size']
        session = self._segmenter.start(arrays.points, **start)
        replay = [] if reset else self._clicks
        self._session, self._session_cloud, self._session_arrays = session, cloud, arrays
        self._clicks = []
        if replay:   # a new scan of the same scene: keep the user's clicks by position
            try:
                self._add_clicks(replay, self.p['snap_radius'])
            except Pinpoint3DError as exc:
                self.get_logger().warning(f'previous clicks dropped on the new cloud: {exc}')
                session.reset()
                self._clicks = []
        return session, float(session.encode_ms)

    def _add_clicks(self, clicks, snap_radius):
        from pinpoint3d_core.session import Click
        for _, object_id, _, positive in clicks:
            if positive and object_id == 0:
                raise ClickError('positive clicks need an object_id >= 1 (0 is background).')
        self._session.add_clicks(
            [Click(position=tuple(float(v) for v in pos), object_id=int(obj),
                   part_id=int(part), positive=bool(positive))
             for pos, obj, part, positive in clicks], snap_radius=snap_radius)
        self._clicks.extend(clicks)

    def _segment(self, cloud, click_frame, clicks, granularity, reset, snap_radius):
        """Run one segmentation step and publish it; returns (labeled, regions, enc, dec)."""
        if granularity not in params.GRANULARITIES:
            raise ClickError(
                f"granularity must be 'object', 'part' or 'both' (empty = the node parameter, "
                f"now '{self.p['granularity']}'), not '{granularity}'.")
        if snap_radius < 0:
            raise ClickError(f'snap_radius must be >= 0, not {snap_radius}.')
        frame = cloud.header.frame_id
        positions = self._tf.to_cloud_frame([c[0] for c in clicks], click_frame, frame,
                                            rclpy.time.Time.from_msg(cloud.header.stamp))
        clicks = [(pos,) + tuple(c[1:]) for pos, c in zip(positions, clicks)]
        session, encode_ms = self._session_for(cloud, reset)
        if clicks:
            self._add_clicks(clicks, snap_radius)
        pred = session.predict(granularity=granularity)
        encode_ms += pred.encode_ms   # the model's focus box was (re-)encoded in this call
        arrays = self._session_arrays
        colors = conversions.label_rgb(pred.object_ids, pred.part_ids,
                                       self.p['colouring'], arrays.colors)
        labeled = conversions.labeled_cloud(cloud.header, arrays.points, pred.object_ids,
                                            pred.part_ids, colors, arrays.height, arrays.width)
        regions = conversions.summarise(arrays.points, pred.object_ids, pred.part_ids,
                                        pred.object_scores, pred.part_scores)
        objects = SegmentedObjects(header=cloud.header, objects=region_messages(regions),
                                   encode_ms=float(encode_ms), decode_ms=float(pred.decode_ms))
        self._pub_cloud.publish(labeled)
        self._pub_objects.publish(objects)
        if self.p['publish_markers']:
            self._pub_markers.publish(markers.build_markers(
                cloud.header, regions, [(c[0], c[3]) for c in self._clicks]))
        return labeled, objects, float(encode_ms), float(pred.decode_ms)

    def _run(self, what, fn):
        """Run fn(); turn every failure into (False, message) and keep the node alive."""
        saved_clicks = list(self._clicks)
        try:
            return True, fn()
        except Pinpoint3DError as exc:
            message = str(exc)
        except Exception as exc:  # noqa: B902 - a request must never kill the node
            if _is_cuda_oom(exc):
                self._clicks = saved_clicks   # the retry adds this request's clicks again
                return self._cuda_oom(what, fn, exc)
            self.get_logger().error(f'{what} failed:\n{traceback.format_exc()}')
            message = f'internal error ({type(exc).__name__}: {exc}); see the node log.'
        self.get_logger().warning(f'{what}: {message}')
        return False, message

    def _cuda_oom(self, what, fn, exc):
        if not self.p['cpu_fallback'] or self.p['device'] == 'cpu':
            return False, (f'CUDA out of memory ({exc}); send a smaller cloud (see max_points), '
                           'or set device:=cpu or cpu_fallback:=true.')
        self.get_logger().warning(f'{what}: CUDA out of memory; reloading the model on the CPU')
        self._session = self._session_cloud = None   # re-encode; clicks are replayed
        self._load_model(device='cpu')
        ok, result = self._run(what, fn)
        if ok:
            self._notice = 'CUDA ran out of memory: the model now runs on the CPU'
            return ok, result
        return False, f'CUDA out of memory, and the CPU retry failed: {result}'

    # ----------------------------------------------------------------- callbacks
    def _on_click_segment(self, request, response):
        t0 = time.perf_counter()

        def work():
            cloud = request.cloud
            if cloud.width * cloud.height == 0:
                if len(cloud.data):
                    raise InvalidCloudError('request cloud has data but width*height == 0.')
                cloud = self._latest_cloud()
            clicks = [((c.position.x, c.position.y, c.position.z), c.object_id, c.part_id,
                       c.positive) for c in request.clicks]
            return self._segment(cloud, request.header.frame_id, clicks,
                                 request.granularity or self.p['granularity'], request.reset,
                                 request.snap_radius or self.p['snap_radius'])

        ok, result = self._run('click_segment', work)
        response.success = ok
        if not ok:
            response.message = result
            return response
        labeled, objects, encode_ms, decode_ms = result
        total_ms = (time.perf_counter() - t0) * 1e3
        response.labeled_cloud = labeled
        response.objects = objects.objects
        response.encode_ms, response.decode_ms = encode_ms, decode_ms
        response.message = self._summary(labeled, objects, encode_ms, decode_ms, total_ms)
        self.get_logger().info(f'click_segment: {response.message}')
        return response

    def _summary(self, labeled, objects, encode_ms, decode_ms, total_ms):
        parts = sum(len(o.parts) for o in objects.objects)
        notice, self._notice = self._notice, ''
        return (f'{labeled.width * labeled.height} points, {len(objects.objects)} object(s), '
                f'{parts} part(s), {len(self._clicks)} click(s); encode {encode_ms:.1f} ms, '
                f'decode {decode_ms:.1f} ms, total {total_ms:.1f} ms'
                + ('; UNTRAINED weights, segmentation meaningless'
                   if 'UNTRAINED' in self._weights_note else '')
                + (f'; {notice}' if notice else ''))

    def _on_clicked_point(self, msg):
        t0 = time.perf_counter()
        with self._state_lock:
            object_id, part_id, positive = self._mode
            if object_id == 0:   # a new object: the next free id, then keep refining it
                used = [c[1] for c in self._clicks]
                object_id = max(used, default=0) + 1
                self._mode[0] = object_id
        click = ((msg.point.x, msg.point.y, msg.point.z), object_id, part_id, positive)

        def work():
            return self._segment(self._latest_cloud(), msg.header.frame_id, [click],
                                 self.p['granularity'], False, self.p['snap_radius'])

        ok, result = self._run('clicked_point', work)
        if ok:
            labeled, objects, encode_ms, decode_ms = result
            self.get_logger().info('clicked_point: ' + self._summary(
                labeled, objects, encode_ms, decode_ms, (time.perf_counter() - t0) * 1e3))

    def _on_reset(self, request, response):
        if self._session is not None:
            self._session.reset()
        count, self._clicks = len(self._clicks), []
        with self._state_lock:
            self._mode = [self.p['click_object_id'], self.p['click_part_id'],
                          self.p['click_positive']]
        response.success = True
        response.message = f'forgot {count} click(s); the cached encoding is kept.'
        self.get_logger().info(f'reset: {response.message}')
        return response


def _is_cuda_oom(exc):
    try:
        import torch
    except ImportError:  # pragma: no cover
        return False
    oom = getattr(torch.cuda, 'OutOfMemoryError', None)
    return (oom is not None and isinstance(exc, oom)) or 'CUDA out of memory' in str(exc)


def main(args=None):
    """Run the node with a multi-threaded executor until Ctrl-C or shutdown."""
    rclpy.init(args=args)
    node = None
    try:
        node = Pinpoint3DNode()
        executor = MultiThreadedExecutor(num_threads=4)
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    main()
