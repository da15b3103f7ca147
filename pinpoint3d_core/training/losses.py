"""
Training losses for click-conditioned mask logits.

Logits are (V, 1 + G): column 0 = background, column g = group g (object or part), as the
model's mask heads produce them. Two terms per output:

- cross-entropy over the columns (the multi-class form of the reference's "bce" term);
- a real per-mask soft Dice: for every column, 1 - 2|P.T| / (|P| + |T|) over the voxels with
  softmax probabilities P and one-hot targets T, averaged over columns. The reference's
  "dice" reduces to a per-point 1 - p(true class) and does not reward mask overlap.

Both are weighted per voxel by click proximity (voxels within ``near`` metres of a click weigh
up to ``w_near``, far voxels ``w_far``), as in the reference, so errors next to a click that
the model ignored cost most. Intermediate decoder layers get the same terms (``aux_weight``).
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class LossConfig:
    """Weights of the loss terms."""

    ce_weight: float = 1.0
    dice_weight: float = 2.0
    aux_weight: float = 1.0
    object_weight: float = 1.0
    part_weight: float = 1.0
    near: float = 0.3
    w_near: float = 2.0
    w_far: float = 0.8


def click_weights(xyz, click_xyz, near=0.3, w_near=2.0, w_far=0.8):
    """
    Weigh voxels by closeness to the nearest click (d).

    w = w_far + (w_near - w_far) * (1 - min(d, near) / near); all w_far without clicks.
    """
    if click_xyz is None or len(click_xyz) == 0:
        return torch.full((len(xyz),), float(w_far), dtype=xyz.dtype, device=xyz.device)
    d = torch.cdist(xyz.float(), click_xyz.float()).min(dim=1).values
    return (w_far + (w_near - w_far) * (1.0 - d.clamp(max=near) / near)).to(xyz.dtype)


def ce_loss(logits, target, weight=None):
    """Cross-entropy per voxel, times its weight, averaged over voxels."""
    ce = F.cross_entropy(logits, target, reduction='none')
    if weight is not None:
        ce = ce * weight
    return ce.mean()


def dice_loss(logits, target, weight=None, eps=1.0):
    """Soft Dice per mask column (background included), averaged over columns."""
    prob = logits.softmax(dim=1)
    onehot = F.one_hot(target, logits.shape[1]).to(prob.dtype)
    if weight is not None:
        w = weight[:, None].to(prob.dtype)
        prob_w, onehot_w = prob * w, onehot * w
    else:
        prob_w, onehot_w = prob, onehot
    inter = (prob_w * onehot).sum(dim=0)
    denom = prob_w.sum(dim=0) + onehot_w.sum(dim=0)
    return (1.0 - (2.0 * inter + eps) / (denom + eps)).mean()


def mask_loss(logits, target, weight=None, cfg=LossConfig()):
    """Return (weighted CE + Dice, {'ce': float, 'dice': float})."""
    ce = ce_loss(logits, target, weight)
    dice = dice_loss(logits, target, weight)
    total = cfg.ce_weight * ce + cfg.dice_weight * dice
    return total, {'ce': float(ce.detach()), 'dice': float(dice.detach())}


def level_loss(final_logits, aux_logits, target, weight=None, cfg=LossConfig()):
    """Sum the final layer and ``aux_weight`` x each earlier layer of one level."""
    total, parts = mask_loss(final_logits, target, weight, cfg)
    for logits in aux_logits or ():
        aux, _ = mask_loss(logits, target, weight, cfg)
        total = total + cfg.aux_weight * aux
    return total, parts


def interactive_loss(levels, weight=None, cfg=LossConfig()):
    """
    Sum the losses of the supervised levels.

    ``levels`` maps 'object' / 'part' to (final_logits, [aux_logits...], target); a level
    that is None or absent is not supervised (stage 2 trains only the part level).
    Returns (total, log dict with per-level CE/Dice and totals).
    """
    total = None
    log = {}
    for name, scale in (('object', cfg.object_weight), ('part', cfg.part_weight)):
        item = levels.get(name)
        if item is None:
            continue
        final, aux, target = item
        loss, parts = level_loss(final, aux, target, weight, cfg)
        log[f'{name}_ce'] = parts['ce']
        log[f'{name}_dice'] = parts['dice']
        log[f'{name}_loss'] = float(loss.detach())
        loss = scale * loss
        total = loss if total is None else total + loss
    if total is None:
        raise ValueError('interactive_loss needs at least one supervised level')
    log['loss'] = float(total.detach())
    return total, log
