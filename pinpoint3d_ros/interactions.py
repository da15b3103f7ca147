"""
Interactions: one click history per client, each on the cloud it started on. ROS-free.

An :class:`Interaction` holds a segmenter session, the cloud it was built from (an opaque
message the node keeps) and the clicks in that cloud's frame. The :class:`Registry` names
interactions, bounds how many live at once and forgets idle ones, so one client can never
see, reset or fill another's clicks. Changes are transactional: the node builds a
:class:`Candidate`, and only :meth:`Registry.commit` makes it visible; a request that fails
leaves the interaction exactly as it was.

Cloud selection (:func:`choose_cloud`) is pure too: a request's own cloud wins; then a demand
for a cloud newer than a stamp; then the interaction's own cloud; a new interaction takes the
latest cloud, and so does one that is reset. An interaction never silently moves to another
cloud.
"""

import collections
from dataclasses import dataclass, field
import itertools
import threading
import time
from typing import Callable, Dict, List, Optional, Tuple

from pinpoint3d_core.errors import Pinpoint3DError
from pinpoint3d_ros.validation import describe_stamp

RVIZ_KEY = 'rviz'


class CloudSelectionError(Pinpoint3DError):
    """No cloud satisfies the request (none yet, too old, or not newer than demanded)."""


@dataclass(frozen=True)
class CloudInfo:
    """What the response reports about the segmented cloud."""

    stamp_ns: int
    frame_id: str
    num_points: int


@dataclass
class Interaction:
    """One client's click history on one cloud."""

    key: str
    session: object            # an InteractiveSession (the cached encoding lives in it)
    cloud: object              # the message it was built from (compared, never parsed here)
    arrays: object             # the arrays read from that cloud
    info: CloudInfo
    clicks: List[tuple] = field(default_factory=list)   # (position, object, part, positive)
    last_used: float = 0.0


@dataclass
class Candidate:
    """The state a request would leave; committed only when the request succeeded."""

    key: str
    session: object
    cloud: object
    arrays: object
    info: CloudInfo
    clicks: List[tuple]
    undo: Callable[[], None] = lambda: None   # restores a shared session on failure


class Registry:
    """
    Named interactions with a bound on how many live and an idle timeout.

    ``max_live``: interactions held at once (each keeps an encoding in memory); when a new one
    needs room, the least recently used is forgotten. ``idle_timeout_s``: an interaction
    unused this long is forgotten (0 = never). A forgotten key is remembered (the last
    ``FORGOTTEN_KEPT``) so that a later request refining it fails with the reason instead of
    silently starting over. Thread-safe; the node's single worker is the only user of sessions.
    """

    FORGOTTEN_KEPT = 1024

    def __init__(self, max_live: int, idle_timeout_s: float,
                 clock: Callable[[], float] = time.monotonic):
        self.max_live = max(1, int(max_live))
        self.idle_timeout_s = float(idle_timeout_s)
        self._clock = clock
        self._items: Dict[str, Interaction] = {}
        self._forgotten: 'collections.OrderedDict[str, str]' = collections.OrderedDict()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.expired_total = 0
        self.evicted_total = 0

    def __len__(self) -> int:
        """Return how many interactions are live."""
        with self._lock:
            return len(self._items)

    def keys(self) -> List[str]:
        """Return the live keys, least recently used first."""
        with self._lock:
            return [k for k, _ in sorted(self._items.items(), key=lambda kv: kv[1].last_used)]

    def new_key(self) -> str:
        """Return a fresh node-chosen key ('i1', 'i2', ...) never used before in this run."""
        with self._lock:
            while True:
                key = f'i{next(self._ids)}'
                if key not in self._items and key not in self._forgotten:
                    return key

    def _forget(self, key: str, why: str) -> None:
        self._forgotten[key] = why
        self._forgotten.move_to_end(key)
        while len(self._forgotten) > self.FORGOTTEN_KEPT:
            self._forgotten.popitem(last=False)

    def expire(self) -> List[str]:
        """Forget interactions idle longer than the timeout; returns their keys."""
        if self.idle_timeout_s <= 0:
            return []
        now = self._clock()
        with self._lock:
            old = [k for k, v in self._items.items()
                   if now - v.last_used > self.idle_timeout_s]
            for key in old:
                del self._items[key]
                self._forget(key, f'idle for more than {self.idle_timeout_s:g} s '
                                  '(interaction_idle_timeout)')
            self.expired_total += len(old)
        return old

    def get(self, key: str) -> Optional[Interaction]:
        """Return the live interaction ``key`` or None (expired ones are gone)."""
        self.expire()
        with self._lock:
            return self._items.get(key)

    def forgotten_reason(self, key: str) -> Optional[str]:
        """Return why ``key`` was forgotten, or None when it never lived (or lives)."""
        with self._lock:
            return None if key in self._items else self._forgotten.get(key)

    def make_room(self, key: str) -> Optional[str]:
        """Before ``key`` is created: forget the least recently used one if full; its key."""
        self.expire()
        with self._lock:
            if key in self._items or len(self._items) < self.max_live:
                return None
            oldest = min(self._items.values(), key=lambda v: v.last_used)
            del self._items[oldest.key]
            self._forget(oldest.key, f'forgotten to make room: more than {self.max_live} '
                                     'interactions were live (max_interactions)')
            self.evicted_total += 1
            return oldest.key

    def commit(self, candidate: Candidate) -> Interaction:
        """Make a successful request's state the interaction's state."""
        with self._lock:
            item = Interaction(candidate.key, candidate.session, candidate.cloud,
                               candidate.arrays, candidate.info, list(candidate.clicks),
                               self._clock())
            self._items[candidate.key] = item
            self._forgotten.pop(candidate.key, None)
            return item

    def drop(self, key: str, why: str = 'reset') -> Optional[Interaction]:
        """Forget one interaction; returns it (None when unknown)."""
        with self._lock:
            item = self._items.pop(key, None)
            if item is not None:
                self._forget(key, why)
            return item

    def items(self) -> List[Interaction]:
        """Return the live interactions."""
        with self._lock:
            return list(self._items.values())


def choose_cloud(request_cloud, request_info: Optional[CloudInfo], newer_than_ns: int,
                 current: Optional[Interaction], reset: bool, latest, latest_info, latest_age_s,
                 max_age_s: float, topic: str) -> Tuple[object, CloudInfo, str]:
    """
    Pick the cloud a request segments; returns (cloud, info, why).

    1. a cloud inside the request;
    2. ``newer_than_ns`` > 0: the latest received cloud, only when its stamp is newer;
    3. an existing interaction (not reset): its own cloud, even when newer ones arrived;
    4. a new or reset interaction: the latest received cloud (``max_age_s`` > 0 bounds its
       age); a reset one without any received cloud stays on its own.
    Raises CloudSelectionError with the reason when the rule's cloud is not there.
    """
    if request_cloud is not None:
        return request_cloud, request_info, 'request'
    if newer_than_ns > 0:
        if latest is None:
            raise CloudSelectionError(
                f'no cloud newer than {describe_stamp(newer_than_ns)} arrived: no cloud has '
                f"been received on '{topic}' yet.")
        if latest_info.stamp_ns <= newer_than_ns:
            raise CloudSelectionError(
                f'no cloud newer than {describe_stamp(newer_than_ns)} arrived on '
                f"'{topic}': the latest has stamp {describe_stamp(latest_info.stamp_ns)} "
                f'(received {latest_age_s:.1f} s ago); was it lost in transport (QoS, size)?')
        return latest, latest_info, 'newer'
    if current is not None and (not reset or latest is None):
        return current.cloud, current.info, 'kept'
    if latest is None:
        raise CloudSelectionError(
            f"no cloud received yet on '{topic}'; publish one or pass it in the request's "
            'cloud field.')
    if max_age_s > 0 and latest_age_s > max_age_s:
        raise CloudSelectionError(
            f'the latest cloud is {latest_age_s:.1f} s old (max_cloud_age {max_age_s:.1f} s); '
            'is the sensor still publishing?')
    return latest, latest_info, 'latest'
