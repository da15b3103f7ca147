"""
Geodesic masks: encode broken down by stage and per-click decode (`pinpoint3d bench geodesic`).

"Encode" is everything ``Segmenter.start`` does before the first click: the surface graph
(voxel means, kNN links, normals, support planes, link features), then the link prices (the
boundary network's voxel embeddings and link MLP for learned weights, or the handcrafted
costs), plus the click decoder's encoding where parts come from it. "Decode" is one
``predict`` after adding a click. Two cases:

- ``tabletop``: real mOSD scans (about 170k-210k points, camera optical frame) when the shared
  data folder sits beside the checkout, else a synthetic stand-in (one 640x480 frame of the
  synthetic tabletop generator, about 150k-290k points; the table says which). The tabletop
  preset's weights when they are installed, else a BoundaryNet with random weights (the same
  cost per voxel and link).
- ``indoor``: the benchmark room (``toyscenes.benchmark_room``) at 100k points with the indoor
  preset (shipped weights; parts from the click decoder, which every click with a part runs).

Every case runs in its own niced subprocess; medians over repeated encodes, decode median and
p90 over the clicks of a scripted user. Wall and process-CPU milliseconds are both printed:
on a shared machine the wall time grows with the load, the CPU time much less.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Dict, List, Optional

import numpy as np

# One scan per mOSD group (boxes, stacked boxes, occluded, cylinders), 178k-209k points.
DEFAULT_SCANS = (7, 22, 29, 41)
GRAPH_STAGES = ('voxel_means', 'knn', 'normals', 'planes', 'features')


def _cpu_model() -> str:
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return 'unknown CPU'


def _clock():
    return time.perf_counter(), time.process_time()


def _since(start):
    wall, cpu = _clock()
    return (wall - start[0]) * 1e3, (cpu - start[1]) * 1e3


def tabletop_scene(scan: int) -> Dict:
    """
    Return a real mOSD scan (points, colors, object_ids, name), or the synthetic stand-in.

    The supporting table (and floor, wall: "stuff") reads 0, as the background a user clicks
    negatively.
    """
    from pinpoint3d_core.evaluation.realdev import shared_dir
    path = os.path.join(shared_dir(), 'devdata', 'mosd', f'mosd_learn{scan}.npz')
    if os.path.isfile(path):
        from pinpoint3d_core.scene import load_scene
        scene = load_scene(path)
        stuff = set(scene.meta.get('stuff_ids', []))
        ids = np.where(np.isin(scene.object_ids, list(stuff)), 0, scene.object_ids)
        return {'points': np.asarray(scene.coords, dtype=np.float64), 'colors': scene.colors,
                'object_ids': ids, 'name': f'mosd_learn{scan} (real)'}
    from pinpoint3d_core.synth import generate_scene
    scene = generate_scene('tabletop', seed=scan)
    stuff = [int(k) for k, v in scene.meta.get('objects', {}).items() if v.get('stuff')]
    ids = np.where(np.isin(scene.object_ids, stuff), 0, scene.object_ids)
    return {'points': np.asarray(scene.coords, dtype=np.float64), 'colors': scene.colors,
            'object_ids': ids, 'name': f'synthetic stand-in (synth tabletop frame, seed {scan})'}


def tabletop_segmenter(boundary: Optional[str] = None):
    """Return (Segmenter, what it is): the preset's weights, a checkpoint, or random weights."""
    import torch
    from pinpoint3d_core.errors import CheckpointError
    from pinpoint3d_core.model.boundary import BoundaryConfig, BoundaryNet
    from pinpoint3d_core.presets import get_preset, preset_weights
    from pinpoint3d_core.session import Segmenter
    if boundary:
        return Segmenter.load(boundary, device='cpu'), f'boundary net from {boundary}'
    try:
        return Segmenter.load(preset_weights('tabletop'), device='cpu'), 'tabletop weights'
    except CheckpointError:
        pass
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = BoundaryNet(BoundaryConfig())
    seg = Segmenter(None, 'cpu', {'untrained': True}, untrained=True, source='random',
                    inference=get_preset('tabletop').baseline, boundary=net)
    return seg, 'random BoundaryNet weights (tabletop weights not installed; same cost)'


def encode_stages(seg, points, colors) -> Dict[str, tuple]:
    """Run the encode's stages one by one; returns name -> (wall ms, CPU ms)."""
    import torch
    from pinpoint3d_core.inference.geodesic import handcrafted_link_costs, learned_link_costs
    from pinpoint3d_core.model.boundary import voxel_grid, voxel_inputs
    settings = seg.inference
    start = _clock()
    surface = settings.surface_graph(points, colors)
    stages = dict(surface.timings)
    stages['graph'] = _since(start)
    if seg.boundary is not None:
        with torch.inference_mode():
            t = _clock()
            emb = seg.boundary.embeddings(voxel_grid(surface), voxel_inputs(surface))
            stages['boundary_net'] = _since(t)
            t = _clock()
            learned_link_costs(settings, surface, seg.boundary.pair_probability(surface, emb))
            stages['link_mlp'] = _since(t)
    else:
        t = _clock()
        handcrafted_link_costs(settings, surface)
        stages['link_costs'] = _since(t)
    if settings.geodesic_parts == 'decoder' and seg.model is not None:
        from pinpoint3d_core.session import Session
        t = _clock()
        Session(seg, points, colors, settings.replace(object_masks='decoder'))
        stages['decoder_encode'] = _since(t)
    stages['voxels'] = (surface.size, len(surface.links.src))
    return stages


def click_script(session, object_ids: np.ndarray, clicks: int, seed: int,
                 part_ids: Optional[np.ndarray] = None) -> List[float]:
    """
    Click like a user and time each predict: one click per object, then corrections.

    A correction clicks a random wrongly labelled point (positive for an object's point,
    negative for a background point). With ``part_ids`` every positive click carries its
    point's part, so the decoder's part stage runs too. Returns [(decode wall ms, CPU ms)].
    """
    from pinpoint3d_core.session import Click
    rng = np.random.default_rng(seed)
    objects = [int(o) for o in np.unique(object_ids) if o > 0]
    out, pred = [], None
    for i in range(clicks):
        if i < len(objects):
            idx = int(rng.choice(np.flatnonzero(object_ids == objects[i])))
        else:
            wrong = np.flatnonzero(pred.object_ids != object_ids)
            idx = int(rng.choice(wrong if len(wrong) else len(object_ids)))
        obj = int(object_ids[idx])
        part = int(part_ids[idx]) if part_ids is not None and obj else 0
        session.add_clicks([Click(index=idx, object_id=obj, part_id=part, positive=obj > 0)])
        c0 = time.process_time()
        pred = session.predict('both')
        out.append((pred.decode_ms, (time.process_time() - c0) * 1e3))
    return out


def run_case(case: str, scan: int, repeats: int, clicks: int, boundary=None) -> Dict:
    """Measure one case in this process; returns a row dict (medians)."""
    import torch
    if case == 'tabletop':
        scene = tabletop_scene(scan)
        seg, weights = tabletop_segmenter(boundary)
    else:
        from pinpoint3d_core.session import Segmenter
        from pinpoint3d_core.toyscenes import benchmark_room
        room = benchmark_room(100_000, seed=scan)
        scene = {'points': room['points'], 'colors': room['colors'],
                 'object_ids': room['object_ids'], 'part_ids': room['part_ids'],
                 'name': 'benchmark room (synthetic), part clicks'}
        seg = Segmenter.load(preset='indoor', device='cpu')
        weights = seg.describe()
    points, colors = scene['points'], scene['colors']
    encode_stages(seg, points, colors)                      # warm-up (imports, allocator)
    runs = [encode_stages(seg, points, colors) for _ in range(repeats)]
    stages = {k: (float(np.median([r[k][0] for r in runs])),
                  float(np.median([r[k][1] for r in runs])))
              for k in runs[0] if k != 'voxels'}
    totals = []
    for _ in range(repeats):
        start = _clock()
        session = seg.start(points, colors)
        totals.append(_since(start))
    decode = click_script(session, scene['object_ids'], clicks, scan, scene.get('part_ids'))
    dw = [d[0] for d in decode]
    return {'case': case, 'scene': scene['name'], 'weights': weights, 'points': len(points),
            'voxels': runs[0]['voxels'][0], 'links': runs[0]['voxels'][1], 'stages': stages,
            'encode_ms': float(np.median([t[0] for t in totals])),
            'encode_cpu_ms': float(np.median([t[1] for t in totals])),
            'decode_ms_median': float(np.median(dw)),
            'decode_ms_p90': float(np.percentile(dw, 90)),
            'decode_cpu_ms_median': float(np.median([d[1] for d in decode])),
            'clicks': clicks, 'repeats': repeats, 'threads': torch.get_num_threads(),
            'load_average': os.getloadavg()[0]}


def format_rows(rows: List[Dict]) -> str:
    """Markdown tables: encode stages (wall / CPU ms) and the totals with decode."""
    stages = []
    for r in rows:
        stages += [k for k in r.get('stages', {}) if k not in stages]
    head = ' | '.join(stages)
    out = [f'| case | scene | points | voxels | links | {head} |',
           '|---|---|---|---|---|' + '---|' * len(stages)]
    for r in rows:
        if 'skipped' in r:
            out.append(f"| {r['case']} | skipped: {r['skipped']} |")
            continue
        cells = ' | '.join('{:.0f} / {:.0f}'.format(*r['stages'][k]) if k in r['stages']
                           else '' for k in stages)
        out.append(f"| {r['case']} | {r['scene']} | {r['points']:,} | {r['voxels']:,} "
                   f"| {r['links']:,} | {cells} |")
    out += ['', '| case | scene | weights | encode ms (wall / CPU) | decode ms median | '
            'decode ms p90 | decode CPU ms median | load average |',
            '|---|---|---|---|---|---|---|---|']
    for r in rows:
        if 'skipped' not in r:
            out.append(f"| {r['case']} | {r['scene']} | {r['weights']} "
                       f"| {r['encode_ms']:.0f} / {r['encode_cpu_ms']:.0f} "
                       f"| {r['decode_ms_median']:.1f} | {r['decode_ms_p90']:.1f} "
                       f"| {r['decode_cpu_ms_median']:.1f} | {r['load_average']:.1f} |")
    return '\n'.join(out)


def run_benchmark(scans=DEFAULT_SCANS, repeats=3, clicks=20, timeout_s=600,
                  boundary=None) -> List[Dict]:
    """Run the tabletop scans and the indoor room, each in a niced subprocess."""
    from pinpoint3d_core.benchmarks.model import _child_env
    cases = [('tabletop', s) for s in scans] + [('indoor', 0)]
    rows = []
    for case, scan in cases:
        cmd = ['nice', '-n', '10', sys.executable, '-m', 'pinpoint3d_core.benchmarks.geodesic',
               '--case', case, str(scan), '--repeats', str(repeats), '--clicks', str(clicks)]
        if boundary:
            cmd += ['--boundary', boundary]
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s,
                                 env=_child_env())
        except subprocess.TimeoutExpired:
            rows.append({'case': case, 'skipped': f'over {timeout_s} s'})
            continue
        line = [x for x in res.stdout.splitlines() if x.startswith('{')]
        if res.returncode != 0 or not line:
            rows.append({'case': case, 'skipped': 'failed: ' + res.stderr.strip()[-200:]})
            continue
        rows.append(json.loads(line[-1]))
    return rows


def main(argv=None):
    """Print the tables (or run one case with --case, for the subprocesses)."""
    from pinpoint3d_core.benchmarks.model import machine_line
    parser = argparse.ArgumentParser(prog='pinpoint3d bench geodesic', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--case', nargs=2, metavar=('CASE', 'SCAN'))
    parser.add_argument('--scans', type=int, nargs='+', default=list(DEFAULT_SCANS),
                        help='mOSD learn scan numbers for the tabletop case')
    parser.add_argument('--repeats', type=int, default=3, help='encodes per case (median)')
    parser.add_argument('--clicks', type=int, default=20, help='clicks per case (>= 20)')
    parser.add_argument('--boundary', help='a checkpoint with a tabletop boundary network '
                        '(default: the tabletop weights, else random weights)')
    parser.add_argument('--timeout', type=int, default=600, help='seconds per case')
    parser.add_argument('--json', action='store_true', help='also print every row as JSON')
    args = parser.parse_args(argv)
    if args.case:
        import warnings
        warnings.filterwarnings('ignore')
        row = run_case(args.case[0], int(args.case[1]), args.repeats, args.clicks,
                       args.boundary)
        print(json.dumps(row), flush=True)
        return 0
    print(f'{machine_line()}; {_cpu_model()}; load average {os.getloadavg()[0]:.1f}; '
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}", flush=True)
    rows = run_benchmark(args.scans, args.repeats, args.clicks, args.timeout, args.boundary)
    print('Encode stages, median ms (wall / process CPU):')
    print(format_rows(rows), flush=True)
    if args.json:
        for r in rows:
            print(json.dumps(r))
    return 0 if all('skipped' not in r for r in rows) else 1


if __name__ == '__main__':
    sys.exit(main())
