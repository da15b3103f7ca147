"""
Model speed and memory: encode time, per-click decode time, peak memory per scene size.

Every case runs in its own subprocess so that peak resident memory (VmHWM from
/proc/self/status; tracemalloc does not see torch allocations) belongs to that case alone.
Scenes are ``toyscenes.benchmark_room`` (walls, floor, a table, a chair and a cabinet).
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np
from pinpoint3d_core.toyscenes import benchmark_room

DEFAULT_SIZES = (10_000, 100_000, 300_000, 1_000_000)
DEFAULT_CONFIGS = ('small', 'reference')
# Cases skipped unless --include-slow (none at present: the procedural room saturates near
# 68k voxels, so reference at 1M points takes under a minute on 2 CPU cores).
SLOW_CASES = set()


def _vm(field):
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1]) / 1024.0
    return float('nan')


def run_case(size, config, clicks=20, seed=0, inference=None):
    """Measure one (size, config) in this process; returns a row dict."""
    import torch
    from pinpoint3d_core.session import Click, Segmenter
    torch.manual_seed(seed)
    scene = benchmark_room(size, seed)
    seg = Segmenter.untrained(config=config, seed=seed, device='cpu', inference=inference)
    base = _vm('VmRSS')
    session = seg.start(scene['points'], scene['colors'])
    encode_ms = session.encode_ms
    # Click script: parts of the table (object 1), one background click every 5th click.
    rng = np.random.default_rng(seed)
    table = np.flatnonzero(scene['object_ids'] == 1)
    parts = np.unique(scene['part_ids'][table])
    bg = np.flatnonzero(scene['object_ids'] == 0)
    times, cpu, focus_ms = [], [], []
    for i in range(clicks):
        if i % 5 == 4:
            click = Click(index=int(rng.choice(bg)), object_id=0, positive=False)
        else:
            p = parts[i % len(parts)]
            idx = int(rng.choice(table[scene['part_ids'][table] == p]))
            click = Click(index=idx, object_id=1, part_id=int(p))
        session.add_clicks([click])
        c0 = time.process_time()
        pred = session.predict('both')
        times.append(pred.decode_ms)
        if pred.encode_ms:
            focus_ms.append(pred.encode_ms)
        cpu.append((time.process_time() - c0) * 1000.0)
    peak = _vm('VmHWM')
    return {
        'config': config, 'points': size, 'voxels': session.voxels.num_voxels,
        'tokens': session.encoding.num_tokens, 'encode_ms': encode_ms + sum(focus_ms),
        'focus_encodes': len(focus_ms),
        'decode_ms_median': float(np.median(times)),
        'decode_ms_p95': float(np.percentile(times, 95)),
        'decode_cpu_ms_median': float(np.median(cpu)),
        'peak_rss_mb': peak, 'rss_delta_mb': peak - base, 'threads': torch.get_num_threads(),
    }


def train_step_case(size=50_000, config='small', steps=3, seed=0):
    """Time full training steps (encode + decode with 10 clicks + loss + backward + AdamW)."""
    import torch
    import torch.nn.functional as F
    from pinpoint3d_core.model.pinpoint3d import PinPoint3D, VoxelClick
    from pinpoint3d_core.model.voxelize import voxelize
    torch.manual_seed(seed)
    scene = benchmark_room(size, seed)
    model = PinPoint3D(config).train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    vox = voxelize(scene['points'], scene['colors'], voxel_size=model.config.voxel_size)
    obj_gt = torch.as_tensor(scene['object_ids'][vox.rep_rows] == 1, dtype=torch.long)
    part_vox = scene['part_ids'][vox.rep_rows]
    rng = np.random.default_rng(seed)
    table = np.flatnonzero(obj_gt.numpy() == 1)
    picks = rng.choice(table, 10, replace=False)
    clicks = [VoxelClick(int(v), 1, int(part_vox[v]), i) for i, v in enumerate(picks)]
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        enc = model.encode(vox)
        out = model.decode(enc, clicks, aux=True)
        parts = out.part_ids[1]
        pgt = torch.as_tensor(np.searchsorted(parts, part_vox) + 1, dtype=torch.long)
        pgt[~torch.as_tensor(np.isin(part_vox, parts))] = 0
        loss = F.cross_entropy(out.object_logits, obj_gt)
        for logits in [out.part_logits[1]] + [a[1] for a in out.aux_part_logits]:
            loss = loss + F.cross_entropy(logits, pgt)
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append((time.perf_counter() - t0) * 1000.0)
    return {'config': config, 'points': size, 'voxels': vox.num_voxels,
            'train_step_ms_median': float(np.median(times[1:] or times))}


def compare_case(size, config, overrides, repeats=2, clicks=20):
    """
    Time one case with and without ``overrides``, alternating in this process.

    A rule that costs a few ms per click is smaller than the run-to-run spread of a shared
    machine; alternating in one process puts both sides under the same load.
    """
    from pinpoint3d_core.inference.config import field_names
    from pinpoint3d_core.model.config import get_config
    base = get_config(config)
    network = {k: v for k, v in overrides.items() if k not in field_names()}
    inference = {k: v for k, v in overrides.items() if k in field_names()}
    rows = []
    for rep in range(repeats):
        for label, cfg, inf in (('config', base, None),
                                ('override', base.replace(**network), inference)):
            row = run_case(size, cfg, clicks, inference=inf)
            rows.append({'repeat': rep, 'side': label, 'overrides': overrides,
                         'decode_ms_median': row['decode_ms_median'],
                         'decode_ms_p95': row['decode_ms_p95']})
    return rows


def _child_env():
    # Busy-waiting OpenMP threads (the default) make every small op slow on a shared 2-core
    # machine; PASSIVE is what tools/env.sh should export (docs/model.md, "Threads").
    env = dict(os.environ)
    env.setdefault('OMP_WAIT_POLICY', 'PASSIVE')
    return env


def run_benchmark(sizes=DEFAULT_SIZES, configs=DEFAULT_CONFIGS, clicks=20, timeout_s=300,
                  include_slow=False):
    """Run every case in a niced subprocess; returns a list of row dicts."""
    rows = []
    for config in configs:
        for size in sizes:
            if (config, size) in SLOW_CASES and not include_slow:
                rows.append({'config': config, 'points': size, 'skipped': 'too slow here'})
                continue
            cmd = ['nice', '-n', '10', sys.executable, '-m', 'pinpoint3d_core.benchmarks.model',
                   '--case', str(size), config, '--clicks', str(clicks)]
            t0 = time.perf_counter()
            try:
                res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s,
                                     env=_child_env())
            except subprocess.TimeoutExpired:
                rows.append({'config': config, 'points': size,
                             'skipped': f'over {timeout_s} s'})
                continue
            line = [x for x in res.stdout.splitlines() if x.startswith('{')]
            if res.returncode != 0 or not line:
                rows.append({'config': config, 'points': size,
                             'skipped': 'failed: ' + res.stderr.strip()[-200:]})
                continue
            row = json.loads(line[-1])
            row['wall_s'] = time.perf_counter() - t0
            rows.append(row)
    return rows


def format_rows(rows):
    """Markdown table of benchmark rows."""
    out = ['| config | points | voxels | tokens | encode ms | decode ms median | decode ms p95 '
           '| decode CPU ms median | peak RSS MB | RSS delta MB |',
           '|---|---|---|---|---|---|---|---|---|---|']
    for r in rows:
        if 'skipped' in r:
            out.append(f"| {r['config']} | {r['points']:,} | skipped: {r['skipped']} "
                       '| | | | | | | |')
            continue
        out.append(
            f"| {r['config']} | {r['points']:,} | {r['voxels']:,} | {r['tokens']:,} "
            f"| {r['encode_ms']:.0f} | {r['decode_ms_median']:.1f} | {r['decode_ms_p95']:.1f} "
            f"| {r['decode_cpu_ms_median']:.1f} | {r['peak_rss_mb']:.0f} "
            f"| {r['rss_delta_mb']:.0f} |")
    return '\n'.join(out)


def machine_line():
    """One line describing the machine the figures come from."""
    import torch
    return (f'{os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}), '
            f'torch {torch.__version__}, CUDA available: {torch.cuda.is_available()}')


def main(argv=None):
    """Print the benchmark table (or run one case with --case, for the subprocesses)."""
    parser = argparse.ArgumentParser(prog='pinpoint3d bench model', description=__doc__)
    parser.add_argument('--case', nargs=2, metavar=('POINTS', 'CONFIG'))
    parser.add_argument('--sizes', type=int, nargs='+', default=list(DEFAULT_SIZES))
    parser.add_argument('--configs', nargs='+', default=list(DEFAULT_CONFIGS))
    parser.add_argument('--clicks', type=int, default=20)
    parser.add_argument('--train-step', type=int, metavar='POINTS',
                        help='time a small-config training step on a scene of POINTS points')
    parser.add_argument('--timeout', type=int, default=300, help='seconds per case')
    parser.add_argument('--include-slow', action='store_true',
                        help='also run cases skipped by default (reference at 1M points)')
    parser.add_argument('--compare', nargs='+', metavar='FIELD=VALUE',
                        help='time the first --sizes / --configs case with these config '
                        'fields changed and unchanged, alternating twice in one process')
    args = parser.parse_args(argv)
    if args.compare:
        from pinpoint3d_core.evaluation.overrides import parse_overrides
        print(machine_line(), flush=True)
        for row in compare_case(args.sizes[0], args.configs[0], parse_overrides(args.compare),
                                clicks=args.clicks):
            print(json.dumps(row), flush=True)
        return 0
    if args.case or args.train_step:
        import warnings
        warnings.filterwarnings('ignore')
        if args.train_step:
            print(json.dumps(train_step_case(args.train_step)), flush=True)
        else:
            print(json.dumps(run_case(int(args.case[0]), args.case[1], args.clicks)), flush=True)
        return 0
    print(machine_line(), flush=True)
    rows = run_benchmark(args.sizes, args.configs, args.clicks, args.timeout, args.include_slow)
    print(format_rows(rows), flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
