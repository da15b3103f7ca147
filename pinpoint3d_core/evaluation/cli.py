"""``pinpoint3d evaluate``: simulated-user evaluation of a checkpoint and/or the baseline."""

import csv
import json
import os
import re

import numpy as np

from pinpoint3d_core.errors import Pinpoint3DError
from pinpoint3d_core.evaluation import harness, metrics, realdev
from pinpoint3d_core.presets import get_preset, preset_weights, PRESETS
from pinpoint3d_core.scene import named_scenes, real_data_dir, scene_paths

PNG_STEPS = (1, 3, 5)


def add_arguments(parser):
    """Register the sub-command's options."""
    parser.add_argument('--scenes', nargs='+', metavar='DIR_OR_FILE',
                        help='scene files (.npz/.ply/.pcd/.bin), directories or globs')
    parser.add_argument('--real', action='store_true',
                        help='evaluate on the labelled real LiDAR scans in $PINPOINT3D_REAL_DATA '
                             '(default: shared/data beside the checkout); implies --protocol '
                             'object')
    parser.add_argument('--real-dev', choices=sorted(realdev.FAMILIES), metavar='FAMILY',
                        help='evaluate on a real development family (' +
                             ', '.join(sorted(realdev.FAMILIES)) + '), split --split; implies '
                             '--protocol object and, without --preset, the preset of the '
                             'family')
    parser.add_argument('--split', choices=realdev.SPLITS, default='val',
                        help='part of the real development family (default: val, the part '
                             'nothing is trained or tuned on)')
    parser.add_argument('--protocol', choices=harness.PROTOCOLS, default='random-part')
    parser.add_argument('--preset', choices=sorted(PRESETS),
                        help="a preset's weights for --model preset, and its tuned settings "
                             'for --model baseline')
    parser.add_argument('--model', action='append', metavar='PATH|preset|baseline',
                        help="checkpoint path, 'preset' (the --preset weights) or 'baseline' "
                             "(the --preset's tuned non-learned baseline); repeat to compare "
                             'several (default: baseline)')
    parser.add_argument('--device', default='auto', help='model device (auto, cpu, cuda)')
    parser.add_argument('--max-clicks', type=int, default=10, help='clicks per target (cap)')
    parser.add_argument('--out', default=None, help='output directory (JSON, CSV, PNG)')
    parser.add_argument('--png', action='store_true',
                        help=f'render truth vs prediction after {PNG_STEPS} clicks/target')
    parser.add_argument('--png-limit', type=int, default=20, help='PNGs per model at most')
    parser.add_argument('--limit', type=int, default=None, help='evaluate at most N samples')
    parser.add_argument('--seed', type=int, default=0, help='seed of the random part subsets')
    parser.add_argument('--objects-per-sample', type=int, default=0,
                        help='object protocol: objects per sample (0 = all of a scene, '
                             'at most --max-targets)')
    parser.add_argument('--max-targets', type=int, default=15)
    parser.add_argument('--samples-per-scene', type=int, default=0, metavar='N',
                        help="evaluate a seeded random N of each scene's samples (0 = all), "
                             'so that --limit spreads over scenes')
    parser.add_argument('--min-target-points', type=int, default=10,
                        help='targets with fewer points are not evaluated')
    parser.add_argument('--include-stuff', action='store_true',
                        help='object protocol: also use floor/wall/road objects as targets')
    parser.add_argument('--click-voxel', type=float, default=0.05,
                        help="voxel size (m) of the simulated user's click candidates")
    parser.add_argument('--progress', action='store_true', help='show a progress bar')
    parser.add_argument('--override', action='append', metavar='FIELD=VALUE', default=[],
                        help='change a model config field of every checkpoint before '
                             'evaluating (repeatable), e.g. tam_all_layers=false; only fields '
                             'that keep the parameter set; results are labelled by it')


def model_names(specs):
    """Label per --model: the file stem, with its folder when two stems are equal."""
    stems = [s if s == 'baseline' else os.path.splitext(os.path.basename(s))[0] for s in specs]
    out = []
    for spec, stem in zip(specs, stems):
        if stems.count(stem) > 1 and spec != 'baseline':
            parent = os.path.basename(os.path.dirname(os.path.abspath(spec)))
            stem = f'{parent}/{stem}'
        out.append(stem)
    return out


def load_segmenter(spec, device='auto', overrides=None, name=None, preset=None):
    """
    Return (name, segmenter) for a checkpoint path, 'preset' or 'baseline'.

    The baseline takes the preset's tuned settings (never overridden); 'preset' loads the
    preset's shipped weights.
    """
    from pinpoint3d_core.evaluation.baseline import GraphBaselineSegmenter
    if spec == 'baseline':
        if preset is None:
            return 'baseline', GraphBaselineSegmenter()
        return 'baseline', GraphBaselineSegmenter(get_preset(preset).baseline,
                                                  source=f'baseline:{preset}')
    if spec == 'preset':
        if preset is None:
            raise Pinpoint3DError('--model preset needs --preset NAME')
        spec = str(preset_weights(preset))
    if not os.path.isfile(spec):
        raise Pinpoint3DError(f'{spec}: no such checkpoint (or pass --model baseline)')
    from pinpoint3d_core.session import Segmenter
    from pinpoint3d_core.evaluation.overrides import apply_overrides, override_label
    name = name or os.path.splitext(os.path.basename(spec))[0]
    seg = Segmenter.load(spec, device=device)
    if overrides:
        apply_overrides(seg, overrides)
        name = f'{name}[{override_label(overrides)}]'
    return name, seg


def _safe(name):
    return re.sub(r'[^A-Za-z0-9_.-]+', '_', name)


def write_outputs(out, name, args, summary, records, config=None):
    """Write summary.json, per_target.csv and curves.csv under ``out``."""
    os.makedirs(out, exist_ok=True)
    overrides = dict(getattr(args, 'overrides', None) or {}) if config is not None else {}
    with open(os.path.join(out, 'summary.json'), 'w') as f:
        json.dump({'model': name, 'protocol': args.protocol, 'max_clicks': args.max_clicks,
                   'seed': args.seed, 'limit': args.limit,
                   'samples_per_scene': getattr(args, 'samples_per_scene', 0),
                   'overrides': overrides,
                   'config': config, 'summary': summary,
                   'noc_keyed_by': 'sample (not scene + target count as in the reference)',
                   'samples': [{'id': r['sample'].sample_id, 'targets': r['curve'].labels,
                                'clicks': r['curve'].clicks, 'iou': r['curve'].ious()}
                               for r in records]}, f, indent=1)
    with open(os.path.join(out, 'per_target.csv'), 'w', newline='') as f:
        w = csv.writer(f)
        ks = metrics.IOU_AT
        w.writerow(['sample', 'scene', 'level', 'object_id', 'target_id', 'points']
                   + [f'iou@{k}' for k in ks])
        for r in records:
            s, c = r['sample'], r['curve']
            steps = [c.step_at(k) for k in ks]
            for t, (sid, size) in enumerate(zip(s.scene_ids, c.target_sizes)):
                obj = s.object_id if s.level == 'part' else sid
                w.writerow([s.sample_id, s.scene_name, s.level, obj, sid, size]
                           + ['' if i is None else f'{c.target_iou[i][t]:.4f}' for i in steps])
    with open(os.path.join(out, 'curves.csv'), 'w') as f:
        # Same layout as the reference results files: idx scene targets clicks/target IoU.
        for i, r in enumerate(records):
            c = r['curve']
            for n, v in zip(c.clicks, c.ious()):
                f.write(f'{i} {_safe(c.scene)} {c.num_targets} {n / c.num_targets} {v:.6f}\n')


def run(args):
    """Evaluate every requested model on the same samples and print one table per model."""
    if args.real:
        args.scenes = [real_data_dir()]
        args.protocol = 'object'
    if args.real_dev:
        args.scenes = realdev.family_paths(args.real_dev, args.split)
        args.protocol = 'object'
        args.preset = args.preset or realdev.FAMILIES[args.real_dev].preset
        print(f'real development family {args.real_dev!r}, split {args.split!r}: '
              f'{len(args.scenes)} scans ({realdev.ATTRIBUTION[args.real_dev]})')
    if not args.scenes:
        raise Pinpoint3DError('give --scenes DIR_OR_FILES (or --real for the real LiDAR scans)')
    paths = scene_paths(args.scenes)
    models = args.model or ['baseline']
    from pinpoint3d_core.evaluation.overrides import parse_overrides
    args.overrides = parse_overrides(getattr(args, 'override', None))
    if args.overrides and all(m == 'baseline' for m in models):
        raise Pinpoint3DError("--override changes a checkpoint's config: give --model PATH")
    summaries = {}
    for spec, label in zip(models, model_names(models)):
        name, seg = load_segmenter(spec, args.device, args.overrides, label,
                                   getattr(args, 'preset', None))
        print(f'{name}: {seg.describe()}')
        out = None
        if args.out:
            out = args.out if len(models) == 1 else os.path.join(args.out, _safe(name))
        png_state = {'n': 0}

        def on_sample(scene, sample, curve, kept, out=out, png_state=png_state, name=name):
            if not (args.png and out) or png_state['n'] >= args.png_limit:
                return
            from pinpoint3d_core.evaluation.render import render_sample
            os.makedirs(os.path.join(out, 'png'), exist_ok=True)
            path = os.path.join(out, 'png', _safe(sample.sample_id) + '.png')
            title = (f'{name} | {args.protocol} | {sample.sample_id} | '
                     f'IoU@1 {100 * (curve.iou_at(1) or 0):.1f}')
            render_sample(path, scene.coords, sample.gt, kept, title,
                          margin=0.5 if sample.level == 'part' else 3.0)
            png_state['n'] += 1

        summary, curves, records = harness.run_evaluation(
            seg, named_scenes(paths), args.protocol, args.max_clicks, args.seed,
            args.limit, args.click_voxel, args.objects_per_sample, args.max_targets,
            args.min_target_points, keep_steps=PNG_STEPS if args.png else (),
            on_sample=on_sample, progress=args.progress, include_stuff=args.include_stuff,
            samples_per_scene=args.samples_per_scene)
        if not curves:
            raise Pinpoint3DError(
                f'no {args.protocol} samples in {len(paths)} scene(s): part protocols need '
                'objects with >= 2 labelled parts; try --protocol object')
        summaries[name] = summary
        print(metrics.format_table(summary, f'== {name} | {args.protocol} | '
                                            f'{len(paths)} scene file(s)'))
        if out:
            config = getattr(seg, 'config', None)
            config = config.to_dict() if config is not None else None
            write_outputs(out, name, args, summary, records, config)
            print(f'wrote {out}/summary.json, per_target.csv, curves.csv')
    if len(summaries) > 1:
        keys = [k for k in next(iter(summaries.values())) if k not in ('samples', 'targets')]
        names = list(summaries)
        print('\n' + f"{'metric':<14}" + ''.join(f'{n[:14]:>16}' for n in names))
        for k in keys:
            vals = ''.join(f'{summaries[n].get(k, np.nan):16.2f}' for n in names)
            print(f'{k:<14}{vals}')
    return 0
