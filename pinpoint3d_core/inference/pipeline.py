"""
Which inference rules run, in which order, for an InferenceConfig.

Object rules come first (every part rule reads the object mask through ``ViewLabels.labels``),
then the part rules. A rule that is off is not in the list, so a list printed in a log or a
test says exactly what ran.
"""

import functools
from typing import Callable, List

from pinpoint3d_core.inference import rules
from pinpoint3d_core.inference.config import InferenceConfig
from pinpoint3d_core.inference.view import ViewLabels

Rule = Callable[[ViewLabels], None]


def inference_rules(cfg: InferenceConfig) -> List[Rule]:
    """Return the rules ``cfg`` switches on, in the order they run."""
    steps: List[Rule] = [rules.argmax_objects, rules.override_clicked_objects]
    if cfg.component_gap_voxels > 0:
        steps.append(rules.keep_clicked_pieces)
    if cfg.part_prior_voxels > 0:
        steps.append(functools.partial(rules.part_prior,
                                       temperature_voxels=cfg.part_prior_voxels))
    else:
        steps.append(rules.argmax_parts)
    steps.append(rules.override_clicked_parts)
    if cfg.click_claim_voxels > 0:
        steps.append(functools.partial(rules.claim_near_part_clicks,
                                       radius_voxels=cfg.click_claim_voxels))
    return steps


def rule_names(steps: List[Rule]) -> List[str]:
    """Return readable names of rules (``part_prior(temperature_voxels=0.5)``)."""
    out = []
    for step in steps:
        if isinstance(step, functools.partial):
            args = ', '.join(f'{k}={v}' for k, v in step.keywords.items())
            out.append(f'{step.func.__name__}({args})')
        else:
            out.append(step.__name__)
    return out


def apply_rules(view: ViewLabels, steps: List[Rule]) -> ViewLabels:
    """Run ``steps`` on ``view`` in order; returns the view."""
    for step in steps:
        step(view)
    return view
