"""
Figures for docs/ros.md (interactions, back-pressure, shutdown), measured with real processes.

    python -m pinpoint3d_ros.node_figures          # prints a markdown summary

1. Round trip on a jittering live cloud: before each call a new scan of the same scene arrives
   (new stamp, 1 mm noise). An interaction that keeps its cloud keeps its encoding; one that
   demands the newest scan (cloud_newer_than) is re-encoded on every call.
2. Back-pressure: 16 simultaneous calls against max_queue 4; how many are segmented, how many
   answered busy, and how fast a busy answer comes.
3. Shutdown: SIGTERM with requests in flight; seconds from the signal to the process exit.
Bounded: a few hundred calls on loopback in a private ROS domain.
"""

import argparse
import os
import platform
import signal
import statistics
import sys
import tempfile
import time

import numpy as np
from pinpoint3d_ros import conversions
from std_msgs.msg import Header

NODE = '/pinpoint3d_node'


def scene(n, seed=0):
    """Return a floor and two boxes (metres), float32."""
    rng = np.random.default_rng(seed)
    floor = np.c_[rng.uniform(-2, 2, n // 2), rng.uniform(-2, 2, n // 2), np.zeros(n // 2)]
    box_a = rng.uniform([-0.5, -0.5, 0.0], [-0.2, -0.2, 0.3], size=(n // 4, 3))
    box_b = rng.uniform([0.2, 0.2, 0.0], [0.5, 0.6, 0.5], size=(n - n // 2 - n // 4, 3))
    return np.vstack([floor, box_a, box_b]).astype(np.float32)


def cloud_of(points, stamp_s):
    header = Header(frame_id='map')
    header.stamp.sec = int(stamp_s)
    return conversions.arrays_to_cloud(header, points)


def _start(params, log_dir):
    from pinpoint3d_ros.testing import Client, fresh_domain_id, Process
    domain = fresh_domain_id()
    args = ['--ros-args']
    for p in params:
        args += ['-p', p]
    node = Process('pinpoint3d_ros.node', args, domain_id=domain,
                   log_path=os.path.join(log_dir, f'node{time.monotonic_ns()}.log'))
    return node, Client(domain, 'pinpoint3d_figures')


def _request(key, position, object_id=1, reset=False, newer_than=None, cloud=None):
    from pinpoint3d.msg import Click
    from pinpoint3d.srv import ClickSegment
    req = ClickSegment.Request(interaction_id=key, reset=reset)
    c = Click(object_id=object_id, part_id=0, positive=True)
    c.position.x, c.position.y, c.position.z = (float(v) for v in position)
    req.clicks = [c]
    if newer_than is not None:
        req.cloud_newer_than.sec = int(newer_than)
    if cloud is not None:
        req.cloud = cloud
    return req


def jitter_figures(n, calls, log_dir):
    """Median round trip and encode time on a jittering cloud: cloud kept vs newest scan."""
    from pinpoint3d.srv import ClickSegment
    from sensor_msgs.msg import PointCloud2
    node, client = _start([f'max_points:={max(n, 1000)}'], log_dir)
    try:
        srv = client.node.create_client(ClickSegment, NODE + '/click_segment')
        if not srv.wait_for_service(timeout_sec=120):
            raise RuntimeError(node.log())
        pub = client.node.create_publisher(PointCloud2, '/points', 5)
        client.spin_until(lambda: pub.get_subscription_count() > 0, 10)
        base = scene(n)
        rng = np.random.default_rng(1)
        targets = np.flatnonzero(base[:, 2] > 0.05)
        stamp = [10]

        def publish_new_scan():
            stamp[0] += 1
            noisy = base + rng.normal(0, 0.001, base.shape).astype(np.float32)
            for _ in range(200):   # until the node holds it
                pub.publish(cloud_of(noisy, stamp[0]))
                client.executor.spin_once(timeout_sec=0.02)
                probe = client.call(srv, _request('probe', base[targets[0]], reset=True,
                                                  newer_than=stamp[0] - 1))
                if probe is not None and probe.success:
                    return
            raise RuntimeError('the node never received a scan')

        out = {}
        for mode in ('kept', 'newest'):
            publish_new_scan()
            first = client.call(srv, _request(mode, base[targets[0]], reset=True))
            if not first.success:
                raise RuntimeError(first.message)
            rtts, encodes = [], []
            for k in range(1, calls + 1):
                publish_new_scan()
                req = _request(mode, base[targets[k % len(targets)]],
                               newer_than=stamp[0] - 1 if mode == 'newest' else None)
                t0 = time.perf_counter()
                resp = client.call(srv, req, timeout=120)
                rtts.append((time.perf_counter() - t0) * 1e3)
                if not resp.success:
                    raise RuntimeError(resp.message)
                encodes.append(resp.encode_ms)
            out[mode] = (statistics.median(rtts), statistics.median(encodes))
        return out
    finally:
        client.close()
        node.stop()


def queue_figures(log_dir, clients=16, max_queue=4, n=60000):
    """16 simultaneous calls against max_queue 4: (segmented, busy, median busy answer ms)."""
    # Every call starts a new interaction on the latest (60k-point) cloud: a real encode each.
    from pinpoint3d.srv import ClickSegment
    node, client = _start([f'max_queue:={max_queue}'], log_dir)
    try:
        srvs = [client.node.create_client(ClickSegment, NODE + '/click_segment')
                for _ in range(clients)]
        if not all(s.wait_for_service(timeout_sec=120) for s in srvs):
            raise RuntimeError(node.log())
        from sensor_msgs.msg import PointCloud2
        pts = scene(n, seed=3)
        pub = client.node.create_publisher(PointCloud2, '/points', 5)
        client.spin_until(lambda: pub.get_subscription_count() > 0, 10)
        for _ in range(200):   # the requests then carry only their click, not the cloud
            pub.publish(cloud_of(pts, 5))
            probe = client.call(srvs[0], _request('probe', pts[-1], reset=True, newer_than=4))
            if probe is not None and probe.success:
                break
        sent = time.perf_counter()
        done_at = {}
        futures = [s.call_async(_request(f'q{k}', pts[-1 - k], reset=True))
                   for k, s in enumerate(srvs)]

        def all_done():
            for k, f in enumerate(futures):
                if f.done() and k not in done_at:
                    done_at[k] = time.perf_counter()
            return len(done_at) == clients
        client.spin_until(all_done, 300)
        answers = [f.result() for f in futures]
        busy = [k for k, a in enumerate(answers) if not a.success]
        busy_ms = [(done_at[k] - sent) * 1e3 for k in busy]
        return (clients - len(busy), len(busy),
                statistics.median(busy_ms) if busy_ms else float('nan'))
    finally:
        client.close()
        node.stop()


def shutdown_figures(log_dir, repeats=3, n=150000):
    """Seconds from SIGTERM (3 requests in flight) to exit; every answer is counted."""
    from pinpoint3d.srv import ClickSegment
    times, answered = [], 0
    for _ in range(repeats):
        node, client = _start([], log_dir)
        try:
            srv = client.node.create_client(ClickSegment, NODE + '/click_segment')
            if not srv.wait_for_service(timeout_sec=120):
                raise RuntimeError(node.log())
            pts = scene(n, seed=5)
            cloud = cloud_of(pts, 6)
            futures = [srv.call_async(_request('', pts[-1 - k], reset=True, cloud=cloud))
                       for k in range(3)]
            client.spin_until(lambda: False, 0.5)
            t0 = time.monotonic()
            node.proc.send_signal(signal.SIGTERM)
            client.spin_until(lambda: all(f.done() for f in futures), 30)
            node.proc.wait(timeout=60)
            times.append(time.monotonic() - t0)
            answered += sum(f.done() for f in futures)
        finally:
            client.close()
            node.stop()
    return times, answered, 3 * repeats


def main(argv=None):
    """Measure and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument('--points', type=int, default=50000)
    parser.add_argument('--calls', type=int, default=15)
    args = parser.parse_args(argv)
    log_dir = tempfile.mkdtemp(prefix='pinpoint3d_figures_')
    jitter = jitter_figures(args.points, args.calls, log_dir)
    ok, busy, busy_ms = queue_figures(log_dir)
    stops, answered, sent = shutdown_figures(log_dir)
    print(f'Measured on {platform.machine()}, {os.cpu_count()} CPU cores (shared, no GPU), '
          f'load average {os.getloadavg()[0]:.1f}, {time.strftime("%Y-%m-%d")}; shipped '
          'weights; node in its own process, loopback.\n')
    print('| figure | value |\n|---|---|')
    for mode, label in (('kept', 'interaction keeps its cloud'),
                        ('newest', 'cloud_newer_than: newest scan, re-encoded')):
        rtt, enc = jitter[mode]
        print(f'| jittering {args.points:,}-point cloud, {label} | round trip {rtt:.0f} ms '
              f'(encode {enc:.0f} ms), median of {args.calls} |')
    print(f'| 16 simultaneous calls, max_queue 4 | {ok} segmented, {busy} answered busy '
          f'(busy answers arrive {busy_ms:.0f} ms after sending, median) |')
    print(f'| SIGTERM with 3 requests in flight (150k points) | exit after '
          f'{statistics.median(stops):.2f} s median, {max(stops):.2f} s max '
          f'({len(stops)} runs); {answered}/{sent} requests answered |')
    return 0


if __name__ == '__main__':
    sys.exit(main())
