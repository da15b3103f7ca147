"""
Pure logic of the node (issue #16): interaction registry, cloud selection, back-pressure queue.

No ROS and no model: what each rule decides, with a fake clock where time matters.
"""

import threading

from pinpoint3d_ros.interactions import (Candidate, choose_cloud, CloudInfo, CloudSelectionError,
                                         Registry)
from pinpoint3d_ros.workqueue import Busy, Job, ShuttingDown, WorkQueue
import pytest


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def candidate(key, clicks=(), cloud='c'):
    return Candidate(key, session=object(), cloud=cloud, arrays=None,
                     info=CloudInfo(1, 'map', 10), clicks=list(clicks))


def test_keys_are_unique_and_interactions_are_separate():
    reg = Registry(4, 0)
    a, b = reg.new_key(), reg.new_key()
    assert a != b
    reg.commit(candidate(a, ['click-a']))
    reg.commit(candidate(b, ['click-b']))
    assert reg.get(a).clicks == ['click-a'] and reg.get(b).clicks == ['click-b']


def test_the_least_recently_used_interaction_makes_room_and_is_remembered():
    clock = Clock()
    reg = Registry(2, 0, clock=clock)
    for i, key in enumerate(['a', 'b']):
        clock.t = i
        reg.commit(candidate(key))
    clock.t = 5
    reg.commit(candidate('a'))           # 'a' used again: 'b' is now the oldest
    assert reg.make_room('c') == 'b'
    reg.commit(candidate('c'))
    assert sorted(reg.keys()) == ['a', 'c']
    assert 'max_interactions' in reg.forgotten_reason('b')
    assert reg.make_room('a') is None    # a live key needs no room


def test_idle_interactions_expire_and_say_why():
    clock = Clock()
    reg = Registry(8, idle_timeout_s=10, clock=clock)
    reg.commit(candidate('k'))
    clock.t = 9
    assert reg.get('k') is not None
    clock.t = 20
    assert reg.get('k') is None
    assert 'idle for more than 10 s' in reg.forgotten_reason('k')
    reg.commit(candidate('k'))
    assert reg.forgotten_reason('k') is None


def test_node_chosen_keys_are_never_reused():
    reg = Registry(1, 0)
    first = reg.new_key()
    reg.commit(candidate(first))
    reg.drop(first)
    assert reg.new_key() != first


LATEST = CloudInfo(stamp_ns=2_000_000_000, frame_id='map', num_points=100)


def pick(request=None, newer=0, current=None, reset=False, latest='L', age=0.5, max_age=0.0):
    info = CloudInfo(7, 'cam', 5) if request is not None else None
    return choose_cloud(request, info, newer, current, reset, latest,
                        LATEST if latest is not None else None, age, max_age, '/points')


def test_cloud_rules_in_order():
    reg = Registry(4, 0)
    reg.commit(candidate('k', cloud='own'))
    current = reg.get('k')
    assert pick(request='R', current=current)[0] == 'R'          # 1. the request's cloud
    assert pick(newer=1, current=current)[0] == 'L'              # 2. newer than T
    assert pick(current=current)[0] == 'own'                     # 3. the interaction's own
    assert pick()[0] == 'L'                                      # 4. new: the latest
    assert pick(current=current, reset=True)[0] == 'L'           # ... and after a reset
    assert pick(current=current, reset=True, latest=None)[0] == 'own'   # none received


def test_a_demanded_newer_cloud_that_never_came_fails_with_the_stamps():
    with pytest.raises(CloudSelectionError, match=r'no cloud newer than 2.000000000 arrived'
                                                  r'.*latest has stamp 2.000000000'):
        pick(newer=LATEST.stamp_ns)
    with pytest.raises(CloudSelectionError, match='no cloud has been received'):
        pick(newer=1, latest=None)


def test_old_or_missing_latest_cloud_fails_for_a_new_interaction():
    with pytest.raises(CloudSelectionError, match="no cloud received yet on '/points'"):
        pick(latest=None)
    with pytest.raises(CloudSelectionError, match='max_cloud_age'):
        pick(age=3.0, max_age=1.0)


def test_full_queue_answers_busy_at_once_and_every_job_is_answered():
    gate = threading.Event()
    ran = []

    def runner(job):
        gate.wait(10)
        ran.append(job.what)
        return True, job.what

    queue = WorkQueue(runner, max_pending=2)
    jobs = [queue.submit(Job(None, f'j{i}')) for i in range(2)]
    with pytest.raises(Busy, match='busy: 2 requests waiting'):
        queue.submit(Job(None, 'j2'))
    forced = queue.submit(Job(None, 'forced'), force=True)   # RViz batch / reset
    gate.set()
    assert all(j.wait(10) for j in jobs + [forced])
    assert ran == ['j0', 'j1', 'forced']   # in arrival order
    assert (queue.accepted, queue.refused_busy, queue.completed) == (3, 1, 3)


def test_close_answers_queued_jobs_and_a_running_one_that_overstays():
    started, gate = threading.Event(), threading.Event()

    def runner(job):
        started.set()
        gate.wait(10)
        return True, 'late'

    queue = WorkQueue(runner, max_pending=4)
    running = queue.submit(Job(None, 'running'))
    assert started.wait(10)
    queued = queue.submit(Job(None, 'queued'))
    assert queue.close(grace_s=0.05) == 2
    assert (running.ok, queued.ok) == (False, False)
    assert 'did not finish in time' in running.value and 'was not run' in queued.value
    with pytest.raises(ShuttingDown):
        queue.submit(Job(None, 'after'))
    gate.set()
    assert queue.join(10)
    assert running.value != 'late'   # answered once: the late result is dropped


def test_a_runner_that_raises_still_answers():
    queue = WorkQueue(lambda job: 1 / 0, max_pending=1)
    job = queue.submit(Job(None, 'x'))
    assert job.wait(10) and job.ok is False and 'ZeroDivisionError' in job.value
    queue.close(0)
