"""
Write a preset's shipped weights file from training runs (``pinpoint3d package-weights``).

A weights file holds what was trained (a boundary network, a click decoder, or both) and the
inference settings it was validated with: the preset's baseline settings plus the preset's
``shipped`` changes (presets.py), so that the file alone reproduces the measured figures.
"""

import os

from pinpoint3d_core.errors import Pinpoint3DError


def with_decoder_settings(shipped, decoder_inference):
    """
    Return the decoder's validated settings, changed where the preset differs from defaults.

    The click decoder keeps what it was validated with (its focus box, its rules) for the
    parts it decodes; the surface-graph fields, which the presets set away from the
    InferenceConfig defaults, come from the preset.
    """
    from pinpoint3d_core.inference.config import InferenceConfig
    default = InferenceConfig().to_dict()
    changes = {k: v for k, v in shipped.to_dict().items() if v != default[k]}
    return InferenceConfig.from_dict(dict(decoder_inference.to_dict(), **changes))


def package(preset: str, out: str, boundary: str = '', decoder: str = '') -> str:
    """Write ``out`` from a boundary run checkpoint and/or a decoder checkpoint; returns it."""
    from pinpoint3d_core.model.checkpoint import (
        load_boundary, load_checkpoint, read_checkpoint, save_boundary_checkpoint,
        save_checkpoint)
    from pinpoint3d_core.presets import get_preset
    if not (boundary or decoder):
        raise Pinpoint3DError('give --boundary RUN/model.pt and/or --decoder CKPT')
    spec = get_preset(preset)
    inference = spec.shipped_inference()
    meta = {'preset': preset, 'packaged_from': {'boundary': boundary, 'decoder': decoder}}
    model = None
    if decoder:
        model, decoder_meta, decoder_inference = load_checkpoint(decoder)
        meta['decoder_metadata'] = decoder_meta
        inference = with_decoder_settings(inference, decoder_inference)
    if not boundary:
        return str(save_checkpoint(out, model, meta, inference=inference))
    meta['boundary_metadata'] = dict(read_checkpoint(boundary).get('metadata', {}))
    return str(save_boundary_checkpoint(out, load_boundary(boundary), inference, meta, model))


def add_arguments(parser) -> None:
    """Register the sub-command's options."""
    from pinpoint3d_core.presets import PRESETS
    parser.add_argument('--preset', choices=sorted(PRESETS), required=True)
    parser.add_argument('--boundary', default='', help='boundary run checkpoint (model.pt)')
    parser.add_argument('--decoder', default='', help='click decoder checkpoint')
    parser.add_argument('--out', default='', help="default: weights/<the preset's file name>")


def run(args) -> int:
    """Package and print what was written."""
    from pinpoint3d_core.presets import get_preset
    out = args.out or os.path.join('weights', get_preset(args.preset).weights)
    path = package(args.preset, out, args.boundary, args.decoder)
    from pinpoint3d_core.session import Segmenter
    print(f'wrote {path}: {Segmenter.load(path, device="cpu").describe()}')
    return 0
