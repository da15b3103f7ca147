"""
The node's health on /diagnostics (diagnostic_msgs/DiagnosticArray), for rqt_robot_monitor.

Three statuses, named ``<node>: model``, ``<node>: input`` and ``<node>: requests``:

- model: loaded or not (and why), the weights and device (``Segmenter.describe()``), the
  preset; ERROR when no model is loaded, WARN for untrained weights or a preset's baseline
  standing in for absent weights, WARN while a lifecycle node is not active.
- input: clouds per second over the last 10 s and the age of the latest cloud; WARN when none
  arrived yet or the latest is older than ``max_cloud_age``.
- requests: encode and decode latency percentiles (p50/p90/p99 over the last 200 requests that
  ran the model), requests served and failed, clicks dropped (an RViz click that could not be
  used, or earlier clicks that no longer fit a new scan), queue depth (requests inside the node:
  being served or waiting for the work group); WARN when failures or drops grew since the
  previous report.

``NodeStats`` is plain Python (thread-safe counters and windows); ``diagnostic_array`` builds
the message.
"""

import collections
import threading
import time
from typing import Callable, Dict, Optional

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
import numpy as np

LATENCY_WINDOW = 200
RATE_WINDOW_S = 10.0
PERCENTILES = (50, 90, 99)


class NodeStats:
    """Counters and sliding windows the node updates from its callbacks (any thread)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 latency_window: int = LATENCY_WINDOW, rate_window_s: float = RATE_WINDOW_S):
        self._clock = clock
        self._lock = threading.Lock()
        self._rate_window_s = float(rate_window_s)
        self._arrivals = collections.deque()
        self._latest = None
        self._encode = collections.deque(maxlen=latency_window)
        self._decode = collections.deque(maxlen=latency_window)
        self.served = 0
        self.failed = 0
        self.dropped_clicks = 0
        self.in_flight = 0
        self._reported = (0, 0)

    def cloud_received(self) -> None:
        """Count one input cloud now."""
        now = self._clock()
        with self._lock:
            self._arrivals.append(now)
            self._latest = now
            self._trim(now)

    def _trim(self, now):
        while self._arrivals and self._arrivals[0] < now - self._rate_window_s:
            self._arrivals.popleft()

    def request_started(self) -> None:
        """Count a request entering the node (the queue depth grows by one)."""
        with self._lock:
            self.in_flight += 1

    def request_finished(self, ok: bool, encode_ms: Optional[float] = None,
                         decode_ms: Optional[float] = None) -> None:
        """Count a request leaving the node; latencies only when it ran the model."""
        with self._lock:
            self.in_flight = max(0, self.in_flight - 1)
            if ok:
                self.served += 1
                if encode_ms is not None:
                    self._encode.append(float(encode_ms))
                if decode_ms is not None:
                    self._decode.append(float(decode_ms))
            else:
                self.failed += 1

    def clicks_dropped(self, count: int = 1) -> None:
        """Count clicks the user sent that could not be used."""
        with self._lock:
            self.dropped_clicks += int(count)

    def input_rate(self) -> float:
        """Return clouds per second over the rate window (0 with fewer than two clouds)."""
        now = self._clock()
        with self._lock:
            self._trim(now)
            arrivals = list(self._arrivals)
        if len(arrivals) < 2:
            return 0.0
        span = now - arrivals[0]   # up to now: the rate falls when the sensor stops
        return (len(arrivals) - 1) / span if span > 0 else 0.0

    def latest_age(self) -> Optional[float]:
        """Return seconds since the latest cloud, None when none arrived."""
        with self._lock:
            latest = self._latest
        return None if latest is None else self._clock() - latest

    def latency_percentiles(self, kind: str) -> Optional[Dict[int, float]]:
        """Return {50: ms, 90: ms, 99: ms} of 'encode' or 'decode' (None before any request)."""
        with self._lock:
            values = list(self._encode if kind == 'encode' else self._decode)
        if not values:
            return None
        got = np.percentile(np.asarray(values), PERCENTILES)
        return {p: float(v) for p, v in zip(PERCENTILES, got)}

    def grew_since_last_report(self) -> bool:
        """Return True when failures or dropped clicks grew since the previous call."""
        with self._lock:
            now = (self.failed, self.dropped_clicks)
            grew = now[0] > self._reported[0] or now[1] > self._reported[1]
            self._reported = now
        return grew


def _kv(key, value):
    return KeyValue(key=str(key), value=str(value))


def _status(name, hardware_id, level, message, values):
    status = DiagnosticStatus(name=name, hardware_id=hardware_id, message=message,
                              values=[_kv(k, v) for k, v in values])
    status.level = level
    return status


def _fmt_ms(percentiles):
    if percentiles is None:
        return 'n/a'
    return ' / '.join(f'{percentiles[p]:.1f}' for p in PERCENTILES)


def model_status(name, hardware_id, model: dict):
    """
    Build the model status from ``model``.

    Keys: loaded, description, device, preset, error, untrained, baseline, lifecycle_state.
    """
    state = model.get('lifecycle_state')
    values = [('loaded', str(bool(model.get('loaded'))).lower()),
              ('weights', model.get('description') or 'none'),
              ('device', model.get('device') or 'none'),
              ('preset', model.get('preset') or '')]
    if state:
        values.append(('lifecycle state', state))
    if state and state != 'active':
        level = DiagnosticStatus.WARN
        message = (f"lifecycle state '{state}': not serving"
                   + ('' if model.get('loaded') else ', model not loaded'))
    elif not model.get('loaded'):
        level, message = DiagnosticStatus.ERROR, model.get('error') or 'model not loaded'
    elif model.get('untrained'):
        level, message = DiagnosticStatus.WARN, 'UNTRAINED weights: results are meaningless'
    elif model.get('baseline'):
        level = DiagnosticStatus.WARN
        message = "preset weights not installed: the preset's non-learned baseline runs"
    else:
        level, message = DiagnosticStatus.OK, f"model loaded on {model.get('device')}"
    return _status(f'{name}: model', hardware_id, level, message, values)


def input_status(name, hardware_id, stats: NodeStats, topic: str, max_age: float = 0.0):
    """Build the input status: rate and age of the latest cloud on ``topic``."""
    age = stats.latest_age()
    rate = stats.input_rate()
    values = [('topic', topic), ('rate (Hz)', f'{rate:.2f}'),
              ('latest cloud age (s)', 'none yet' if age is None else f'{age:.2f}')]
    if age is None:
        level, message = DiagnosticStatus.WARN, f"no cloud received yet on '{topic}'"
    elif max_age > 0 and age > max_age:
        level = DiagnosticStatus.WARN
        message = f'latest cloud is {age:.1f} s old (max_cloud_age {max_age:.1f} s)'
    else:
        level, message = DiagnosticStatus.OK, f'{rate:.1f} Hz, latest {age:.1f} s ago'
    return _status(f'{name}: input', hardware_id, level, message, values)


def requests_status(name, hardware_id, stats: NodeStats, queue_depth: Optional[int] = None):
    """Build the requests status: latencies, counts, queue depth."""
    encode = stats.latency_percentiles('encode')
    decode = stats.latency_percentiles('decode')
    depth = stats.in_flight if queue_depth is None else int(queue_depth)
    values = [('encode ms p50 / p90 / p99', _fmt_ms(encode)),
              ('decode ms p50 / p90 / p99', _fmt_ms(decode)),
              ('requests served', stats.served), ('requests failed', stats.failed),
              ('clicks dropped', stats.dropped_clicks), ('queue depth', depth)]
    if stats.grew_since_last_report():
        level = DiagnosticStatus.WARN
        message = (f'{stats.failed} failed request(s), {stats.dropped_clicks} dropped '
                   'click(s) so far; the node log says why')
    else:
        level = DiagnosticStatus.OK
        message = f'{stats.served} served, decode p50 {_fmt_ms(decode).split(" / ")[0]} ms'
    return _status(f'{name}: requests', hardware_id, level, message, values)


def diagnostic_array(stamp, name: str, stats: NodeStats, model: dict, topic: str,
                     max_age: float = 0.0, queue_depth: Optional[int] = None,
                     hardware_id: str = '') -> DiagnosticArray:
    """Return the DiagnosticArray of one report (``name``: the node's full name)."""
    hardware_id = hardware_id or model.get('device') or 'none'
    out = DiagnosticArray()
    out.header.stamp = stamp
    out.status = [model_status(name, hardware_id, model),
                  input_status(name, hardware_id, stats, topic, max_age),
                  requests_status(name, hardware_id, stats, queue_depth)]
    return out
