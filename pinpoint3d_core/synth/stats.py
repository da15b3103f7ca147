"""
Statistics that compare synthetic scenes with real scans (the table in docs/data.md).

Run ``python -m pinpoint3d_core.synth.stats`` to recompute every row of that table, and
``python -m pinpoint3d_core.synth.stats --tabletop`` for its tabletop table (real mOSD scans
from ``../shared/devdata`` against generated tabletop frames).
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
    parser.add_argument('--tabletop', action='store_true',
                        help='the tabletop table instead: real mOSD scans (../shared/devdata) '
                             'against synthetic tabletop scenes')
    args = parser.parse_args(argv)
    if args.tabletop:
        real = sorted(glob.glob(os.path.join(args.real_dir, '*.npz'))) if args.real_dir else None
        print(markdown_tabletop(collect_tabletop(args.seeds, real)))
        return 0
    print(markdown(collect(args.seeds, args.real_dir)))
    return 0


# ---------------------------------------------------------------- tabletop (RGB-D, camera frame)

# Intrinsics of the real mOSD scans (Kinect / Xtion 640x480; the points lie exactly on this
# pixel grid).
KINECT_INTRINSICS = (525.0, 525.0, 319.5, 239.5)
NOT_TABLETOP = ('floor', 'wall')   # synthetic stuff the real scans crop away
TABLETOP_COLS = ('points', 'depth_median_m', 'nn_median_mm', 'nn_p90_mm', 'noise_mm',
                 'isolated_pct', 'holes_pct', 'holes_per_object_pct', 'objects',
                 'points_per_object_median', 'object_height_cm', 'object_extent_cm',
                 'table_color_mean', 'table_color_std',
                 'object_color_mean', 'object_color_std')


def _tabletop_region(scene):
    """Mask of table and object points (synthetic floor and wall excluded)."""
    drop = [int(k) for k, r in scene.meta.get('objects', {}).items()
            if r.get('category') in NOT_TABLETOP]
    return ~np.isin(scene.object_ids, drop)


def _table_ids(scene):
    from pinpoint3d_core.scene import stuff_ids
    objs = scene.meta.get('objects', {})
    return [i for i in stuff_ids(scene)
            if objs.get(str(i), {}).get('category', 'table') not in NOT_TABLETOP]


def plane_noise_mm(xyz, rng, depth=(0.7, 0.9), radius=0.012, samples=300):
    """Median residual std (mm) of local planes fitted to 2.4 cm patches of a flat surface."""
    sel = xyz[(xyz[:, 2] > depth[0]) & (xyz[:, 2] < depth[1])]
    if len(sel) < 100:
        return float('nan')
    tree = cKDTree(sel)
    out = []
    for i in rng.choice(len(sel), min(samples, len(sel)), replace=False):
        nb = sel[tree.query_ball_point(sel[i], radius)]
        if len(nb) < 30:
            continue
        c = nb - nb.mean(0)
        out.append(np.linalg.svd(c, full_matrices=False)[1][-1] / np.sqrt(len(nb)))
    return round(float(np.median(out) * 1000), 2) if out else float('nan')


def image_holes_pct(xyz, region, intrinsics):
    """
    Share (%) of pixels without a return inside the table-and-objects part of the image.

    Per image row, the span from the first to the last ``region`` pixel; a pixel of the span
    is a hole when no point at all (region or not: floor, wall) falls on it.
    """
    fx, fy, cx, cy = intrinsics
    u = np.round(xyz[:, 0] / xyz[:, 2] * fx + cx).astype(np.int64)
    v = np.round(xyz[:, 1] / xyz[:, 2] * fy + cy).astype(np.int64)
    v -= v.min()
    u -= u.min()
    occ = np.zeros((v.max() + 1, u.max() + 1), bool)
    occ[v, u] = True
    reg = np.zeros_like(occ)
    reg[v[region], u[region]] = True
    rows = reg.any(1)
    first = np.argmax(reg, 1)
    last = reg.shape[1] - 1 - np.argmax(reg[:, ::-1], 1)
    cols = np.arange(reg.shape[1])[None]
    span = rows[:, None] & (cols >= first[:, None]) & (cols <= last[:, None])
    return round(float(100 * (span & ~occ).sum() / span.sum()), 2)


def tabletop_stats(scene, intrinsics=None, seed=0):
    """Density, noise, holes, object sizes and colours of one tabletop scan (camera frame)."""
    rng = np.random.default_rng(seed)
    sensor = scene.meta.get('sensor')
    if intrinsics is None:
        intrinsics = (tuple(sensor[k] for k in ('fx', 'fy', 'cx', 'cy'))
                      if isinstance(sensor, dict) and 'fx' in sensor else KINECT_INTRINSICS)
    region = _tabletop_region(scene)
    xyz = scene.coords[region].astype(np.float64)
    obj_ids = scene.object_ids[region]
    d, _ = cKDTree(xyz).query(xyz, k=2)
    nn = d[:, 1] * 1000
    pixel_mm = xyz[:, 2] / intrinsics[0] * 1000   # spacing of neighbouring pixels
    table = np.isin(obj_ids, _table_ids(scene))
    up = np.asarray(scene.meta['table_up'], float)
    centre = np.asarray(scene.meta['table_centre'], float)
    e1 = np.cross(up, [1.0, 0, 0])
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(up, e1)
    stuff = set(_table_ids(scene)) | {0}
    heights, extents, counts = [], [], []
    for k in np.unique(obj_ids):
        if int(k) in stuff:
            continue
        p = xyz[obj_ids == k] - centre
        counts.append(len(p))
        heights.append(np.percentile(p @ up, 99.5) * 100)
        flat = np.stack([p @ e1, p @ e2], 1)
        flat -= flat.mean(0)
        axes = np.linalg.svd(flat, full_matrices=False)[2]
        proj = flat @ axes.T
        extents.append(np.ptp(np.percentile(proj, [0.5, 99.5], axis=0), axis=0).max() * 100)
    out = {'points': int(region.sum()),
           'depth_median_m': round(float(np.median(xyz[:, 2])), 3),
           'nn_median_mm': round(float(np.median(nn)), 2),
           'nn_p90_mm': round(float(np.percentile(nn, 90)), 2),
           'noise_mm': plane_noise_mm(xyz[table], rng),
           # flying pixels: no neighbour within 3 pixel spacings
           'isolated_pct': round(float(100 * (nn > 3 * pixel_mm).mean()), 3),
           'holes_pct': image_holes_pct(scene.coords.astype(np.float64), region,
                                        intrinsics),
           'objects': len(counts),
           'points_per_object_median': int(np.median(counts)) if counts else 0,
           'object_height_cm': round(float(np.median(heights)), 1) if heights else 0.0,
           'object_extent_cm': round(float(np.median(extents)), 1) if extents else 0.0}
    out['holes_per_object_pct'] = round(out['holes_pct'] / max(len(counts), 1), 2)
    if scene.colors is not None:
        c = scene.colors[region].astype(np.float64)
        for name, sel in (('table', table), ('object', ~table & (obj_ids > 0))):
            if sel.any():
                out[f'{name}_color_mean'] = [int(round(x)) for x in c[sel].mean(0)]
                out[f'{name}_color_std'] = int(round(float(c[sel].std(0).mean())))
    return out


# Ranges (min, max) and means over the 45 real mOSD learn scans (Kinect/Xtion, camera frame),
# measured with tabletop_stats by ``python -m pinpoint3d_core.synth.stats --tabletop``;
# mOSD: Richtsfeld et al., IROS 2012, modified by S. Alexandrov, via PointCloudLibrary/data
# (research use, attribution). Tests check the synthetic scenes against these ranges.
TABLETOP_REAL = {
    'depth_median_m': (0.695, 0.839, 0.769), 'nn_median_mm': (1.35, 1.62, 1.48),
    'nn_p90_mm': (2.11, 2.64, 2.36), 'noise_mm': (0.72, 0.86, 0.80),
    'isolated_pct': (0.0, 0.003, 0.0006),
    'holes_pct': (0.23, 3.03, 1.48), 'holes_per_object_pct': (0.12, 1.51, 0.62),
    'objects': (2, 5, 2.49), 'points_per_object_median': (5272, 18460, 11121),
    'object_height_cm': (8.1, 25.8, 14.4), 'object_extent_cm': (7.9, 26.0, 17.6),
    'table_color_std': (10, 25, 17.2), 'object_color_std': (40, 59, 48.9),
}


def collect_tabletop(seeds=8, real_paths=None):
    """Rows for the tabletop table: real mOSD scans (mean, range) and synthetic scenes."""
    from pinpoint3d_core.synth import generate_scene
    if real_paths is None:
        from pinpoint3d_core.evaluation import realdev
        real_paths = realdev.family_paths('tabletop', 'all')
    rows = {}
    real = [tabletop_stats(load_scene(p)) for p in real_paths]
    if real:
        rows[f'mOSD learn, {len(real)} real scans'] = real
    for size in ('normal', 'small'):
        rows[f'synth tabletop {size}, seeds 0-{seeds - 1}'] = [
            tabletop_stats(generate_scene('tabletop', seed=s, size=size)) for s in range(seeds)]
    return rows


def markdown_tabletop(rows):
    """One markdown table: per column the mean and [min, max] over each row's scenes."""
    lines = ['| statistic | ' + ' | '.join(rows) + ' |', '|---' * (len(rows) + 1) + '|']
    for col in TABLETOP_COLS:
        cells = []
        for scenes in rows.values():
            vals = np.array([s[col] for s in scenes if col in s], float)
            if vals.ndim == 2:  # colours: per-channel mean
                cells.append('(' + ', '.join(str(int(round(v))) for v in vals.mean(0)) + ')')
            elif len(vals):
                fmt = ('{:,.0f}' if abs(vals.mean()) >= 100 else '{:.2f}')
                cells.append(f'{fmt.format(vals.mean())} '
                             f'[{fmt.format(vals.min())}, {fmt.format(vals.max())}]')
            else:
                cells.append('')
        lines.append(f'| {col} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines) + '\n'


if __name__ == '__main__':
    raise SystemExit(main())
