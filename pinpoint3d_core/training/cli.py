"""
``pinpoint3d train``: train from scratch, continue a stage, or resume a run exactly.

Works the same under ``torchrun --nproc_per_node N -m pinpoint3d_core.cli train ...``.
"""

import json
import os

from pinpoint3d_core.errors import Pinpoint3DError


def add_arguments(parser):
    """Register the sub-command's options."""
    from pinpoint3d_core.training.trainer import TrainConfig
    d = TrainConfig()
    parser.add_argument('--config', default=d.model, help='model config name (small, reference)')
    parser.add_argument('--out', required=True, help='run directory (checkpoints, log, PNG)')
    parser.add_argument('--resume', action='store_true',
                        help='continue exactly from OUT/checkpoint.pt')
    src = parser.add_mutually_exclusive_group()
    src.add_argument('--scenes', nargs='+', metavar='DIR_OR_FILE',
                     help='pre-generated scene files or directories')
    src.add_argument('--on-the-fly', action='store_true',
                     help='generate scenes while training (default when --scenes is absent)')
    parser.add_argument('--kinds', default=','.join(d.kinds),
                        help='scene kinds for --on-the-fly, comma separated '
                             '(indoor, lidar, toy)')
    parser.add_argument('--scene-size', choices=('small', 'normal'), default=d.scene_size,
                        help='indoor scene size for --on-the-fly (small: 15-30k points)')
    parser.add_argument('--stage', choices=('object', 'part', 'joint'), default=d.stage,
                        help='object: backbone + object decoder; part: freeze those and '
                             'train adapter + part decoder (use --init); joint: everything')
    parser.add_argument('--init', default=None,
                        help="start from these weights (e.g. the object stage's model.pt)")
    parser.add_argument('--steps', type=int, default=d.steps, help='total optimiser steps')
    parser.add_argument('--stop-at', type=int, default=None,
                        help='stop at this step (checkpoint kept; continue with --resume)')
    parser.add_argument('--max-minutes', type=float, default=None,
                        help='stop after this wall time (checkpoint kept; --resume continues)')
    parser.add_argument('--batch-size', type=int, default=d.batch_size,
                        help='scenes per step and process')
    parser.add_argument('--lr', type=float, default=d.lr)
    parser.add_argument('--weight-decay', type=float, default=d.weight_decay)
    parser.add_argument('--warmup', type=int, default=d.warmup)
    parser.add_argument('--grad-clip', type=float, default=d.grad_clip)
    parser.add_argument('--max-rounds', type=int, default=d.max_rounds,
                        help='simulated click rounds are drawn from 1..this')
    parser.add_argument('--max-objects', type=int, default=d.max_objects)
    parser.add_argument('--max-part-objects', type=int, default=d.max_part_objects)
    parser.add_argument('--min-target-voxels', type=int, default=d.min_target_voxels,
                        help='smaller objects/parts are never targets (LiDAR: about 30)')
    parser.add_argument('--part-prob', type=float, default=d.part_prob,
                        help='joint stage: share of part-level samples')
    parser.add_argument('--focus-crop', type=float, default=None, metavar='M',
                        help="crop samples to the first clicks' box grown by M metres, as "
                             "inference's focus box does (default: the model config's "
                             'focus_half_extent; 0 = whole scenes)')
    parser.add_argument('--no-augment', action='store_true')
    parser.add_argument('--seed', type=int, default=d.seed)
    parser.add_argument('--workers', type=int, default=1, help='data loader processes')
    parser.add_argument('--threads', type=int, default=0,
                        help='torch threads per process (0 = cores / processes)')
    parser.add_argument('--checkpoint-minutes', type=float, default=10.0)
    parser.add_argument('--device', default='cpu', help='cpu or cuda')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')


def config_from_args(args):
    """Build the TrainConfig of a run from parsed arguments."""
    from pinpoint3d_core.inference.config import default_inference
    from pinpoint3d_core.training.trainer import TrainConfig
    focus = args.focus_crop
    if focus is None:
        focus = default_inference(args.config).focus_half_extent
    return TrainConfig(
        model=args.config, stage=args.stage, steps=args.steps, batch_size=args.batch_size,
        lr=args.lr, weight_decay=args.weight_decay, warmup=args.warmup,
        grad_clip=args.grad_clip, max_rounds=args.max_rounds, max_objects=args.max_objects,
        max_part_objects=args.max_part_objects, part_prob=args.part_prob, seed=args.seed,
        min_target_voxels=args.min_target_voxels,
        kinds=tuple(k for k in args.kinds.split(',') if k), scene_size=args.scene_size,
        augment=not args.no_augment, focus_crop=float(focus))


def run(args):
    """Train; prints where the checkpoints are."""
    from pinpoint3d_core.scene import scene_paths
    from pinpoint3d_core.training.trainer import Trainer
    cfg = config_from_args(args)
    if cfg.steps < 1:
        raise Pinpoint3DError('--steps must be at least 1')
    scenes = None
    if args.scenes:
        scenes = [p for p in scene_paths(args.scenes) if p.endswith('.npz')]
    trainer = Trainer(cfg, args.out, scenes, resume=args.resume, init=args.init,
                      workers=args.workers, threads=args.threads,
                      checkpoint_minutes=args.checkpoint_minutes, device=args.device,
                      progress=not args.no_progress)
    try:
        if trainer.rank == 0:
            with open(os.path.join(args.out, 'train_config.json'), 'w') as f:
                json.dump({'train': cfg.__dict__, 'world_size': trainer.world,
                           'resumed_at': trainer.step if args.resume else None}, f,
                          indent=1, default=list)
        records = trainer.train(stop_at=args.stop_at, max_minutes=args.max_minutes)
        if trainer.rank == 0:
            tail = [r['loss'] for r in records[-20:] if 'loss' in r]
            if tail:
                print(f'step {trainer.step}: mean loss of the last {len(tail)} steps '
                      f'{sum(tail) / len(tail):.4f}')
            print(f'wrote {args.out}/checkpoint.pt (resume), {args.out}/model.pt (evaluate), '
                  f'{args.out}/log.jsonl, {args.out}/curves.png')
    finally:
        trainer.close()
    return 0
