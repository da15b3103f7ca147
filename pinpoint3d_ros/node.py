"""
The pinpoint3d_node: clicks in, labelled clouds, objects and markers out.

The node is a thin adapter: it converts messages, keeps the latest cloud and the session that
holds its cached encoding, and calls ``pinpoint3d_core.session``; model logic lives there.

Requests: validated first (validation.py); each client's clicks live in their own interaction
(interactions.py: click history, the cloud it segments and that cloud's cached encoding); a
failed request changes nothing.

Threads: every callback is short or only waits, in one reentrant group (cloud reception,
click mode, /diagnostics, RViz clicks, services). One worker thread (workqueue.py) runs the
segmentations one at a time in arrival order; a full queue answers "busy" at once. RViz clicks
are buffered and segmented together (coalesced), each counted. SIGINT/SIGTERM: queued requests
are answered, the running one finishes or is failed, then the process exits (``run``).

Start-up: a plain node loads its model, then creates its outputs and inputs. The lifecycle
node (``pinpoint3d_ros.lifecycle``) does the same steps in its transitions: configure loads the
model and creates the outputs, activate the inputs (subscriptions, services), deactivate and
cleanup release them again.
"""

import array
import collections
import inspect
import os
import signal
import sys
import threading
import time
import traceback

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Point, PointStamped, Pose, Vector3
import numpy as np
from pinpoint3d.msg import ClickMode, SegmentedObject, SegmentedObjects, SegmentedPart
from pinpoint3d.srv import ClickSegment, ResetSession
from pinpoint3d_core.errors import ClickError, InvalidCloudError, Pinpoint3DError
from pinpoint3d_ros import (conversions, detections, diagnostics, frames, interactions,
                            markers, model_loading, params, validation, workqueue)
from pinpoint3d_ros.validation import describe_stamp
import rclpy
from rclpy.callback_groups import ReentrantCallbackGroup
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

        self._state_lock = threading.Lock()   # guards the latest cloud, click mode, RViz buffer
        self._latest = None                   # (PointCloud2, monotonic receive time, CloudInfo)
        self._mode = [self.p['click_object_id'], self.p['click_part_id'],
                      self.p['click_positive']]
        # Owned by the work group (one callback at a time):
        self._segmenter = None
        self._choice = None                   # model_loading.Choice of the loaded segmenter
        self._model_error = 'model not loaded yet'
        self._weights_note = ''
        self._voxel_override = False
        self._notice = ''   # said once in the next answer (e.g. CPU fallback)
        self._interactions = interactions.Registry(self.p['max_interactions'],
                                                   self.p['interaction_idle_timeout'])
        self._rviz_pending = collections.deque()   # clicks waiting for the worker
        self._rviz_scheduled = False
        self._rviz_next_object = 1                 # next free id for 'new object' RViz clicks
        self.rviz_counts = dict.fromkeys(RVIZ_COUNTERS, 0)
        self._closing = False
        self._in_callbacks = 0                     # service callbacks not yet returned
        self._last_answer = 0.0                    # monotonic time of the last answer

        # Every callback is short or only waits for the worker, so all may run at once.
        self._input_group = ReentrantCallbackGroup()
        self._queue = workqueue.WorkQueue(self._run_job, self.p['max_queue'])
        self._inputs = []    # subscriptions and services, while serving
        self._outputs = {}   # publishers, once configured
        self._tf = frames.ClickTransformer(self, buffer=tf_buffer,
                                           timeout_s=self.p['tf_timeout'])
        self.stats = diagnostics.NodeStats()
        self.queue_depth = lambda: self._queue.pending   # requests waiting or running
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
            self.create_subscription(PointStamped, '/clicked_point', self._on_clicked_point,
                                     CLICK_QUEUE_DEPTH, callback_group=self._input_group),
            # Requests beyond max_queue must reach the callback to be refused, not be dropped
            # by a short DDS history: the services keep more than can ever be pending.
            self.create_service(ClickSegment, '~/click_segment', self._on_click_segment,
                                qos_profile=self._service_qos(),
                                callback_group=self._input_group),
            self.create_service(ResetSession, '~/reset', self._on_reset,
                                qos_profile=self._service_qos(),
                                callback_group=self._input_group),
        ]
        frame = self.p['target_frame']
        self.get_logger().info(
            f"ready: cloud topic '{self._resolve('points')}', clicks "
            f"'{self._resolve('/clicked_point')}', service "
            f"'{self._resolve('~/click_segment')}', results in "
            f"{repr(frame) if frame else 'the cloud frame'}; "
            f'{self._weights_note or self._model_error}; max_queue {self.p["max_queue"]}, '
            f"max_interactions {self.p['max_interactions']}")

    def _service_qos(self):
        return QoSProfile(history=QoSHistoryPolicy.KEEP_LAST,
                          depth=max(64, 4 * self.p['max_queue']),
                          reliability=QoSReliabilityPolicy.RELIABLE,
                          durability=QoSDurabilityPolicy.VOLATILE)

    @property
    def executor_threads(self) -> int:
        """Return the executor threads needed: one per pending request, plus input and spare."""
        return self.p['max_queue'] + 4

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
        for item in self._interactions.items():
            self._interactions.drop(item.key, 'the model was released (lifecycle cleanup)')
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
        info = cloud_info(msg)
        with self._state_lock:
            self._latest = (msg, time.monotonic(), info)
        self.stats.cloud_received()

    def _on_click_mode(self, msg):
        with self._state_lock:
            self._mode = [int(msg.object_id), int(msg.part_id), bool(msg.positive)]
        self.get_logger().info(
            'click mode: object %s, part %d, ' % (msg.object_id or 'new', msg.part_id)
            + ('positive' if msg.positive else 'negative'))

    def _latest_snapshot(self):
        """Return (cloud, info, age s) of the latest received cloud, or (None, None, 0)."""
        with self._state_lock:
            latest = self._latest
        if latest is None:
            return None, None, 0.0
        msg, received, info = latest
        return msg, info, time.monotonic() - received

    # ----------------------------------------------------------------- core
    def _start_session(self, cloud):
        """Read a cloud and open a session on it; returns (session, arrays, encode ms)."""
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
        return session, arrays, float(session.encode_ms)

    def _candidate(self, key, current, cloud, info, reset):
        """
        Return (candidate, encode ms): the interaction's session on ``cloud``, its old clicks.

        The same cloud (or a re-published copy) keeps the session and its encoding; another
        cloud gets a new session with the earlier clicks carried over by position, or fails.
        """
        if self._segmenter is None:
            raise ModelNotReady(self._model_error or 'model not loaded')
        keep = [] if (reset or current is None) else list(current.clicks)
        if current is not None and current.session is not None and (
                cloud is current.cloud or _same_cloud(cloud, current.cloud)):
            session, saved = current.session, list(current.clicks)
            if reset and saved:
                session.reset()

                def undo():   # the same cloud: the old clicks snap exactly as before
                    session.reset()
                    self._add_clicks(session, saved, None)
            else:
                undo = _noop
            return interactions.Candidate(key, session, cloud, current.arrays, info, keep,
                                          undo), 0.0
        session, arrays, encode_ms = self._start_session(cloud)
        if keep:
            try:
                self._add_clicks(session, keep, None)
            except Pinpoint3DError as exc:
                raise ClickError(
                    f"{len(keep)} earlier click(s) of interaction '{key}' cannot be carried "
                    f'over to the new cloud (stamp {describe_stamp(info.stamp_ns)}, '
                    f"frame '{info.frame_id}', {info.num_points} points): {exc}. Nothing was "
                    'changed; send reset: true to start over on this cloud, or leave '
                    'cloud_newer_than zero to stay on the old one.') from None
        return interactions.Candidate(key, session, cloud, arrays, info, keep), encode_ms

    def _add_clicks(self, session, clicks, snap_radius):
        """Add (position, object, part, positive) clicks to a session as one batch."""
        from pinpoint3d_core.session import Click
        radius = self.p['snap_radius'] if snap_radius is None else snap_radius
        session.add_clicks(
            [Click(position=tuple(float(v) for v in pos), object_id=int(obj),
                   part_id=int(part), positive=bool(positive))
             for pos, obj, part, positive in clicks], snap_radius=radius)

    def _check_click_limit(self, key, held, adding, session):
        limit = getattr(getattr(self._segmenter, 'config', None), 'max_clicks', None) or 200
        if held + adding > limit:
            raise ClickError(
                f"interaction '{key}' holds {held} click(s) and this request adds {adding}; "
                f'an interaction holds at most {limit}. Send reset: true, or leave '
                'interaction_id empty to start a new interaction.')
        return limit

    def _serve(self, req, request_cloud, click_frame):
        """
        Run one request on its interaction: all or nothing.

        Returns (labeled, objects, encode ms, decode ms, interaction, cloud rule).
        """
        key = req.interaction_id or self._interactions.new_key()
        current = self._interactions.get(key)
        if current is None and req.interaction_id and not req.reset:
            why = self._interactions.forgotten_reason(key)
            if why is not None:
                raise ClickError(
                    f"interaction '{key}' is no longer live ({why}); its clicks are gone. "
                    'Send reset: true to start it again, or leave interaction_id empty.')
        latest, latest_info, age = self._latest_snapshot()
        cloud, info, rule = interactions.choose_cloud(
            request_cloud, cloud_info(request_cloud) if request_cloud is not None else None,
            req.newer_than_ns, current, req.reset, latest, latest_info, age,
            self.p['max_cloud_age'], self._resolve('points'))
        stamp = rclpy.time.Time(nanoseconds=info.stamp_ns)
        positions = self._tf.to_cloud_frame([c.position for c in req.clicks], click_frame,
                                            info.frame_id, stamp)
        # Before any state changes: a missing transform fails the request and changes nothing.
        out = frames.results_frame(self._tf, self.p['target_frame'], info.frame_id, stamp)
        clicks = [(tuple(float(v) for v in pos), c.object_id, c.part_id, c.positive)
                  for pos, c in zip(positions, req.clicks)]
        held = 0 if (req.reset or current is None) else len(current.clicks)
        self._check_click_limit(key, held, len(clicks), None)
        candidate, encode_ms = self._candidate(key, current, cloud, info, req.reset)
        added = False
        try:
            if clicks:
                self._add_clicks(candidate.session, clicks, req.snap_radius)
                added = True
                candidate.clicks = candidate.clicks + clicks
            pred = candidate.session.predict(granularity=req.granularity)
            encode_ms += pred.encode_ms   # the model's focus box was (re-)encoded in this call
            result = self._messages(candidate, pred, encode_ms, out)
        except BaseException:
            if added and candidate.session is (current.session if current else None):
                candidate.session.undo()
            candidate.undo()
            raise
        evicted = self._interactions.make_room(key)
        if evicted:
            self.get_logger().warning(f"interaction '{evicted}' forgotten to make room for "
                                      f"'{key}' (max_interactions {self.p['max_interactions']})")
        item = self._interactions.commit(candidate)
        self._publish(result[0], result[1], result[4], item, out)
        return result + (item, rule)

    def _messages(self, candidate, pred, encode_ms, out):
        arrays = candidate.arrays
        header = Header(stamp=candidate.cloud.header.stamp, frame_id=out.frame_id)
        points = out.apply(arrays.points)
        colors = conversions.label_rgb(pred.object_ids, pred.part_ids,
                                       self.p['colouring'], arrays.colors)
        labeled = conversions.labeled_cloud(header, points, pred.object_ids,
                                            pred.part_ids, colors, arrays.height, arrays.width)
        regions = conversions.summarise(points, pred.object_ids, pred.part_ids,
                                        pred.object_scores, pred.part_scores)
        objects = SegmentedObjects(header=header, objects=region_messages(regions),
                                   encode_ms=float(encode_ms), decode_ms=float(pred.decode_ms))
        return labeled, objects, float(encode_ms), float(pred.decode_ms), regions

    def _publish(self, labeled, objects, regions, item, out):
        """Publish one result on every output (all in one header); never fails the answer."""
        pubs = self._outputs
        if self._closing or not pubs:   # stopping, or a lifecycle node being cleaned up
            return
        header = objects.header
        try:
            pubs['cloud'].publish(labeled)
            pubs['objects'].publish(objects)
            if 'detections' in pubs:
                pubs['detections'].publish(detections.detections_from_regions(header, regions))
            if self.p['publish_markers']:
                clicks = item.clicks
                where = out.apply(np.array([c[0] for c in clicks], np.float64).reshape(-1, 3))
                pubs['markers'].publish(markers.build_markers(
                    header, regions, [(pos, c[3]) for pos, c in zip(where, clicks)]))
        except Exception as exc:  # noqa: B902 - the answer stands; outputs are best effort
            if self._closing:   # a context that is going away raises InvalidHandle here
                return
            self.get_logger().error(f'publishing the outputs failed: {type(exc).__name__}: '
                                    f'{exc}')

    def _run(self, what, fn):
        """Run fn(); turn every failure into (False, message) and keep the node alive."""
        try:
            return True, fn()
        except Pinpoint3DError as exc:
            message = str(exc)
        except Exception as exc:  # noqa: B902 - a request must never kill the node
            if _is_cuda_oom(exc):
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
        for item in self._interactions.items():
            item.session = None   # re-encoded on the CPU on next use; clicks are replayed
        self._load_model(device='cpu')
        ok, result = self._run(what, fn)
        if ok:
            self._notice = 'CUDA ran out of memory: the model now runs on the CPU'
            return ok, result
        return False, f'CUDA out of memory, and the CPU retry failed: {result}'

    def _run_job(self, job):
        return self._run(job.what, job.fn)

    def _submit(self, fn, what, force=False):
        """Queue fn on the worker and wait for its answer; (ok, value) in every case."""
        job = workqueue.Job(fn, what)
        try:
            self._queue.submit(job, force=force)
        except (workqueue.Busy, workqueue.ShuttingDown) as exc:
            self.get_logger().warning(f'{what}: {exc}')
            return False, str(exc)
        job.wait()
        return job.ok, job.value

    # ----------------------------------------------------------------- callbacks
    def _on_click_segment(self, request, response):
        t0 = time.perf_counter()
        with self._state_lock:
            self._in_callbacks += 1
        self.stats.request_started()
        try:
            response = self._click_segment(request, response, t0)
            return response
        finally:
            ok = bool(response.success)
            self.stats.request_finished(ok, response.encode_ms if ok else None,
                                        response.decode_ms if ok else None)
            with self._state_lock:
                self._in_callbacks -= 1
                self._last_answer = time.monotonic()

    def _click_segment(self, request, response, t0):
        response.interaction_id = request.interaction_id
        try:
            req = validation.check_request(
                request.interaction_id,
                [((c.position.x, c.position.y, c.position.z), c.object_id, c.part_id,
                  c.positive) for c in request.clicks],
                request.granularity, request.reset, request.snap_radius,
                (request.cloud_newer_than.sec, request.cloud_newer_than.nanosec),
                self.p['granularity'], self.p['snap_radius'])
            cloud = request.cloud
            if cloud.width * cloud.height == 0:
                if len(cloud.data):
                    raise InvalidCloudError('request cloud has data but width*height == 0.')
                cloud = None
        except Pinpoint3DError as exc:
            self.get_logger().warning(f'click_segment: {exc}')
            response.success, response.message = False, str(exc)
            return response
        ok, result = self._submit(
            lambda: self._serve(req, cloud, request.header.frame_id), 'click_segment')
        response.success = ok
        if not ok:
            response.message = result
            return response
        labeled, objects, encode_ms, decode_ms, _, item, rule = result
        total_ms = (time.perf_counter() - t0) * 1e3
        response.header = objects.header
        response.interaction_id = item.key
        response.cloud_header = item.cloud.header
        response.cloud_points = int(item.info.num_points)
        response.num_clicks = len(item.clicks)
        response.labeled_cloud = labeled
        response.objects = objects.objects
        response.encode_ms, response.decode_ms = encode_ms, decode_ms
        response.message = self._summary(labeled, objects, encode_ms, decode_ms, total_ms,
                                         item, rule)
        self.get_logger().info(f'click_segment: {response.message}')
        return response

    def _summary(self, labeled, objects, encode_ms, decode_ms, total_ms, item, rule):
        parts = sum(len(o.parts) for o in objects.objects)
        notice, self._notice = self._notice, ''
        return (f'{labeled.width * labeled.height} points, {len(objects.objects)} object(s), '
                f'{parts} part(s), {len(item.clicks)} click(s); encode {encode_ms:.1f} ms, '
                f'decode {decode_ms:.1f} ms, total {total_ms:.1f} ms; interaction '
                f"'{item.key}', cloud stamp {describe_stamp(item.info.stamp_ns)} "
                f'({CLOUD_RULES[rule]})'
                + ('; UNTRAINED weights, segmentation meaningless'
                   if 'UNTRAINED' in self._weights_note else '')
                + ("; NO WEIGHTS: the preset's non-learned baseline"
                   if self._choice is not None and self._choice.baseline else '')
                + (f'; {notice}' if notice else ''))

    def _on_clicked_point(self, msg):
        """Buffer an RViz click (never dropped) and make sure the worker will take it."""
        position = (msg.point.x, msg.point.y, msg.point.z)
        with self._state_lock:
            self.rviz_counts['received'] += 1
            object_id, part_id, positive = self._mode
            if object_id == 0:   # a new object: the next free id, then keep refining it
                object_id = self._rviz_next_object
                self._mode[0] = object_id
            self._rviz_next_object = max(self._rviz_next_object, object_id + 1)
            self._rviz_pending.append((msg.header.frame_id, msg.header.stamp, position,
                                       object_id, part_id, positive))
            if len(self._rviz_pending) > RVIZ_BUFFER:
                self._rviz_pending.popleft()
                self.rviz_counts['dropped'] += 1
                self.get_logger().warning(
                    f'clicked_point: more than {RVIZ_BUFFER} clicks waiting; the oldest was '
                    f"dropped ({self.rviz_counts['dropped']} so far)")
            schedule = not self._rviz_scheduled and not self._closing
            self._rviz_scheduled = self._rviz_scheduled or schedule
        if schedule:
            try:
                self._queue.submit(workqueue.Job(self._serve_rviz, 'clicked_point'),
                                   force=True)
            except workqueue.ShuttingDown:
                pass

    def _serve_rviz(self):
        """Segment every buffered RViz click in one step (coalesced); each one is counted."""
        t0 = time.perf_counter()
        with self._state_lock:
            batch = list(self._rviz_pending)
            self._rviz_pending.clear()
            self._rviz_scheduled = False
        if not batch:
            return None
        counts = self.rviz_counts
        if len(batch) > 1:
            counts['coalesced'] += len(batch) - 1
        current = self._interactions.get(interactions.RVIZ_KEY)
        held = len(current.clicks) if current is not None else 0
        limit = getattr(getattr(self._segmenter, 'config', None), 'max_clicks', None) or 200
        reset = False
        if held + len(batch) > limit:
            reset = True
            counts['new_interactions'] += 1
            self.get_logger().warning(
                f'clicked_point: the RViz interaction holds {held} click(s), at most {limit}: '
                'it starts over with these clicks (earlier ones are forgotten; ~/reset does '
                'the same at any time)')
            if len(batch) > limit:
                counts['dropped'] += len(batch) - limit
                self.get_logger().warning(
                    f'clicked_point: {len(batch)} clicks arrived in one step, more than one '
                    f'interaction holds; the oldest {len(batch) - limit} were dropped')
                batch = batch[-limit:]
        done, failed = [], []
        for run in _runs_by_frame(batch):
            ok, bad = self._rviz_batch(run, reset and not done)
            if bad and len(run) > 1:   # one bad click must not take the others with it
                ok, bad = [], []
                for click in run:
                    one_ok, one_bad = self._rviz_batch([click], reset and not done and not ok)
                    ok += one_ok
                    bad += one_bad
            done += ok
            failed += bad
        counts['segmented'] += len(done)
        counts['refused'] += len(failed)
        if failed:
            self.stats.clicks_dropped(len(failed))
        total_ms = (time.perf_counter() - t0) * 1e3
        item = self._interactions.get(interactions.RVIZ_KEY)
        self.get_logger().info(
            f'clicked_point: {len(batch)} click(s) in one step, {len(done)} segmented, '
            f'{len(failed)} refused; RViz interaction holds '
            f'{len(item.clicks) if item else 0} click(s); {total_ms:.1f} ms; totals: '
            + ', '.join(f'{k} {v}' for k, v in counts.items()))
        return None

    def _rviz_batch(self, batch, reset):
        """Run one RViz batch; returns (done, failed) lists (all of one or the other)."""
        frame = batch[0][0]
        self.stats.request_started()
        ok, result = False, None
        try:
            done, failed, result = self._rviz_step(batch, reset, frame)
            ok = result is not None
        finally:
            self.stats.request_finished(ok, *(result[2:4] if ok else (None, None)))
        return done, failed

    def _rviz_step(self, batch, reset, frame):
        req = validation.ValidRequest(
            interactions.RVIZ_KEY,
            tuple(validation.RequestClick(tuple(c[2]), c[3], c[4], c[5]) for c in batch),
            self.p['granularity'], reset, self.p['snap_radius'], 0)
        try:
            for c in batch:
                validation.check_click(0, c[2], c[3], c[4], c[5])
            result = self._serve(req, None, frame)
        except Exception as exc:  # noqa: B902 - counted and logged, never raised
            why = str(exc) if isinstance(exc, Pinpoint3DError) else (
                f'internal error ({type(exc).__name__}: {exc})')
            self.get_logger().warning(f'clicked_point: {len(batch)} click(s) refused: {why}')
            return [], [(c, why) for c in batch], None
        return list(batch), [], result

    def _on_reset(self, request, response):
        key = request.interaction_id

        def work():
            if key:
                validation.check_interaction_id(key)
                item = self._interactions.get(key)
                if item is None:
                    raise ClickError(f"no live interaction '{key}' (live: "
                                     f"{', '.join(self._interactions.keys()) or 'none'}).")
                items = [item]
            else:
                items = self._interactions.items()
            count = 0
            for item in items:
                count += len(item.clicks)
                item.clicks = []
                if item.session is not None:
                    item.session.reset()
            if not key or key == interactions.RVIZ_KEY:
                with self._state_lock:
                    self._mode = [self.p['click_object_id'], self.p['click_part_id'],
                                  self.p['click_positive']]
                    self._rviz_next_object = 1
            where = f"interaction '{key}'" if key else f'{len(items)} interaction(s)'
            return (f'forgot {count} click(s) in {where}; the cached encodings are kept.')

        ok, message = self._submit(work, 'reset', force=True)
        response.success, response.message = ok, message
        self.get_logger().info(f'reset: {message}')
        return response

    # ----------------------------------------------------------------- shutdown
    def stop_serving(self, grace_s: float = 1.0) -> int:
        """
        Stop taking work and answer everything accepted; returns how many were failed.

        Queued requests are answered at once ("shutting down"); the running one gets
        ``grace_s`` to finish. Returns once every service callback has returned its answer.
        """
        self._closing = True
        failed = self._queue.close(grace_s)
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            with self._state_lock:
                if self._in_callbacks == 0:
                    break
            time.sleep(0.01)
        # An answer handed to DDS is sent asynchronously (a labelled cloud is megabytes, in
        # fragments): destroying the node at once would lose it on the wire.
        with self._state_lock:
            linger = self._last_answer + ANSWER_LINGER_S - time.monotonic()
        if linger > 0:
            time.sleep(linger)
        return failed

    @property
    def worker_busy(self) -> bool:
        """Return True while a segmentation still runs (after stop_serving: it outlived it)."""
        return self._queue.busy


def _noop():
    return None


def _runs_by_frame(batch):
    """Split buffered RViz clicks into consecutive runs that share one frame."""
    runs = []
    for click in batch:
        if runs and runs[-1][0][0] == click[0]:
            runs[-1].append(click)
        else:
            runs.append([click])
    return runs


# What the summary says about the cloud rule (interactions.choose_cloud).
CLOUD_RULES = {'request': 'the request cloud', 'newer': 'the latest, newer than asked',
               'kept': "the interaction's cloud", 'latest': 'the latest received'}
RVIZ_COUNTERS = ('received', 'segmented', 'refused', 'coalesced', 'dropped', 'new_interactions')
# /clicked_point subscription depth and the buffer behind it: bursts wait, never vanish.
CLICK_QUEUE_DEPTH = 100
RVIZ_BUFFER = 1000


def cloud_info(msg) -> interactions.CloudInfo:
    """Return the stamp, frame and point count of a PointCloud2 (for responses)."""
    stamp = msg.header.stamp
    return interactions.CloudInfo(int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec),
                                  msg.header.frame_id, int(msg.width) * int(msg.height))


def _is_cuda_oom(exc):
    try:
        import torch
    except ImportError:  # pragma: no cover
        return False
    oom = getattr(torch.cuda, 'OutOfMemoryError', None)
    return (oom is not None and isinstance(exc, oom)) or 'CUDA out of memory' in str(exc)


def main(args=None, exit_process=True):
    """Run the node until SIGINT or SIGTERM (see ``run``)."""
    return run(Pinpoint3DNode, args, exit_process)


def run(make_node, args=None, exit_process=True):
    """
    Run ``make_node()`` until SIGINT or SIGTERM, then stop cleanly within about 2 s.

    rclpy's own signal handler would shut the context down at once, so answers to in-flight
    requests could no longer be sent; this one only sets a flag: the loop stops taking work,
    every accepted request is answered, then the node is destroyed. ``exit_process``: end the
    process right after (os._exit once everything is flushed): the interpreter's teardown
    with torch loaded takes about a second and has nothing left to do.
    """
    from rclpy.signals import SignalHandlerOptions
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    node = executor = None
    try:
        node = make_node()
        executor = MultiThreadedExecutor(num_threads=node.executor_threads)
        executor.add_node(node)
        while not stop.is_set() and rclpy.ok():
            executor.spin_once(timeout_sec=0.1)
    except ExternalShutdownException:
        pass
    finally:
        t0 = time.monotonic()
        if node is not None:
            failed = node.stop_serving(grace_s=SHUTDOWN_GRACE_S)
            node.get_logger().info(
                f'stopped: {failed} request(s) answered as failed; '
                f'{(time.monotonic() - t0) * 1e3:.0f} ms')
        if executor is not None:
            executor.shutdown(timeout_sec=0.2)
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if exit_process:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0


# Seconds a running segmentation may take to finish once a stop was asked for, and how long
# the node stays up after its last answer so that DDS delivers it.
SHUTDOWN_GRACE_S = 0.8
ANSWER_LINGER_S = 0.4


if __name__ == '__main__':
    main()
