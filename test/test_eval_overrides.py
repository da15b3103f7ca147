"""Inference-time config overrides of ``pinpoint3d evaluate`` (same tensors, other flags)."""

import json

import numpy as np
from pinpoint3d_core.cli import main
from pinpoint3d_core.evaluation.overrides import (apply_overrides, override_label,
                                                  OverrideError, parse_overrides)
from pinpoint3d_core.model.checkpoint import save_checkpoint
from pinpoint3d_core.scene import save_scene
from pinpoint3d_core.session import Segmenter
from pinpoint3d_core.toyscenes import toy_scene
import pytest


def test_parse_types_and_errors():
    got = parse_overrides(['tam_all_layers=false', 'max_tokens=none,token_stride=3',
                           'gate_parts_by_object=1', 'voxel_size=0.1'])
    assert got == {'tam_all_layers': False, 'max_tokens': None, 'token_stride': 3,
                   'gate_parts_by_object': True, 'voxel_size': 0.1}
    assert parse_overrides(['s2c_part_layers=1,2']) == {'s2c_part_layers': (1, 2)}
    assert override_label({'b': True, 'a': 2}) == 'a=2+b=True'
    for bad in ('tam_all_layers', 'no_such_field=1', 'name=reference',
                'tam_all_layers=maybe', 'token_stride=two'):
        with pytest.raises(OverrideError):
            parse_overrides([bad])


def _part_logits(seg, scene):
    import torch
    from pinpoint3d_core.model.pinpoint3d import VoxelClick
    from pinpoint3d_core.model.voxelize import voxelize
    vox = voxelize(scene.coords, colors=scene.colors, voxel_size=seg.config.voxel_size)
    labels = scene.part_ids[vox.rep_rows]
    owner = int(scene.object_ids[scene.part_ids == labels[labels > 0][0]][0])
    parts = [int(p) for p in np.unique(scene.part_ids[scene.object_ids == owner]) if p > 0]
    clicks = [VoxelClick(voxel=int(np.flatnonzero(labels == p)[0]), object_id=owner,
                         part_id=p, order=i) for i, p in enumerate(parts)]
    with torch.no_grad():
        out = seg.model.decode(seg.model.encode(vox), clicks, granularity='both')
    return out.part_logits[owner]


def test_apply_keeps_tensors_changes_behaviour_and_refuses_new_tensors():
    scene = toy_scene(0)
    seg = Segmenter.untrained('small', seed=3, device='cpu')
    before = {k: v.clone() for k, v in seg.model.state_dict().items()}
    logits0 = _part_logits(seg, scene)
    apply_overrides(seg, {'gate_parts_by_object': False, 'tam_all_layers': False})
    assert not seg.config.gate_parts_by_object and not seg.config.tam_all_layers
    after = seg.model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch_equal(before[k], after[k]) for k in before)
    logits1 = _part_logits(seg, scene)
    assert logits0.shape == logits1.shape
    assert not torch_equal(logits0, logits1)
    assert bool((logits0 <= 0).all()) and bool((logits1 > 0).any())   # log-probs vs logits
    # Construction-time flags take effect because the model is rebuilt.
    apply_overrides(seg, {'s2c_part_layers': (0, 1, 2)})
    assert [layer.scene_update for layer in seg.model.part_layers] == [True, True, True]
    with pytest.raises(OverrideError, match='parameter set'):
        apply_overrides(seg, {'num_bg_queries': 5})
    assert seg.config.num_bg_queries == 10   # unchanged after the refusal


def torch_equal(a, b):
    return bool((a == b).all())


def test_cli_override_labels_outputs(tmp_path, capsys):
    save_scene(tmp_path / 'toy0.npz', toy_scene(0))
    ckpt = tmp_path / 'm.pt'
    save_checkpoint(ckpt, Segmenter.untrained('small', seed=1, device='cpu').model)
    out = tmp_path / 'eval'
    rc = main(['evaluate', '--scenes', str(tmp_path / 'toy0.npz'), '--protocol', 'all-part',
               '--model', str(ckpt), '--override', 'tam_all_layers=false', '--max-clicks', '1',
               '--limit', '1', '--out', str(out), '--device', 'cpu'])
    assert rc == 0
    data = json.loads((out / 'summary.json').read_text())
    assert data['model'] == 'm[tam_all_layers=False]'
    assert data['overrides'] == {'tam_all_layers': False}
    assert data['config']['tam_all_layers'] is False
    assert data['config']['gate_parts_by_object'] is True
    capsys.readouterr()
    rc = main(['evaluate', '--scenes', str(tmp_path / 'toy0.npz'), '--model', str(ckpt),
               '--override', 'planes=8,8,8,8,8,8,8,8', '--limit', '1', '--device', 'cpu'])
    assert rc == 1 and 'changes the parameter set' in capsys.readouterr().err


def test_model_names_stay_unique():
    from pinpoint3d_core.evaluation.cli import model_names
    assert model_names(['runs/a/model.pt', 'runs/b/model.pt', 'baseline']) == [
        'a/model', 'b/model', 'baseline']
    assert model_names(['x/m.pt', 'baseline']) == ['m', 'baseline']
