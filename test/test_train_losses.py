"""Loss terms: per-mask Dice on known cases, click weights, gradients."""

from pinpoint3d_core.training import losses
import pytest
import torch


def _logits_from_labels(labels, cols, scale=50.0):
    return torch.nn.functional.one_hot(labels, cols).float() * scale


def test_dice_is_zero_for_perfect_and_one_for_disjoint_masks():
    target = torch.tensor([0, 0, 1, 1, 2, 2])
    perfect = _logits_from_labels(target, 3)
    assert losses.dice_loss(perfect, target, eps=1e-6).item() == pytest.approx(0.0, abs=1e-5)
    wrong = _logits_from_labels(torch.tensor([1, 1, 2, 2, 0, 0]), 3)
    assert losses.dice_loss(wrong, target, eps=1e-6).item() == pytest.approx(1.0, abs=1e-5)


def test_dice_is_per_mask_not_per_point():
    # Column 1: target 2 points, prediction covers 1 of them + 1 extra -> Dice 0.5.
    target = torch.tensor([1, 1, 0, 0])
    pred = torch.tensor([1, 0, 1, 0])
    d = losses.dice_loss(_logits_from_labels(pred, 2), target, eps=1e-6).item()
    # Background column: the same geometry -> Dice 0.5; mean loss = 0.5.
    assert d == pytest.approx(0.5, abs=1e-4)
    # A point-wise "1 - p(true)" would give the same 0.5 here, so also check a skewed case:
    target = torch.tensor([1, 0, 0, 0, 0, 0, 0, 0])
    pred = torch.tensor([0, 0, 0, 0, 0, 0, 0, 0])
    d = losses.dice_loss(_logits_from_labels(pred, 2), target, eps=1e-6).item()
    # fg Dice = 0 (loss 1); bg Dice = 2*7/(8+7) -> loss 1/15; mean = 8/15.
    assert d == pytest.approx((1 + 1 / 15) / 2, abs=1e-4)


def test_click_weights_near_and_far():
    xyz = torch.tensor([[0.0, 0, 0], [0.15, 0, 0], [1.0, 0, 0]])
    w = losses.click_weights(xyz, xyz[:1])
    assert w.tolist() == pytest.approx([2.0, 1.4, 0.8])
    assert losses.click_weights(xyz, xyz[:0]).tolist() == pytest.approx([0.8] * 3)


def test_gradients_flow_through_final_and_aux_levels():
    torch.manual_seed(0)
    final = torch.randn(20, 3, requires_grad=True)
    aux = torch.randn(20, 3, requires_grad=True)
    part = torch.randn(20, 4, requires_grad=True)
    target = torch.randint(0, 3, (20,))
    ptarget = torch.randint(0, 4, (20,))
    total, log = losses.interactive_loss(
        {'object': (final, [aux], target), 'part': (part, [], ptarget)},
        weight=torch.ones(20))
    total.backward()
    for t in (final, aux, part):
        assert t.grad is not None and t.grad.abs().sum() > 0
    assert log['loss'] == pytest.approx(total.item())
    assert {'object_ce', 'object_dice', 'part_ce', 'part_dice'} <= set(log)
    with pytest.raises(ValueError):
        losses.interactive_loss({})
