"""InferenceConfig: saved beside the network, read from old checkpoints, per-session copies."""

from pinpoint3d_core.inference.config import (
    default_inference, InferenceConfig, resolve_inference, split_legacy)
from pinpoint3d_core.inference.pipeline import inference_rules, rule_names
from pinpoint3d_core.model.config import get_config, ModelConfig
import pytest


def test_rules_that_are_off_are_not_in_the_list():
    names = rule_names(inference_rules(InferenceConfig()))
    assert names == ['argmax_objects', 'override_clicked_objects', 'keep_clicked_pieces',
                     'part_prior(temperature_voxels=0.5)', 'override_clicked_parts']
    plain = rule_names(inference_rules(default_inference('reference')))
    assert plain == ['argmax_objects', 'override_clicked_objects', 'argmax_parts',
                     'override_clicked_parts']
    claim = rule_names(inference_rules(InferenceConfig(click_claim_voxels=3.0)))
    assert claim[-1] == 'claim_near_part_clicks(radius_voxels=3.0)'


def test_legacy_model_config_dicts_split_into_network_and_inference():
    legacy = dict(get_config('small').to_dict(), focus_half_extent=2.0, click_claim_voxels=3.0,
                  max_points=5)
    network, inference = split_legacy(legacy)
    assert ModelConfig.from_dict(network) == get_config('small')
    assert ModelConfig.from_dict(legacy) == get_config('small')   # old keys are skipped
    assert InferenceConfig.from_dict(inference).click_claim_voxels == 3.0
    with pytest.raises(Exception, match='unknown fields'):
        InferenceConfig.from_dict({'no_such_setting': 1})


def test_resolve_inference_accepts_none_dicts_and_configs():
    base = default_inference('small')
    assert resolve_inference(None, base) is base
    assert resolve_inference({'snap_radius': 0.2}, base).snap_radius == 0.2
    assert resolve_inference({'snap_radius': 0.2}, base).focus_half_extent == 2.0
    with pytest.raises(ValueError, match='unknown inference settings'):
        resolve_inference({'focus': 1.0}, base)


def test_checkpoints_store_inference_and_old_ones_still_load(tmp_path, minkowski):
    import torch
    from pinpoint3d_core.model.checkpoint import load_checkpoint, save_checkpoint
    from pinpoint3d_core.model.pinpoint3d import PinPoint3D
    from pinpoint3d_core.session import Segmenter
    model = PinPoint3D('small')
    path = tmp_path / 'new.pt'
    save_checkpoint(path, model, inference=InferenceConfig(focus_half_extent=0.7))
    assert load_checkpoint(path).inference.focus_half_extent == 0.7
    # an old-format file: inference fields inside 'config', no 'inference' entry
    data = torch.load(path, weights_only=True)
    data['config'].update(focus_half_extent=1.5, part_prior_voxels=0.0)
    del data['inference']
    old = tmp_path / 'old.pt'
    torch.save(data, old)
    seg = Segmenter.load(old, device='cpu')
    assert seg.inference.focus_half_extent == 1.5 and seg.inference.part_prior_voxels == 0.0
    assert seg.config == get_config('small')
    # a session may run with other settings than its segmenter, without a new model
    session = seg.start(torch.rand(500, 3).numpy(), inference={'focus_half_extent': 0.0})
    assert session.encoding is not None and seg.inference.focus_half_extent == 1.5
