"""
`pinpoint3d segment`: label a point cloud offline from clicks (no ROS needed).

Clicks come from a JSON file (a list, or {"clicks": [...]}, of objects with "position": [x, y,
z] or "index": i, plus optional "object_id" (1), "part_id" (0), "positive" (true)) and/or
from --click options. Output: a labelled PLY (x y z red green blue object_id part_id) or a
scene .npz (pinpoint3d_core.scene format with the predicted labels).
"""

import json
from pathlib import Path
import sys

import numpy as np

from pinpoint3d_core.errors import ClickError, Pinpoint3DError
from pinpoint3d_core.presets import PRESETS


def add_arguments(parser):
    """Register the sub-command's options."""
    parser.add_argument('input', help='cloud to segment: .npz scene, .ply, .pcd or KITTI .bin')
    parser.add_argument('--clicks', help='JSON file with clicks')
    parser.add_argument('--click', action='append', default=[], metavar='SPEC',
                        help='x,y,z[,object_id[,part_id]] or @index[,object_id[,part_id]]; '
                             'object_id 0 = background click (repeatable)')
    parser.add_argument('--out', required=True, help='output .ply or .npz')
    parser.add_argument('--preset', choices=sorted(PRESETS),
                        help='sensor setting: picks the shipped weights and their inference '
                             'settings (indoor, tabletop, lidar; default indoor)')
    parser.add_argument('--checkpoint', help='project checkpoint (wins over --preset)')
    parser.add_argument('--official', help='official AGILE3D/PinPoint3D .pth (reference model)')
    parser.add_argument('--untrained', action='store_true',
                        help='use a randomly initialised model (for testing the pipeline only)')
    parser.add_argument('--config', default='small', help='config for --untrained')
    parser.add_argument('--granularity', default='both', choices=['object', 'part', 'both'])
    parser.add_argument('--snap-radius', type=float, default=None,
                        help='max distance (m) from a click position to the nearest point')
    parser.add_argument('--device', default='auto', help="'auto', 'cpu' or 'cuda'")
    parser.add_argument('--override', action='append', metavar='FIELD=VALUE', default=[],
                        help='change a setting of the weights, e.g. '
                             'sensor_position=0.1,-0.5,0.5 (the camera in a non-camera frame) '
                             'or input_scale=0.001 (a cloud in millimetres); repeatable')


def parse_click_spec(spec):
    """Parse one --click value into a Click."""
    from pinpoint3d_core.session import Click
    try:
        if spec.startswith('@'):
            parts = spec[1:].split(',')
            ids = [int(v) for v in parts[1:]]
            obj = ids[0] if ids else 1
            part = ids[1] if len(ids) > 1 else 0
            return Click(index=int(parts[0]), object_id=obj, part_id=part, positive=obj != 0)
        vals = spec.split(',')
        pos = tuple(float(v) for v in vals[:3])
        ids = [int(v) for v in vals[3:]]
        if len(pos) != 3 or len(ids) > 2:
            raise ValueError('wrong number of fields')
    except ValueError as exc:
        raise ClickError(f'--click {spec!r}: expected x,y,z[,object_id[,part_id]] or '
                         f'@index[,object_id[,part_id]] ({exc})') from None
    obj = ids[0] if ids else 1
    part = ids[1] if len(ids) > 1 else 0
    return Click(position=pos, object_id=obj, part_id=part, positive=obj != 0)


def load_click_file(path):
    """Read clicks from a JSON file."""
    from pinpoint3d_core.session import Click
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ClickError(f'cannot read clicks from {path}: {exc}') from None
    if isinstance(data, dict):
        data = data.get('clicks', [])
    if not isinstance(data, list):
        raise ClickError(f'{path}: expected a list of clicks')
    out = []
    for i, item in enumerate(data):
        if not isinstance(item, dict):
            raise ClickError(f'{path}: click {i} is not an object')
        unknown = set(item) - {'position', 'index', 'object_id', 'part_id', 'positive'}
        if unknown:
            raise ClickError(f'{path}: click {i} has unknown fields {sorted(unknown)}')
        pos = item.get('position')
        out.append(Click(position=None if pos is None else tuple(pos), index=item.get('index'),
                         object_id=item.get('object_id', 1), part_id=item.get('part_id', 0),
                         positive=bool(item.get('positive', True))))
    return out


def run(args):
    """Segment the input and write the labels; returns the exit code."""
    from pinpoint3d_core.scene import read_any, save_scene, Scene, write_labelled_ply
    from pinpoint3d_core.session import Segmenter
    out = Path(args.out)
    if out.suffix.lower() not in ('.ply', '.npz'):
        raise Pinpoint3DError(f'--out must end in .ply or .npz, got {out.name}')
    clicks = load_click_file(args.clicks) if args.clicks else []
    clicks += [parse_click_spec(s) for s in args.click]
    if not clicks:
        raise ClickError('no clicks given: use --clicks FILE.json and/or --click SPEC')
    scene = read_any(args.input)
    if args.official:
        seg = Segmenter.from_official(args.official, device=args.device)
    elif args.untrained:
        seg = Segmenter.untrained(config=args.config, device=args.device)
        print('pinpoint3d segment: WARNING: untrained model, labels are meaningless',
              file=sys.stderr)
    else:
        seg = Segmenter.load(args.checkpoint, device=args.device, preset=args.preset)
        if args.checkpoint and args.preset:
            print(f'pinpoint3d segment: --checkpoint {args.checkpoint} wins over --preset '
                  f'{args.preset}', file=sys.stderr)
    if args.override:
        from pinpoint3d_core.evaluation.overrides import apply_overrides, parse_overrides
        apply_overrides(seg, parse_overrides(args.override))
    print(f'pinpoint3d segment: {seg.describe()}', file=sys.stderr)
    session = seg.start(scene.coords, scene.colors, scene.intensity)
    if getattr(session, 'sensor_estimated', False):
        x, y, z = session.origin
        print(f'pinpoint3d segment: the cloud is not in its camera frame; camera estimated at '
              f'({x:.3f}, {y:.3f}, {z:.3f}) (--override sensor_position=X,Y,Z sets it)',
              file=sys.stderr)
    session.add_clicks(clicks, snap_radius=args.snap_radius)
    pred = session.predict(args.granularity)
    if out.suffix.lower() == '.ply':
        out.parent.mkdir(parents=True, exist_ok=True)
        write_labelled_ply(out, scene.coords, scene.colors, pred.object_ids, pred.part_ids)
    else:
        meta = dict(scene.meta)
        meta['segmentation'] = {
            'model': seg.source, 'untrained': seg.untrained, 'granularity': args.granularity,
            'object_scores': {str(k): v for k, v in pred.object_scores.items()},
            'part_scores': {f'{k[0]}/{k[1]}': v for k, v in pred.part_scores.items()}}
        labelled = Scene(scene.coords, scene.colors, scene.intensity,
                         pred.object_ids.astype(np.int32), pred.part_ids.astype(np.int32), meta)
        save_scene(out, labelled)
    counts = {int(k): int(v) for k, v in zip(*np.unique(pred.object_ids, return_counts=True))}
    encode_ms = session.encode_ms + pred.encode_ms
    print(f'encode {encode_ms:.0f} ms, decode {pred.decode_ms:.0f} ms; points per '
          f'object {counts}; wrote {out}')
    return 0
