"""
Evaluation-time overrides: run one checkpoint with some config fields changed.

``InferenceConfig`` fields (focus box, inference rules, snap radius) change the segmenter's
inference settings. ``ModelConfig`` fields are allowed only where they keep the parameter set
(e.g. ``tam_all_layers``, ``gate_parts_by_object``, ``part_queries_from_refined``,
``token_stride``, ``max_tokens``, ``part_s2c_inside_only``): the model is rebuilt from the
changed config and the checkpoint's tensors are loaded strictly, so a field that adds, removes
or reshapes a tensor is refused.
"""

import dataclasses

from pinpoint3d_core.errors import Pinpoint3DError

_TRUE = ('1', 'true', 'yes', 'on')
_FALSE = ('0', 'false', 'no', 'off')
# Changing these would only rename or mislabel the model.
_FROZEN = ('name',)


class OverrideError(Pinpoint3DError):
    """An ``--override KEY=VALUE`` that names no field, has a bad value or changes weights."""


def _defaults():
    """Every overridable field with its default value (network fields, then inference)."""
    from pinpoint3d_core.inference.config import InferenceConfig
    from pinpoint3d_core.model.config import ModelConfig
    out = {f.name: getattr(ModelConfig(), f.name) for f in dataclasses.fields(ModelConfig)}
    out.update({f.name: getattr(InferenceConfig(), f.name)
                for f in dataclasses.fields(InferenceConfig)})
    return out


def _convert(key, text, default):
    """Parse ``text`` to the type of the field's default value."""
    from pinpoint3d_core.inference.config import field_names
    low = text.strip().lower()
    try:
        if default is None and key in field_names():     # Optional[float] settings
            return None if low in ('none', 'null') else float(low)
        if isinstance(default, bool):
            if low in _TRUE:
                return True
            if low in _FALSE:
                return False
            raise ValueError(text)
        if isinstance(default, str):
            return text.strip()
        if isinstance(default, tuple):
            items = [v.strip() for v in low.strip('()[] ').split(',') if v.strip()]
            return tuple(int(v) if v.lstrip('-').isdigit() else float(v) for v in items)
        if default is None or isinstance(default, int):
            if low in ('none', 'null'):
                return None
            return int(low)
        if isinstance(default, float):
            return float(low)
    except ValueError:
        pass
    kind = 'true/false' if isinstance(default, bool) else type(default).__name__
    raise OverrideError(f'--override {key}={text}: expected a {kind} value '
                        f'(e.g. {key}={default if default is not None else "none"})')


def _split(item):
    """Split ``a=1,b=2`` at commas that start a new ``KEY=``; ``c=1,2`` stays one tuple."""
    parts = []
    for seg in item.split(','):
        if parts and '=' not in seg:
            parts[-1] += ',' + seg
        elif seg.strip():
            parts.append(seg)
    return parts


def parse_overrides(items):
    """Turn ``['tam_all_layers=false', 'max_tokens=4096']`` into a dict of typed values."""
    defaults = _defaults()
    out = {}
    for item in items or ():
        for part in _split(item):
            key, sep, value = part.partition('=')
            key = key.strip()
            if not sep:
                raise OverrideError(f'--override {part!r}: write KEY=VALUE, '
                                    'e.g. --override tam_all_layers=false')
            if key not in defaults or key in _FROZEN:
                names = ', '.join(sorted(k for k in defaults if k not in _FROZEN))
                raise OverrideError(f'--override {key}: not a config field; one of {names}')
            out[key] = _convert(key, value, defaults[key])
    return out


def override_label(overrides):
    """Return a short, file-name-safe label such as ``tam_all_layers=False``."""
    def fmt(v):
        if isinstance(v, tuple):
            return '-'.join(str(x) for x in v) or 'none'
        return str(v)
    return '+'.join(f'{k}={fmt(v)}' for k, v in sorted(overrides.items()))


def apply_overrides(segmenter, overrides):
    """
    Change the segmenter's inference settings, and its model where network fields change.

    A changed network is rebuilt (rather than editing ``model.config``), which keeps
    construction-time choices consistent and lets a strict ``load_state_dict`` prove the
    parameter set is unchanged.
    """
    from pinpoint3d_core.inference.config import field_names
    if not overrides:
        return segmenter
    inference = {k: v for k, v in overrides.items() if k in field_names()}
    network = {k: v for k, v in overrides.items() if k not in field_names()}
    if inference:
        segmenter.inference = segmenter.inference.replace(**inference)
    if network:
        _rebuild(segmenter, network)
    segmenter.metadata = dict(segmenter.metadata, config_overrides=dict(overrides))
    return segmenter


def _rebuild(segmenter, overrides):
    """Swap the segmenter's model for one built from the changed config, same tensors."""
    import torch
    from pinpoint3d_core.model.pinpoint3d import PinPoint3D
    old = segmenter.model
    config = old.config.replace(**overrides)
    with torch.random.fork_rng(devices=[]):
        model = PinPoint3D(config)
    try:
        model.load_state_dict(old.state_dict(), strict=True)
    except RuntimeError as exc:
        lines = [ln.strip() for ln in str(exc).strip().splitlines()[1:3]]
        raise OverrideError(
            f'--override {override_label(overrides)} changes the parameter set of the '
            f'{old.config.name!r} checkpoint ({" ".join(lines)[:300]}); only fields that '
            'keep every tensor can be changed at evaluation time') from None
    segmenter.model = model.to(segmenter.device).eval()
