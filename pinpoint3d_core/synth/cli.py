"""``pinpoint3d synth``: write many synthetic scenes (and optional previews) to a folder."""

import os

from pinpoint3d_core.errors import Pinpoint3DError


def add_arguments(parser):
    """Register the synth options on an argparse (sub)parser."""
    parser.add_argument('--kind', choices=('indoor', 'lidar', 'tabletop'), default='indoor',
                        help='indoor RGB-D rooms, outdoor LiDAR streets or tabletop RGB-D '
                             'frames (default indoor)')
    parser.add_argument('--count', type=int, default=10, help='number of scenes (default 10)')
    parser.add_argument('--seed', type=int, default=0, help='scene i uses seed SEED+i')
    parser.add_argument('--out', required=True, help='output folder (created if missing)')
    parser.add_argument('--mode', choices=('scan', 'single'), default='scan',
                        help='indoor: fused scan or one robot-height frame (default scan)')
    parser.add_argument('--size', choices=('normal', 'small'), default='normal',
                        help='normal (~60-125k points) or small (~15-30k points)')
    parser.add_argument('--beams', type=int, choices=(32, 64), default=64,
                        help='LiDAR beams (default 64)')
    parser.add_argument('--no-noise', action='store_true', help='exact surface points')
    parser.add_argument('--png', action='store_true', help='also write a preview per scene')
    parser.add_argument('--workers', type=int, default=1, help='parallel processes (default 1)')


def _job(job):
    """Generate, save and optionally preview one scene (runs in a worker process)."""
    from pinpoint3d_core.scene import save_scene
    from pinpoint3d_core.synth import generate_scene
    seed, opts, out, png = job
    scene = generate_scene(seed=seed, **opts)
    stem = os.path.join(out, f"{opts['kind']}_{seed:06d}")
    save_scene(stem + '.npz', scene)
    if png:
        from pinpoint3d_core.synth.preview import save_preview
        save_preview(scene, stem + '.png')
    return len(scene)


def run(args):
    """Generate ``args.count`` scenes into ``args.out``; returns the exit code."""
    from tqdm import tqdm
    if args.count < 1:
        raise Pinpoint3DError('--count must be at least 1')
    if args.workers < 1:
        raise Pinpoint3DError('--workers must be at least 1')
    try:
        os.makedirs(args.out, exist_ok=True)
    except OSError as exc:
        raise Pinpoint3DError(f'cannot create output folder {args.out}: {exc}') from exc
    opts = {'kind': args.kind, 'mode': args.mode, 'size': args.size, 'beams': args.beams,
            'noise': not args.no_noise}
    jobs = [(args.seed + i, opts, args.out, args.png) for i in range(args.count)]
    total = 0
    with tqdm(total=len(jobs), unit='scene', desc=f'synth {args.kind}') as bar:
        if args.workers == 1:
            results = map(_job, jobs)
        else:
            import multiprocessing
            pool = multiprocessing.get_context('spawn').Pool(args.workers)
            results = pool.imap(_job, jobs)
        for n in results:
            total += n
            bar.update(1)
        if args.workers > 1:
            pool.close()
            pool.join()
    print(f'wrote {len(jobs)} scenes ({total:,} points) to {args.out}')
    return 0
