"""
Which segmenter the node runs, from its ``preset``, ``checkpoint``, ``device`` and settings.

One rule, the same as ``Segmenter.load`` and the launch file: ``pinpoint3d_core.presets`` names
each preset's weights file; an explicit ``checkpoint`` wins over the preset and the log says so;
a preset whose weights file is absent runs that preset's non-learned baseline, and says so in
``describe()``. Inference settings given as node parameters are InferenceConfig fields
(``pinpoint3d_core.inference.config``) laid over the weights' own.
"""

import dataclasses
import os
from typing import Callable, Dict, Optional

from pinpoint3d_core.presets import get_preset

UNTRAINED = 'untrained'


@dataclasses.dataclass
class Choice:
    """What was asked for and what it resolved to (for logs and diagnostics)."""

    segmenter: object
    description: str          # segmenter.describe(): which weights, which masks, which device
    notes: list               # lines to log at info level (what replaced what)
    warnings: list            # lines to log at warning level (untrained, baseline fallback)

    @property
    def untrained(self) -> bool:
        """Return True when the weights are random (tests and plumbing only)."""
        return bool(getattr(self.segmenter, 'untrained', False))

    @property
    def baseline(self) -> bool:
        """Return True when no weights run: the preset's baseline stands in for them."""
        return bool(getattr(self.segmenter, 'metadata', {}).get('missing_weights'))


def shipped_checkpoint(name: str) -> str:
    """Return the path of a shipped weights file: the first place the core searches with it."""
    from pinpoint3d_core.model.checkpoint import default_checkpoint_candidates
    candidates = default_checkpoint_candidates(name)
    return str(next((c for c in candidates if c.is_file()), candidates[0]))


def load(preset: str, checkpoint: str, device: str,
         inference: Optional[Dict[str, float]] = None,
         segmenter_class: Optional[Callable] = None) -> Choice:
    """
    Load the segmenter the parameters ask for; exceptions mean "not loaded" (the node says why).

    ``checkpoint``: '' = the preset's weights; a path; a bare file name = that shipped file;
    ``untrained`` or ``untrained:<config>`` = random weights for tests. ``preset``: indoor,
    tabletop or lidar ('' = indoor). ``inference``: InferenceConfig fields to change.
    """
    if segmenter_class is None:
        from pinpoint3d_core.session import Segmenter as segmenter_class
    preset = preset or 'indoor'
    chosen = get_preset(preset)          # unknown names fail here, with the choices
    notes, warnings = [], []
    inference = dict(inference or {})
    if checkpoint.startswith(UNTRAINED):
        config = checkpoint.partition(':')[2] or 'small'
        segmenter = segmenter_class.untrained(config, device=device, inference=inference or None)
        warnings.append(f'UNTRAINED weights ({segmenter.source}): segmentations are '
                        'meaningless, for tests and plumbing only')
    elif checkpoint:
        path = checkpoint
        if os.path.basename(path) == path and not os.path.isfile(path):
            path = shipped_checkpoint(path)          # a shipped file, by name
        segmenter = segmenter_class.load(path, device=device, inference=inference or None)
        if os.path.basename(path) != chosen.weights:
            notes.append(f"checkpoint {checkpoint} given: it replaces preset '{preset}'s "
                         f'weights {chosen.weights}')
    else:
        segmenter = segmenter_class.load(preset=preset, device=device,
                                         inference=inference or None)
        if getattr(segmenter, 'metadata', {}).get('missing_weights'):
            warnings.append(
                f"preset '{preset}': its weights {chosen.weights} are not installed, so the "
                "preset's non-learned baseline runs (geodesic nearest click, no learning); "
                'pass checkpoint:=<file.pt> for a learned model')
    if inference:
        notes.append(f"inference settings replace the weights' own: {inference}")
    return Choice(segmenter, segmenter.describe(), notes, warnings)
