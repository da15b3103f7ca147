"""
Speed of the synthetic data engine: seconds per scene and points per scene.

``run_benchmark(repeats=3) -> dict`` measures; ``main(argv=None)`` prints the figures
(``python -m pinpoint3d_core.benchmarks.synth``).
"""

import argparse
import time

import numpy as np

CONFIGS = (
    ('indoor scan normal', {'kind': 'indoor', 'mode': 'scan', 'size': 'normal'}),
    ('indoor single normal', {'kind': 'indoor', 'mode': 'single', 'size': 'normal'}),
    ('indoor scan small', {'kind': 'indoor', 'mode': 'scan', 'size': 'small'}),
    ('lidar 64-beam normal', {'kind': 'lidar', 'size': 'normal', 'beams': 64}),
    ('lidar 32-beam normal', {'kind': 'lidar', 'size': 'normal', 'beams': 32}),
    ('lidar 64-beam small', {'kind': 'lidar', 'size': 'small', 'beams': 64}),
    ('tabletop normal', {'kind': 'tabletop', 'size': 'normal'}),
    ('tabletop small', {'kind': 'tabletop', 'size': 'small'}),
)


def run_benchmark(repeats=3, seed=1000):
    """Time generate_scene per configuration; returns {name: {seconds, points, ...}}."""
    from pinpoint3d_core.synth import generate_scene
    generate_scene('indoor', seed=seed, size='small')  # warm caches and imports
    results = {}
    for name, opts in CONFIGS:
        times, points = [], []
        for i in range(repeats):
            t0 = time.perf_counter()
            scene = generate_scene(seed=seed + i, **opts)
            times.append(time.perf_counter() - t0)
            points.append(len(scene))
        results[name] = {'seconds_median': float(np.median(times)),
                         'seconds_max': float(np.max(times)),
                         'points_median': int(np.median(points)),
                         'repeats': repeats}
    return results


def main(argv=None):
    """Print seconds per scene for each configuration."""
    parser = argparse.ArgumentParser(description='synthetic scene generation speed')
    parser.add_argument('--repeats', type=int, default=3, help='scenes per configuration')
    args = parser.parse_args(argv)
    results = run_benchmark(args.repeats)
    print(f"{'configuration':24s} {'s/scene (median)':>17s} {'max':>7s} {'points':>9s}")
    for name, r in results.items():
        print(f"{name:24s} {r['seconds_median']:17.3f} {r['seconds_max']:7.3f} "
              f"{r['points_median']:9,d}")
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
