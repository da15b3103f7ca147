"""
Statistics that compare synthetic scenes with real scans (the table in docs/data.md).

Run ``python -m pinpoint3d_core.synth.stats`` to recompute every row of that table.
"""

import argparse
import glob
import os

import numpy as np
from pinpoint3d_core.scene import load_scene, real_data_dir
from scipy.spatial import cKDTree


# Measured on real scans that cannot be shipped (shared/notes/real-data-stats.md beside the
# checkout).
REFERENCE = {
    'ScanNet scene0000_00 (reference)': {
        'points': 81369, 'nn_median_cm': 2.9, 'nn_p90_cm': 4.3, 'voxels_5cm': 53545,
        'objects': 67, 'points_per_object_median': 521, 'color_mean': [122, 112, 95],
        'color_std': 57},
    'SemanticKITTI 00/000000 HDL-64E (reference)': {
        'points': 123389, 'nn_median_cm': 3.8, 'nn_p90_cm': 15.1, 'voxels_5cm': 94444,
        'range_median_m': 11.2, 'range_max_m': 80.0, 'intensity_mean': 0.28},
}


def scene_stats(scene):
    """Return a dict of density, label and appearance statistics of one scene."""
    xyz = scene.coords.astype(np.float64)
    d, _ = cKDTree(xyz).query(xyz, k=2)
    nn = d[:, 1] * 100
    obj = scene.object_ids[scene.object_ids > 0]
    per_obj = np.bincount(obj)[np.unique(obj)] if len(obj) else np.zeros(1)
    out = {'points': len(xyz), 'nn_median_cm': round(float(np.median(nn)), 2),
           'nn_p90_cm': round(float(np.percentile(nn, 90)), 2),
           'voxels_5cm': len(np.unique(np.floor(xyz / 0.05).astype(np.int64), axis=0)),
           'objects': int(len(np.unique(obj))),
           'points_per_object_median': int(np.median(per_obj)),
           'parts': int(len(np.unique(scene.part_ids[scene.part_ids > 0])))}
    if scene.colors is not None:
        c = scene.colors.astype(np.float64)
        out['color_mean'] = [int(round(v)) for v in c.mean(0)]
        out['color_std'] = int(round(float(c.std(0).mean())))
    if scene.intensity is not None:
        r = np.hypot(xyz[:, 0], xyz[:, 1])
        out['range_median_m'] = round(float(np.median(r)), 1)
        out['range_max_m'] = round(float(r.max()), 1)
        out['intensity_mean'] = round(float(scene.intensity.mean()), 3)
    return out


def collect(seeds=3, real_dir=None):
    """Statistics rows: references, real scans found in ``real_dir``, synthetic averages."""
    real_dir = real_dir or real_data_dir()
    from pinpoint3d_core.synth import generate_scene
    rows = dict(REFERENCE)
    for path in sorted(glob.glob(os.path.join(real_dir, '*.npz'))):
        rows[os.path.basename(path)] = scene_stats(load_scene(path))
    configs = [('indoor', 'scan', 'normal', 64), ('indoor', 'single', 'normal', 64),
               ('indoor', 'scan', 'small', 64), ('lidar', 'scan', 'normal', 64),
               ('lidar', 'scan', 'normal', 32), ('lidar', 'scan', 'small', 64)]
    for kind, mode, size, beams in configs:
        stats = [scene_stats(generate_scene(kind, seed=s, mode=mode, size=size, beams=beams))
                 for s in range(seeds)]
        name = f'synth {kind} {mode} {size}' + (f' {beams}-beam' if kind == 'lidar' else '')
        rows[name + f' (mean of {seeds})'] = _mean_rows(stats)
    return rows


def _mean_rows(rows):
    out = {}
    for key in rows[0]:
        vals = np.array([r[key] for r in rows], float)
        m = vals.mean(0)
        out[key] = [int(round(v)) for v in m] if m.ndim else (
            round(float(m), 2) if isinstance(rows[0][key], float) else int(round(m)))
    return out


INDOOR_COLS = ('points', 'nn_median_cm', 'nn_p90_cm', 'voxels_5cm', 'objects',
               'points_per_object_median', 'color_mean', 'color_std')
LIDAR_COLS = ('points', 'nn_median_cm', 'nn_p90_cm', 'voxels_5cm', 'objects',
              'range_median_m', 'range_max_m', 'intensity_mean')


def markdown(rows):
    """Two markdown tables (RGB-D rows, LiDAR rows)."""
    lines = []
    for cols, pick in ((INDOOR_COLS, lambda r: 'intensity_mean' not in r),
                       (LIDAR_COLS, lambda r: 'intensity_mean' in r)):
        lines.append('| scene | ' + ' | '.join(cols) + ' |')
        lines.append('|---' * (len(cols) + 1) + '|')
        for name, r in rows.items():
            if pick(r):
                cells = [_fmt(r.get(c, '')) for c in cols]
                lines.append(f'| {name} | ' + ' | '.join(cells) + ' |')
        lines.append('')
    return '\n'.join(lines)


def _fmt(v):
    if isinstance(v, list):
        return '(' + ', '.join(str(x) for x in v) + ')'
    if isinstance(v, int) and v >= 10000:
        return f'{v:,}'
    return str(v)


def main(argv=None):
    """Print the real-vs-synthetic statistics tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seeds', type=int, default=3, help='synthetic scenes per row')
    parser.add_argument('--real-dir', default=None, help='folder of real .npz scans')
    args = parser.parse_args(argv)
    print(markdown(collect(args.seeds, args.real_dir)))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
