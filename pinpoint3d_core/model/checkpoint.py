"""
Checkpoints: the project's own format, and loading official AGILE3D/PinPoint3D weights.

Project format (``torch.save`` of a dict, loadable with ``weights_only=True``)::

    {'format': 'pinpoint3d-checkpoint', 'version': 1,
     'config': ModelConfig.to_dict(), 'inference': InferenceConfig.to_dict(),
     'state_dict': model.state_dict(),
     'metadata': {...training info: epochs, data, metrics, git hash...},
     'training_state': {...optional: optimizer/scheduler state for resuming...}}

``inference`` (the settings the weights were validated with) is absent from checkpoints written
before InferenceConfig existed: those kept the same fields inside ``config``, and
``checkpoint_inference`` reads them from there.

Official files are ``{'model': state_dict, 'optimizer', ..., 'args'}`` with the key layout of
notes §5; ``load_official_state_dict`` maps them onto the ``reference`` configuration.
"""

import argparse
import dataclasses
import os
from pathlib import Path
import pickle
import re
import sys
from typing import Any, Dict, NamedTuple
import zipfile

from pinpoint3d_core.errors import CheckpointError
from pinpoint3d_core.inference.config import (
    default_inference, InferenceConfig, split_legacy)
from pinpoint3d_core.model.config import get_config, ModelConfig
import torch

FORMAT = 'pinpoint3d-checkpoint'
VERSION = 1
DEFAULT_NAME = 'pinpoint3d_small.pt'


def default_checkpoint_candidates(name=DEFAULT_NAME):
    """Places searched for a shipped weights file, in order ($PINPOINT3D_WEIGHTS first)."""
    out = []
    env = os.environ.get('PINPOINT3D_WEIGHTS')
    if env and name == DEFAULT_NAME:
        out.append(Path(env))
    here = Path(__file__).resolve()
    out.append(here.parents[2] / 'weights' / name)            # source checkout
    out.append(Path(sys.prefix) / 'share' / 'pinpoint3d' / 'weights' / name)
    for prefix in os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep):
        if prefix:
            out.append(Path(prefix) / 'share' / 'pinpoint3d' / 'weights' / name)
    return out


def default_checkpoint_path(name=DEFAULT_NAME):
    """Return a shipped weights file, or raise CheckpointError listing where it looked."""
    cands = default_checkpoint_candidates(name)
    for c in cands:
        if c.is_file():
            return c
    raise CheckpointError(
        'no trained weights found (looked for ' + ', '.join(str(c) for c in cands) + '); '
        'train a model with `pinpoint3d train`, pass checkpoint=PATH, or use '
        'Segmenter.untrained() for an explicitly untrained model')


def save_checkpoint(path, model, metadata=None, training_state=None, inference=None):
    """
    Write a project checkpoint atomically (temporary file, then rename).

    ``inference`` (InferenceConfig) defaults to the model config's defaults.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    inference = inference or default_inference(model.config.name)
    data = {
        'format': FORMAT,
        'version': VERSION,
        'config': model.config.to_dict(),
        'inference': inference.to_dict(),
        'state_dict': {k: v.detach().cpu() for k, v in model.state_dict().items()},
        'metadata': dict(metadata or {}),
    }
    if training_state is not None:
        data['training_state'] = training_state
    tmp = path.with_name(path.name + '.tmp')
    torch.save(data, tmp)
    os.replace(tmp, path)
    return path


_READ_ERRORS = (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError,
                OSError)


def safe_torch_load(path, map_location='cpu', what='checkpoint', safe_globals=()):
    """
    ``torch.load`` with ``weights_only=True``: tensors and plain containers only, never code.

    Every project file (weights, training state) is loaded here, so a crafted pickle cannot
    run. Failures become CheckpointError; torch's advice to switch the protection off is not
    passed on (a file that needs it is not a pinpoint3d file).
    """
    try:
        with torch.serialization.safe_globals(list(safe_globals)):
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        detail = _unpickler_detail(str(exc))
        raise CheckpointError(
            f'{what} {path} was refused: it holds Python objects other than tensors and '
            f'plain containers ({detail}). pinpoint3d never runs code from a file; write '
            'checkpoints with pinpoint3d (save_checkpoint, or pinpoint3d train) and load '
            'only files you trust.') from None
    except _READ_ERRORS as exc:
        raise CheckpointError(
            f'{what} {path} cannot be read (truncated or not a torch file?): '
            f'{_unpickler_detail(str(exc))}') from None


def _unpickler_detail(text):
    """Keep what names the problem from a torch error; drop its advice to lift the check."""
    found = re.search(r'Unsupported global: GLOBAL (\S+)', text)
    if found:
        return f'it would call {found.group(1)!r}'
    for line in text.splitlines():
        line = line.strip()
        if line.startswith('WeightsUnpickler error:'):
            return line.split('. Please use', 1)[0].split(' Please use', 1)[0]
    keep = [line.strip() for line in text.splitlines()
            if line.strip() and not any(w in line for w in (
                'weights_only', 'arbitrary code', 'safe_globals', 'trust'))]
    return ' '.join(keep)[:300] or 'unreadable'


def read_checkpoint(path):
    """Load a project checkpoint dict with clear errors for missing/truncated/foreign files."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f'checkpoint {path} does not exist')
    data = safe_torch_load(path)
    if not isinstance(data, dict) or data.get('format') != FORMAT:
        hint = ''
        if isinstance(data, dict) and 'model' in data:
            hint = '; it looks like an official AGILE3D/PinPoint3D file: use ' \
                   'load_official_checkpoint()'
        raise CheckpointError(f'{path} is not a pinpoint3d checkpoint{hint}')
    if data.get('version', 0) > VERSION:
        raise CheckpointError(
            f'{path} has format version {data.get("version")}, newer than this code ({VERSION})')
    if 'boundary' not in data:
        for key in ('config', 'state_dict'):
            if key not in data:
                raise CheckpointError(f'checkpoint {path} has no {key!r} entry (incomplete file)')
    return data


def save_boundary_checkpoint(path, boundary, inference, metadata=None, model=None):
    """
    Write a checkpoint holding a BoundaryNet (and optionally a PinPoint3D decoder model).

    ``inference`` is the InferenceConfig the checkpoint serves (geodesic object masks).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {'format': FORMAT, 'version': VERSION, 'inference': inference.to_dict(),
            'metadata': dict(metadata or {}),
            'boundary': {'config': boundary.config.to_dict(),
                         'state_dict': {k: v.detach().cpu()
                                        for k, v in boundary.state_dict().items()}}}
    if model is not None:
        data['config'] = model.config.to_dict()
        data['state_dict'] = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    tmp = path.with_name(path.name + '.tmp')
    torch.save(data, tmp)
    os.replace(tmp, path)
    return path


def boundary_from_data(data, path='checkpoint'):
    """Return the BoundaryNet of a checkpoint dict in eval mode, or None if it has none."""
    if 'boundary' not in data:
        return None
    from pinpoint3d_core.model.boundary import BoundaryConfig, BoundaryNet
    entry = data['boundary']
    net = BoundaryNet(BoundaryConfig.from_dict(entry['config']))
    try:
        net.load_state_dict(entry['state_dict'], strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f'{path}: the boundary network does not match its config: '
                              f'{str(exc).splitlines()[0]}') from None
    return net.eval()


def load_boundary(path):
    """Return the BoundaryNet stored in a checkpoint file (CheckpointError if none)."""
    net = boundary_from_data(read_checkpoint(path), path)
    if net is None:
        raise CheckpointError(f'{path} holds no boundary network')
    return net


def checkpoint_inference(data):
    """Return the InferenceConfig a checkpoint dict (``read_checkpoint``) was validated with."""
    if 'inference' in data:
        return InferenceConfig.from_dict(data['inference'])
    network, legacy = split_legacy(data['config'])
    base = default_inference(network.get('name', ''))
    return base.replace(**legacy)


class LoadedCheckpoint(NamedTuple):
    """A loaded project checkpoint: the network, its metadata and its inference settings."""

    model: Any                   # PinPoint3D in eval mode
    metadata: Dict[str, Any]
    inference: InferenceConfig


def load_checkpoint(path, expected_config=None, device='cpu') -> LoadedCheckpoint:
    """Return (PinPoint3D in eval mode, metadata, InferenceConfig); CheckpointError if bad."""
    from pinpoint3d_core.model.pinpoint3d import PinPoint3D
    data = read_checkpoint(path)
    config = ModelConfig.from_dict(data['config'])
    if expected_config is not None:
        want = get_config(expected_config)
        if want.name != config.name:
            raise CheckpointError(
                f'checkpoint {path} holds a {config.name!r} model, expected {want.name!r}')
    model = PinPoint3D(config)
    try:
        result = model.load_state_dict(data['state_dict'], strict=False)
    except RuntimeError as exc:
        detail = str(exc).strip().splitlines()
        raise CheckpointError(
            f'checkpoint {path} does not match its {config.name!r} configuration: '
            + ' '.join(line.strip() for line in detail[1:3])) from None
    if result.missing_keys or result.unexpected_keys:
        raise CheckpointError(
            f'checkpoint {path} does not match its {config.name!r} configuration: missing '
            f'{result.missing_keys[:5]}, unexpected {result.unexpected_keys[:5]} '
            f'({len(result.missing_keys)} / {len(result.unexpected_keys)} in all)')
    model.to(device).eval()
    return LoadedCheckpoint(model, dict(data.get('metadata', {})), checkpoint_inference(data))


# ---------------------------------------------------------------------------- official files
_IGNORED_SUFFIXES = ('total_params', 'total_ops')
_KNOWN_UNUSED = ('decoder_norm_part.',)
_STACKS = {
    'c2s_attention': ('object_layers', 'c2s'), 'c2c_attention': ('object_layers', 'c2c'),
    'ffn_attention': ('object_layers', 'ffn'), 's2c_attention': ('object_layers', 's2c'),
    'p_c2o_attention': ('part_layers', 'c2s'), 'p_c2c_attention': ('part_layers', 'c2c'),
    'p_ffn_attention': ('part_layers', 'ffn'), 'p_o2c_attention': ('part_layers', 's2c'),
}
_ATTN = re.compile(r'^(\w+)\.(\d+)\.0\.(multihead_attn|self_attn)\.(in_proj_weight|in_proj_bias|'
                   r'out_proj\.weight|out_proj\.bias)$')
_NORM = re.compile(r'^(\w+)\.(\d+)\.0\.(norm|linear1|linear2)\.(weight|bias)$')


@dataclasses.dataclass
class OfficialLoadReport:
    """What happened to each key of an official checkpoint."""

    source: str                      # 'pinpoint3d' (has part decoder) or 'agile3d'
    loaded: list                     # our parameter/buffer names that received values
    missing: list                    # ours that did not (keep their initialisation)
    unexpected: list                 # file keys we could not place
    ignored: list                    # file keys deliberately skipped
    shape_mismatch: list             # (file key, file shape, our shape)

    @property
    def ok(self):
        """Tell whether every file key was placed (or deliberately skipped) in the right shape."""
        return not self.unexpected and not self.shape_mismatch

    def __str__(self):
        lines = [f'official {self.source} checkpoint: {len(self.loaded)} tensors loaded, '
                 f'{len(self.missing)} missing, {len(self.unexpected)} unexpected, '
                 f'{len(self.ignored)} ignored, {len(self.shape_mismatch)} shape mismatches']
        for name, items in (('missing', self.missing), ('unexpected', self.unexpected),
                            ('shape mismatch', self.shape_mismatch)):
            if items:
                lines.append(f'  {name}: ' + ', '.join(map(str, items[:10]))
                             + (' ...' if len(items) > 10 else ''))
        return '\n'.join(lines)


def _map_official_key(key, value):
    """Return [(our key, tensor)] for one official key, [] to ignore, None if unknown."""
    if key.startswith('backbone.'):
        return [(key, value)]
    m = _ATTN.match(key)
    if m and m.group(1) in _STACKS:
        stack, role = _STACKS[m.group(1)]
        base = f'{stack}.{m.group(2)}.{role}.'
        what = m.group(4)
        if what.startswith('in_proj'):
            kind = 'weight' if what.endswith('weight') else 'bias'
            q, k, v = value.chunk(3, dim=0)
            return [(base + f'q_proj.{kind}', q), (base + f'k_proj.{kind}', k),
                    (base + f'v_proj.{kind}', v)]
        return [(base + what, value)]
    m = _NORM.match(key)
    if m and m.group(1) in _STACKS:
        stack, role = _STACKS[m.group(1)]
        return [(f'{stack}.{m.group(2)}.{role}.{m.group(3)}.{m.group(4)}', value)]
    for prefix, ours in (('lin_squeeze_head.', 'squeeze.'), ('adapter.net.0.', 'adapter.net.0.'),
                         ('adapter.net.3.', 'adapter.net.3.')):
        if key.startswith(prefix):
            what = key[len(prefix):]
            if what == 'kernel':
                return [(ours + 'weight', value.t())]       # ME 1x1 kernel is (in, out)
            if what == 'bias':
                return [(ours + 'bias', value.reshape(-1))]
            return None
    if key.startswith('adapter.net.1.bn.'):
        return [('adapter.net.1.' + key[len('adapter.net.1.bn.'):], value)]
    for prefix, ours in (('mask_embed_head.', 'object_mask_embed.layers.'),
                         ('part_mask_embed_head.', 'part_mask_embed.layers.')):
        if key.startswith(prefix):
            return [(ours + key[len(prefix):], value)]
    if key in ('bg_query_feat.weight', 'bg_query_pos.weight', 'pos_enc.gauss_B',
               'decoder_norm.weight', 'decoder_norm.bias'):
        return [(key, value)]
    return None


def _official_tensors(state_dict):
    """Return the state dict of an official checkpoint (or of its 'model' entry), unwrapped."""
    if isinstance(state_dict, dict) and 'model' in state_dict and isinstance(
            state_dict['model'], dict):
        state_dict = state_dict['model']
    if not isinstance(state_dict, dict):
        raise CheckpointError('an official checkpoint must be a dict of tensors')
    return {k[len('module.'):] if k.startswith('module.') else k: v
            for k, v in state_dict.items()}


def _match_official(state_dict, ours):
    """Map official keys onto ours; returns (new, loaded, unexpected, ignored, mismatch)."""
    new, loaded = {}, []
    unexpected, ignored, mismatch = [], [], []
    for key, value in state_dict.items():
        if key.endswith(_IGNORED_SUFFIXES) or key.startswith(_KNOWN_UNUSED):
            ignored.append(key)
            continue
        mapped = _map_official_key(key, value) if torch.is_tensor(value) else None
        if mapped is None:
            unexpected.append(key)
            continue
        for ok, ov in mapped:
            if ok not in ours:
                unexpected.append(key)
            elif tuple(ours[ok].shape) != tuple(ov.shape):
                mismatch.append((key, tuple(ov.shape), tuple(ours[ok].shape)))
            else:
                new[ok] = ov.to(ours[ok].dtype)
                loaded.append(ok)
    return new, loaded, unexpected, ignored, mismatch


def load_official_state_dict(state_dict, model=None):
    """
    Map an official AGILE3D/PinPoint3D state dict onto a ``reference`` model.

    Accepts the whole checkpoint dict (with a 'model' entry) or the state dict itself.
    Returns (model in eval mode, OfficialLoadReport).
    """
    from pinpoint3d_core.model.pinpoint3d import PinPoint3D
    state_dict = _official_tensors(state_dict)
    if model is None:
        model = PinPoint3D('reference')
    ours = model.state_dict()
    new, loaded, unexpected, ignored, mismatch = _match_official(state_dict, ours)
    missing = sorted(set(ours) - set(new))
    model.load_state_dict(new, strict=False)
    source = 'pinpoint3d' if any(k.startswith('p_c2o_attention.') for k in state_dict) \
        else 'agile3d'
    model.eval()
    return model, OfficialLoadReport(source, sorted(loaded), missing, sorted(set(unexpected)),
                                     sorted(ignored), mismatch)


def load_official_checkpoint(path):
    """Read an official ``.pth`` file (it pickles an argparse.Namespace) and map it."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f'official checkpoint {path} does not exist')
    data = safe_torch_load(path, what='official checkpoint',
                           safe_globals=[argparse.Namespace])
    return load_official_state_dict(data)
