"""
Benchmark the ROS side: PointCloud2 conversions and the service overhead over the model.

    python -m pinpoint3d_ros.benchmark                 # print figures
    python -m pinpoint3d_ros.benchmark --write docs/benchmarks.md

Conversion speed is bytes of PointCloud2 data per second. The service overhead is the client's
round trip minus the model's own decode time reported in the response, for one click on a
cached encoding: message conversion, labelled cloud and objects construction, publishing,
serialisation and DDS transfer (shared-memory profile from tools/env.sh).
"""

import argparse
import os
import platform
import statistics
import sys
import time

import numpy as np
from pinpoint3d_ros import conversions
from std_msgs.msg import Header

SECTION = '## ROS transport and conversions'


def _median_ms(fn, repeat):
    """Return the median wall time of fn() in milliseconds (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def _layouts(n, rng):
    """Return {name: PointCloud2}: RGB-D style xyz+rgb and a padded LiDAR style layout."""
    pts = rng.normal(size=(n, 3)).astype(np.float32)
    cols = rng.integers(0, 256, size=(n, 3)).astype(np.uint8)
    rgbd = conversions.arrays_to_cloud(Header(frame_id='camera'), pts, cols)
    # Ouster/Velodyne-like: x y z pad intensity(f4) ring(u2) pad.. t(u4), point_step 32
    rec = np.zeros(n, dtype=np.dtype({
        'names': ['x', 'y', 'z', 'intensity', 'ring', 't'],
        'formats': ['<f4', '<f4', '<f4', '<f4', '<u2', '<u4'],
        'offsets': [0, 4, 8, 16, 20, 24], 'itemsize': 32}))
    for i, k in enumerate('xyz'):
        rec[k] = pts[:, i]
    rec['intensity'] = rng.random(n)
    lidar = conversions.arrays_to_cloud(Header(frame_id='lidar'), pts)
    lidar.fields = conversions.make_fields([
        ('x', 7, 0), ('y', 7, 4), ('z', 7, 8), ('intensity', 7, 16), ('ring', 4, 20),
        ('t', 6, 24)])
    lidar.point_step, lidar.row_step = 32, 32 * n
    lidar.data = rec.tobytes()
    return {'xyz+rgb (16 B/pt)': rgbd, 'LiDAR xyz+i+ring+t, padded (32 B/pt)': lidar}


def conversion_figures(sizes, repeat):
    """Return rows (layout, n, read ms, read GB/s, read+copy ms, read+copy GB/s)."""
    rng = np.random.default_rng(0)
    rows = []
    for n in sizes:
        for name, msg in _layouts(n, rng).items():
            nbytes = len(msg.data)
            read = _median_ms(lambda: conversions.cloud_to_arrays(msg), repeat)

            def read_copy():
                out = conversions.cloud_to_arrays(msg)
                np.ascontiguousarray(out.points)

            copy = _median_ms(read_copy, repeat)
            rows.append((name, n, read, nbytes / read / 1e6, copy, nbytes / copy / 1e6))
    return rows


def labelled_figures(sizes, repeat):
    """Return rows (n, colours+cloud ms, GB/s of output, objects message ms)."""
    from pinpoint3d_ros.node import region_messages
    rng = np.random.default_rng(1)
    rows = []
    for n in sizes:
        pts = rng.normal(size=(n, 3)).astype(np.float32)
        obj = rng.integers(0, 4, size=n).astype(np.uint32)
        part = np.where(obj > 0, rng.integers(0, 3, size=n), 0).astype(np.uint32)
        header = Header(frame_id='camera')

        def build():
            colors = conversions.label_rgb(obj, part)
            return conversions.labeled_cloud(header, pts, obj, part, colors)

        ms = _median_ms(build, repeat)
        nbytes = len(build().data)
        objects_ms = _median_ms(
            lambda: region_messages(conversions.summarise(pts, obj, part)), repeat)
        rows.append((n, ms, nbytes / ms / 1e6, objects_ms))
    return rows


def service_figures(n, calls, checkpoint):
    """Start the node, call ClickSegment ``calls`` times on a cached encoding of n points."""
    from pinpoint3d.msg import Click
    from pinpoint3d.srv import ClickSegment
    from pinpoint3d_ros.testing import Client, fresh_domain_id, Process
    from sensor_msgs.msg import PointCloud2
    import tempfile
    domain = fresh_domain_id()
    args = ['--ros-args', '-p', f'max_points:={n}']
    if checkpoint:   # an empty override would not parse; '' is the default anyway
        args += ['-p', f'checkpoint:={checkpoint}']
    log = os.path.join(tempfile.mkdtemp(prefix='pinpoint3d_bench_'), 'node.log')
    node = Process('pinpoint3d_ros.node', args, domain_id=domain, log_path=log)
    client = Client(domain, 'pinpoint3d_benchmark')
    try:
        srv = client.node.create_client(ClickSegment, '/pinpoint3d_node/click_segment')
        if not srv.wait_for_service(timeout_sec=120):
            raise RuntimeError(f'node did not come up:\n{node.log()}')
        pub = client.node.create_publisher(PointCloud2, '/points', 1)
        rng = np.random.default_rng(2)
        pts = np.r_[rng.uniform([-3, -3, 0], [3, 3, 0.02], size=(n // 2, 3)),
                    rng.uniform([-0.5, -0.5, 0], [0.5, 0.5, 1.0], size=(n - n // 2, 3))]
        pts = pts.astype(np.float32)
        cloud = conversions.arrays_to_cloud(
            Header(frame_id='map'), pts, rng.integers(0, 256, size=(n, 3)).astype(np.uint8))
        client.spin_until(lambda: pub.get_subscription_count() > 0, 10)

        def call(reset, k):
            req = ClickSegment.Request()
            req.interaction_id = 'benchmark'
            req.reset = reset
            c = Click(object_id=1, part_id=0, positive=True)
            c.position.x, c.position.y, c.position.z = (float(v) for v in pts[-1 - k])
            req.clicks = [c]
            t0 = time.perf_counter()
            resp = client.call(srv, req, timeout=300)
            return resp, (time.perf_counter() - t0) * 1e3

        for _ in range(100):
            pub.publish(cloud)
            client.executor.spin_once(timeout_sec=0.1)
            first, first_ms = call(True, 0)
            if 'no cloud received yet' not in first.message:
                break
        if not first.success:
            raise RuntimeError(first.message)
        rtts, decodes = [], []
        for k in range(1, calls + 1):
            resp, ms = call(False, k % 50)
            if not resp.success:
                raise RuntimeError(resp.message)
            rtts.append(ms)
            decodes.append(resp.decode_ms)
        overhead = [r - d for r, d in zip(rtts, decodes)]
        return {'points': n, 'calls': calls, 'first_call_ms': first_ms,
                'encode_ms': first.encode_ms, 'rtt_ms': statistics.median(rtts),
                'decode_ms': statistics.median(decodes),
                'overhead_ms': statistics.median(overhead), 'overhead_max_ms': max(overhead),
                'weights': 'untrained' if 'UNTRAINED' in first.message else checkpoint,
                'response_mb': (len(first.labeled_cloud.data)
                                + sum(4 * len(o.indices) for o in first.objects)) / 1e6}
    finally:
        client.close()
        node.stop()


def render(conv_rows, label_rows, service):
    """Return the markdown section."""
    lines = [SECTION, '',
             f'Measured by `python -m pinpoint3d_ros.benchmark` on {platform.machine()}, '
             f'{os.cpu_count()} CPU cores (shared), Python {platform.python_version()}, '
             f'{time.strftime("%Y-%m-%d")}, load average {os.getloadavg()[0]:.1f} (other '
             'jobs running; figures vary by 2x between runs). Medians. Targets: conversions '
             '>= 1 GB/s, service overhead <= 20 ms at 100k points.', '',
             '### PointCloud2 -> numpy (`conversions.cloud_to_arrays`)', '',
             '"read" returns x/y/z as a strided view of the message buffer (no copy) plus '
             'colours/intensity; "read + copy" also makes the (N, 3) array contiguous, '
             'which the model needs anyway.', '',
             '| layout | points | read ms | read GB/s | read + copy ms | read + copy GB/s |',
             '|---|---:|---:|---:|---:|---:|']
    for name, n, r, rg, c, cg in conv_rows:
        lines.append(f'| {name} | {n:,} | {r:.2f} | {rg:.1f} | {c:.2f} | {cg:.1f} |')
    lines += ['', '### Labelled cloud and objects message', '',
              '| points | colours + labelled PointCloud2 ms | output GB/s | objects message '
              '(indices, centroids, boxes; 3 objects x 2 parts) ms |', '|---:|---:|---:|---:|']
    for n, ms, gb, obj_ms in label_rows:
        lines.append(f'| {n:,} | {ms:.2f} | {gb:.2f} | {obj_ms:.2f} |')
    if service:
        s = service
        lines += ['', '### Service round trip (`~/click_segment`, node in another process)', '',
                  f"{s['points']:,} points, {s['calls']} calls, one click each on the cached "
                  f"encoding, weights: {s['weights']}; response {s['response_mb']:.1f} MB "
                  '(labelled cloud + indices); Fast DDS shared-memory profile.', '',
                  '| round trip ms | model decode ms | overhead ms (median) | overhead ms (max) '
                  '| first call (encode) ms |', '|---:|---:|---:|---:|---:|',
                  f"| {s['rtt_ms']:.1f} | {s['decode_ms']:.1f} | {s['overhead_ms']:.1f} | "
                  f"{s['overhead_max_ms']:.1f} | {s['first_call_ms']:.0f} "
                  f"({s['encode_ms']:.0f}) |"]
    return '\n'.join(lines) + '\n'


def write_section(path, text):
    """Replace (or append) this module's section in a shared markdown file."""
    old = open(path).read() if os.path.isfile(path) else '# Benchmarks\n'
    start = old.find(SECTION)
    if start < 0:
        new = old.rstrip('\n') + '\n\n' + text
    else:
        end = old.find('\n## ', start + len(SECTION))
        new = old[:start] + text + (old[end + 1:] if end >= 0 else '')
    with open(path, 'w') as f:
        f.write(new)


def main(argv=None):
    """Run the benchmarks, print the markdown, optionally write it into a file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--sizes', type=int, nargs='+', default=[100000, 300000])
    parser.add_argument('--repeat', type=int, default=20)
    parser.add_argument('--calls', type=int, default=20, help='service calls (0: skip)')
    parser.add_argument('--service-points', type=int, default=100000)
    parser.add_argument('--checkpoint', default='',
                        help="node checkpoint ('' = shipped weights, 'untrained' = random)")
    parser.add_argument('--write', help='markdown file whose ROS section is replaced')
    args = parser.parse_args(argv)
    conv_rows = conversion_figures(args.sizes, args.repeat)
    label_rows = labelled_figures(args.sizes, args.repeat)
    service = None
    if args.calls:
        service = service_figures(args.service_points, args.calls, args.checkpoint)
    text = render(conv_rows, label_rows, service)
    print(text)
    if args.write:
        write_section(args.write, text)
        print(f'wrote the section into {args.write}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
