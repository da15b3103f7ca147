"""
The pinpoint3d_node: clicks in, labelled clouds, objects and markers out.

The node is a thin adapter: it converts messages, keeps the latest cloud and the session that
holds its cached encoding, and calls ``pinpoint3d_core.session``; model logic lives there.

Threads: cloud reception (and click-mode updates, /diagnostics) run in a reentrant callback
group, so a long segmentation never blocks them; services and /clicked_point share one mutually
exclusive group, so segmentation requests are served one after another and never interleave.

Start-up: a plain node loads its model, then creates its outputs and inputs. The lifecycle
node (``pinpoint3d_ros.lifecycle``) does the same steps in its transitions: configure loads the
model and creates the outputs, activate the inputs (subscriptions, services), deactivate and
cleanup release them again.
"""

import array
import inspect
import threading
import time
import traceback

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Point, PointStamped, Pose, Vector3
import numpy as np
from pinpoint3d.msg import ClickMode, SegmentedObject, SegmentedObjects, SegmentedPart
from pinpoint3d.srv import ClickSegment, ResetSession
from pinpoint3d_core.errors import ClickError, InvalidCloudError, Pinpoint3DError
from pinpoint3d_ros import (conversions, detections, diagnostics, frames, markers,
                            model_loading, params)
import rclpy
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node
from rclpy.qos import (QoSDurabilityPolicy, QoSHistoryPolicy, QoSProfile,
                       QoSReliabilityPolicy)
from sensor_msgs.msg import PointCloud2
from std_msgs.msg import Header
from visualization_msgs.msg import MarkerArray

NODE_NAME = 'pinpoint3d_node'
WEIGHTS_FILE = 'pinpoint3d_small.pt'


def default_checkpoint(name=WEIGHTS_FILE):
    """Return a shipped weights file: the first place the core searches that has it."""
    return model_loading.shipped_checkpoint(name)


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


def _oriented_box(region):
    """Return (pose, size) of the region's oriented box (the axis-aligned one without it)."""
    box = region.oriented_box
    if box is None:
        return _box(region)
    pose = Pose()
    pose.position = Point(x=float(box.center[0]), y=float(box.center[1]),
                          z=float(box.center[2]))
    o = pose.orientation
    o.x, o.y, o.z, o.w = (float(v) for v in box.quaternion)
    size = Vector3(x=float(box.size[0]), y=float(box.size[1]), z=float(box.size[2]))
    return pose, size


def _fill_region(msg, region):
    """Copy what objects and parts share (indices, centroid, boxes, score) into a message."""
    msg.indices = _uint32_array(region.indices)
    msg.centroid = Point(x=float(region.centroid[0]), y=float(region.centroid[1]),
                         z=float(region.centroid[2]))
    msg.box_pose, msg.box_size = _box(region)
    msg.oriented_box_pose, msg.oriented_box_size = _oriented_box(region)
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

    def __init__(self, lifecycle=False, tf_buffer=None, **kwargs):
        """
        Create the node (``kwargs`` go to rclpy's Node).

        ``lifecycle``: declare only, the lifecycle transitions do the rest. ``tf_buffer``:
        anything with tf2's ``lookup_transform`` (tests inject fixed transforms); None = a
        tf2_ros Buffer and TransformListener where tf2_ros is installed.
        """
        super().__init__(NODE_NAME, **kwargs)
        self._is_lifecycle = bool(lifecycle)
        self.p = params.declare(self, reloadable=self._is_lifecycle)
        self.add_on_set_parameters_callback(self._check_parameters)
        self.add_post_set_parameters_callback(self._after_set_parameters)

        self._state_lock = threading.Lock()   # guards the latest cloud and the click mode
        self._latest = None                   # (PointCloud2, monotonic receive time)
        self._mode = [self.p['click_object_id'], self.p['click_part_id'],
                      self.p['click_positive']]
        # Owned by the work group (one callback at a time):
        self._segmenter = None
        self._choice = None                   # model_loading.Choice of the loaded segmenter
        self._model_error = 'model not loaded yet'
        self._weights_note = ''
        self._voxel_override = False
        self._notice = ''   # said once in the next answer (e.g. CPU fallback)
        self._session = None
        self._session_cloud = None
        self._session_arrays = None
        self._clicks = []   # (position in cloud frame, object_id, part_id, positive)

        self._work_group = MutuallyExclusiveCallbackGroup()
        self._input_group = ReentrantCallbackGroup()
        self._inputs = []    # subscriptions and services, while serving
        self._outputs = {}   # publishers, once configured
        self._tf = frames.ClickTransformer(self, buffer=tf_buffer,
                                           timeout_s=self.p['tf_timeout'])
        self.stats = diagnostics.NodeStats()
        self.queue_depth = None   # callable -> int; None = requests inside the node
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        if self.p['diagnostics_period'] > 0:
            self.create_timer(self.p['diagnostics_period'], self.publish_diagnostics,
                              callback_group=self._input_group)
        if not self._is_lifecycle:
            # Load first: once the service is visible, a call is answered at once (or refused).
            self._load_model()
            self._create_outputs()
            self._create_inputs()

    def _create_outputs(self):
        """Create the latched result publishers (and ~/detections where vision_msgs is)."""
        latched = QoSProfile(history=QoSHistoryPolicy.KEEP_LAST, depth=1,
                             reliability=QoSReliabilityPolicy.RELIABLE,
                             durability=QoSDurabilityPolicy.TRANSIENT_LOCAL)
        out = {'cloud': self.create_publisher(PointCloud2, '~/labeled_points', latched),
               'objects': self.create_publisher(SegmentedObjects, '~/objects', latched),
               'markers': self.create_publisher(MarkerArray, '~/markers', latched)}
        if self.p['publish_detections']:
            try:
                from vision_msgs.msg import Detection3DArray
            except ImportError:
                self.get_logger().info(
                    'no ~/detections: vision_msgs is not installed (install '
                    'ros-<distro>-vision-msgs for vision_msgs/Detection3DArray output)')
            else:
                out['detections'] = self.create_publisher(Detection3DArray, '~/detections',
                                                          latched)
        self._outputs = out

    def _destroy_outputs(self):
        for publisher in self._outputs.values():
            self.destroy_publisher(publisher)
        self._outputs = {}

    def _create_inputs(self):
        """Subscribe to clouds and clicks and offer the services; log what the node serves."""
        reliability = (QoSReliabilityPolicy.RELIABLE if self.p['qos_reliability'] == 'reliable'
                       else QoSReliabilityPolicy.BEST_EFFORT)
        cloud_qos = QoSProfile(history=QoSHistoryPolicy.KEEP_LAST, depth=self.p['qos_depth'],
                               reliability=reliability,
                               durability=QoSDurabilityPolicy.VOLATILE)
        self._inputs = [
            self.create_subscription(PointCloud2, 'points', self._on_cloud, cloud_qos,
                                     callback_group=self._input_group),
            self.create_subscription(ClickMode, '~/click_mode', self._on_click_mode, 10,
                                     callback_group=self._input_group),
            # Absolute: RViz's Publish Point tool publishes /clicked_point whatever the
            # node's namespace (remap it to move both).
            self.create_subscription(PointStamped, '/clicked_point', self._on_clicked_point, 10,
                                     callback_group=self._work_group),
            self.create_service(ClickSegment, '~/click_segment', self._on_click_segment,
                                callback_group=self._work_group),
            self.create_service(ResetSession, '~/reset', self._on_reset,
                                callback_group=self._work_group),
        ]
        frame = self.p['target_frame']
        self.get_logger().info(
            f"ready: cloud topic '{self._resolve('points')}', clicks "
            f"'{self._resolve('/clicked_point')}', service "
            f"'{self._resolve('~/click_segment')}', results in "
            f"{repr(frame) if frame else 'the cloud frame'}; "
            f'{self._weights_note or self._model_error}')

    def _destroy_inputs(self):
        for entity in self._inputs:
            if hasattr(entity, 'srv_type'):
                self.destroy_service(entity)
            else:
                self.destroy_subscription(entity)
        self._inputs = []

    def _release_model(self):
        """Drop the model, its session and the clicks (lifecycle cleanup)."""
        self._segmenter = self._choice = None
        self._session = self._session_cloud = self._session_arrays = None
        self._clicks = []
        self._model_error = 'model released (lifecycle cleanup); configure loads it again'
        self._weights_note = ''

    def lifecycle_state(self):
        """Return the lifecycle state label ('' for a plain node, which always serves)."""
        return ''

    def _check_parameters(self, parameters):
        """Validate values; model parameters change only while a lifecycle node is unconfigured."""
        result = params.validate(parameters)
        if not result.successful or not self._is_lifecycle:
            return result
        state = self.lifecycle_state()
        for param in parameters:
            if param.name in params.MODEL_PARAMETERS and state not in ('', 'unconfigured'):
                result.successful = False
                result.reason = (f'{param.name} can change only while the node is '
                                 f"unconfigured (it is '{state}'): deactivate and clean it up, "
                                 'set the parameter, then configure again')
                return result
        return result

    def model_state(self):
        """Return what /diagnostics reports about the model (a plain dict)."""
        choice = self._choice
        seg = self._segmenter
        return {'loaded': seg is not None,
                'description': choice.description if choice and seg is not None else '',
                'device': str(getattr(seg, 'device', '')) if seg is not None else '',
                'preset': self.p['preset'], 'error': self._model_error,
                'untrained': bool(choice and choice.untrained),
                'baseline': bool(choice and choice.baseline),
                'lifecycle_state': self.lifecycle_state()}

    def publish_diagnostics(self):
        """Publish one /diagnostics report (model, input, requests)."""
        depth = self.queue_depth() if self.queue_depth is not None else None
        self._diagnostics_pub.publish(diagnostics.diagnostic_array(
            self.get_clock().now().to_msg(), self.get_fully_qualified_name().lstrip('/'),
            self.stats, self.model_state(), self._resolve('points'),
            self.p['max_cloud_age'], depth))

    def _resolve(self, topic):
        return self.resolve_topic_name(topic)

    # ----------------------------------------------------------------- model
    def _load_model(self, device=None):
        """Load the segmenter; on failure keep the node up, remember why, return False."""
        device = device or self.p['device']
        inference = {k: self.p[k] for k in params.INFERENCE_SETTINGS if self.p[k] >= 0}
        try:
            choice = model_loading.load(self.p['preset'], self.p['checkpoint'], device,
                                        inference)
        except Exception as exc:  # missing file, bad checkpoint, import failure: stay up
            self._segmenter = self._choice = None
            self._model_error = f'model not loaded ({type(exc).__name__}): {exc}'
            self.get_logger().error(self._model_error)
            return False
        for note in choice.notes:
            self.get_logger().info(note)
        for warning in choice.warnings:
            self.get_logger().warning(warning)
        segmenter = choice.segmenter
        self._segmenter, self._choice, self._model_error = segmenter, choice, None
        self._voxel_override = False
        if self.p['voxel_size'] > 0:
            if 'voxel_size' in inspect.signature(segmenter.start).parameters:
                self._voxel_override = True
            else:
                trained = getattr(segmenter.config, 'voxel_size', None)
                self.get_logger().warning(
                    f"voxel_size {self.p['voxel_size']} ignored: this model runs at its "
                    f'trained voxel size ({trained} m)')
        self._weights_note = choice.description
        self.get_logger().info(f"preset '{self.p['preset']}': {choice.description}")
        return True

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
        self.stats.cloud_received()

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
                self.get_logger().warning(
                    f'{len(replay)} previous click(s) dropped on the new cloud: {exc}')
                self.stats.clicks_dropped(len(replay))
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
        stamp = rclpy.time.Time.from_msg(cloud.header.stamp)
        positions = self._tf.to_cloud_frame([c[0] for c in clicks], click_frame, frame, stamp)
        # Before any state changes: a missing transform fails the request and changes nothing.
        out = frames.results_frame(self._tf, self.p['target_frame'], frame, stamp)
        clicks = [(pos,) + tuple(c[1:]) for pos, c in zip(positions, clicks)]
        session, encode_ms = self._session_for(cloud, reset)
        if clicks:
            self._add_clicks(clicks, snap_radius)
        pred = session.predict(granularity=granularity)
        encode_ms += pred.encode_ms   # the model's focus box was (re-)encoded in this call
        arrays = self._session_arrays
        header = Header(stamp=cloud.header.stamp, frame_id=out.frame_id)
        points = out.apply(arrays.points)
        colors = conversions.label_rgb(pred.object_ids, pred.part_ids,
                                       self.p['colouring'], arrays.colors)
        labeled = conversions.labeled_cloud(header, points, pred.object_ids,
                                            pred.part_ids, colors, arrays.height, arrays.width)
        regions = conversions.summarise(points, pred.object_ids, pred.part_ids,
                                        pred.object_scores, pred.part_scores)
        objects = SegmentedObjects(header=header, objects=region_messages(regions),
                                   encode_ms=float(encode_ms), decode_ms=float(pred.decode_ms))
        self._publish(header, labeled, objects, regions, out)
        return labeled, objects, float(encode_ms), float(pred.decode_ms)

    def _publish(self, header, labeled, objects, regions, out):
        """Publish one result on every output (all in the same header)."""
        pubs = self._outputs
        if not pubs:   # a lifecycle node being cleaned up: the answer still goes back
            return
        pubs['cloud'].publish(labeled)
        pubs['objects'].publish(objects)
        if 'detections' in pubs:
            pubs['detections'].publish(detections.detections_from_regions(header, regions))
        if self.p['publish_markers']:
            clicks = self._clicks
            where = out.apply(np.array([c[0] for c in clicks], np.float64).reshape(-1, 3))
            pubs['markers'].publish(markers.build_markers(
                header, regions, [(pos, c[3]) for pos, c in zip(where, clicks)]))

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
        self.stats.request_started()
        try:
            response = self._click_segment(request, response)
        finally:
            ok = bool(response.success)
            self.stats.request_finished(ok, response.encode_ms if ok else None,
                                        response.decode_ms if ok else None)
        return response

    def _click_segment(self, request, response):
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
        response.header = objects.header
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
                + ("; NO WEIGHTS: the preset's non-learned baseline"
                   if self._choice is not None and self._choice.baseline else '')
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

        self.stats.request_started()
        ok, result = self._run('clicked_point', work)
        self.stats.request_finished(ok, *(result[2:4] if ok else (None, None)))
        if not ok:
            self.stats.clicks_dropped(1)
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
