"""
A bounded FIFO of segmentation jobs run by one worker thread, with explicit back-pressure.

Why: the model and the interactions are used by one thread at a time, and requests must
never wait unboundedly or vanish. :meth:`WorkQueue.submit` either accepts a job or raises
:class:`Busy` at once ("busy: N requests waiting"); every accepted job is answered exactly
once: by the worker, or by :meth:`WorkQueue.close` ("shutting down") when the node stops.
ROS-free, so the accounting is unit-tested without DDS.
"""

import collections
import threading
from typing import Callable, Optional

from pinpoint3d_core.errors import Pinpoint3DError


class Busy(Pinpoint3DError):
    """The queue is full; the request was not accepted."""


class ShuttingDown(Pinpoint3DError):
    """The node is stopping; the request was not (or not completely) run."""


class Job:
    """One unit of work and its single answer (``ok``, ``value``)."""

    def __init__(self, fn: Callable[[], object], what: str = 'request'):
        self.fn = fn
        self.what = what
        self._done = threading.Event()
        self._lock = threading.Lock()
        self.ok = None
        self.value = None

    def finish(self, ok: bool, value) -> bool:
        """Set the answer once; returns False when it had already been answered."""
        with self._lock:
            if self._done.is_set():
                return False
            self.ok, self.value = ok, value
            self._done.set()
            return True

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Wait for the answer; returns True when there is one."""
        return self._done.wait(timeout)

    @property
    def done(self) -> bool:
        """Return True once answered."""
        return self._done.is_set()


class WorkQueue:
    """
    At most ``max_pending`` jobs waiting or running; one daemon worker runs them in order.

    ``runner(job)`` returns (ok, value) and must not raise (the node's runner turns every
    exception into (False, message)); a raise is still answered, as an internal error.
    """

    def __init__(self, runner: Callable[[Job], tuple], max_pending: int, name='pinpoint3d'):
        self._runner = runner
        self.max_pending = int(max_pending)
        self._queue = collections.deque()
        self._cond = threading.Condition()
        self._closed = False
        self._running: Optional[Job] = None
        self.accepted = 0
        self.refused_busy = 0
        self.refused_closed = 0
        self.completed = 0
        self._thread = threading.Thread(target=self._loop, name=f'{name}-worker', daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        """Return jobs waiting plus the one running."""
        with self._cond:
            return len(self._queue) + (self._running is not None)

    @property
    def busy(self) -> bool:
        """Return True while the worker runs a job."""
        with self._cond:
            return self._running is not None

    def submit(self, job: Job, force: bool = False) -> Job:
        """
        Queue ``job``; raises Busy (queue full) or ShuttingDown at once instead of waiting.

        ``force``: accept even when full (the caller bounds these itself: one RViz batch and
        resets, which must never be refused).
        """
        with self._cond:
            if self._closed:
                self.refused_closed += 1
                raise ShuttingDown('the node is shutting down; the request was not run.')
            waiting = len(self._queue) + (self._running is not None)
            if waiting >= self.max_pending and not force:
                self.refused_busy += 1
                raise Busy(f'busy: {waiting} requests waiting (max_queue {self.max_pending}); '
                           'try again shortly.')
            self._queue.append(job)
            self.accepted += 1
            self._cond.notify()
        return job

    def _loop(self):
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue:
                    return
                job = self._queue.popleft()
                self._running = job
            try:
                ok, value = self._runner(job)
            except BaseException as exc:  # noqa: B902 - every accepted job gets an answer
                ok, value = False, f'internal error ({type(exc).__name__}: {exc})'
            job.finish(ok, value)
            with self._cond:
                self._running = None
                self.completed += 1
                self._cond.notify_all()

    def close(self, grace_s: float) -> int:
        """
        Stop accepting; answer queued jobs "shutting down"; give the running one ``grace_s``.

        Returns how many jobs were answered here instead of by the worker (a running job
        that outlives the grace period is answered here, and its late result is dropped).
        """
        with self._cond:
            self._closed = True
            queued = list(self._queue)
            self._queue.clear()
            running = self._running
            self._cond.notify_all()
        answered = 0
        for job in queued:
            answered += job.finish(False, 'the node is shutting down; the request was not run.')
        if running is not None and not running.wait(grace_s):
            answered += running.finish(
                False, 'the node is shutting down; the segmentation did not finish in time.')
        return answered

    def join(self, timeout: float) -> bool:
        """Wait for the worker to exit; returns True when it did."""
        self._thread.join(timeout)
        return not self._thread.is_alive()
