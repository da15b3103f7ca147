"""
Helpers for tests and benchmarks that run real ROS processes.

Each user gets a private ROS domain, nodes are started as separate processes with the whole
environment (the ROS wheels need LD_LIBRARY_PATH as set at interpreter start) and stopped with
SIGINT, then kill after a timeout. Clients run in their own rclpy Context, so several can live
in one test process without touching the global one.
"""

import itertools
import os
import signal
import subprocess
import sys
import time

import numpy as np

_counter = itertools.count()


def fresh_domain_id():
    """Return a ROS_DOMAIN_ID in 1..101 that differs between calls and between processes."""
    base = os.getpid() * 37 + int(time.time())
    return (base + 13 * next(_counter)) % 101 + 1


def ros_env(domain_id):
    """Return os.environ with ROS_DOMAIN_ID set and discovery kept on this machine."""
    env = dict(os.environ)
    env['ROS_DOMAIN_ID'] = str(domain_id)
    env['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    env['PYTHONUNBUFFERED'] = '1'
    return env


class Process:
    """A child process running a python module, stopped with SIGINT, then killed."""

    def __init__(self, module, args=(), domain_id=None, log_path=None, env=None, cwd=None):
        self.log_path = log_path
        self._log = open(log_path, 'wb') if log_path else subprocess.DEVNULL
        environment = ros_env(domain_id)
        environment.update(env or {})   # e.g. paths of a generated interface package
        self.proc = subprocess.Popen([sys.executable, '-m', module, *args],
                                     env=environment, stdout=self._log,
                                     stderr=subprocess.STDOUT, cwd=cwd)

    def alive(self):
        """Return True while the child runs."""
        return self.proc.poll() is None

    def log(self):
        """Return the child's output so far (when logging to a file)."""
        if not self.log_path:
            return ''
        with open(self.log_path, 'rb') as f:
            return f.read().decode(errors='replace')

    def stop(self, timeout=10.0):
        """Send SIGINT, wait, kill as a fallback; returns the exit code."""
        if self.alive():
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=timeout)
        if self._log is not subprocess.DEVNULL:
            self._log.close()
        return self.proc.returncode


class Client:
    """An rclpy node in a private Context and domain, with blocking helpers."""

    def __init__(self, domain_id, name='pinpoint3d_test_client'):
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        self.rclpy = rclpy
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)

    def spin_until(self, predicate, timeout):
        """Spin until predicate() is true; returns its last value."""
        deadline = time.monotonic() + timeout
        while not predicate() and time.monotonic() < deadline:
            self.executor.spin_once(timeout_sec=0.05)
        return predicate()

    def call(self, client, request, timeout=60.0):
        """Call a service and wait for the response (None on timeout)."""
        future = client.call_async(request)
        self.spin_until(future.done, timeout)
        return future.result() if future.done() else None

    def collector(self, msg_type, topic, qos=10):
        """Subscribe and return the list the messages are appended to."""
        received = []
        self.node.create_subscription(msg_type, topic, received.append, qos)
        return received

    def close(self):
        """Destroy the node and shut the private context down."""
        self.executor.shutdown()
        self.node.destroy_node()
        self.rclpy.try_shutdown(context=self.context)


def floor_with_two_boxes(n: int = 3000, seed: int = 0) -> np.ndarray:
    """Return (n, 3) float32 points: a floor with two boxes on it (metres), for node tests."""
    rng = np.random.default_rng(seed)
    floor = np.c_[rng.uniform(-1, 1, n // 2), rng.uniform(-1, 1, n // 2), np.zeros(n // 2)]
    box_a = rng.uniform([-0.5, -0.5, 0.0], [-0.2, -0.2, 0.3], size=(n // 4, 3))
    box_b = rng.uniform([0.2, 0.2, 0.0], [0.5, 0.6, 0.5], size=(n - n // 2 - n // 4, 3))
    return np.vstack([floor, box_a, box_b]).astype(np.float32)
