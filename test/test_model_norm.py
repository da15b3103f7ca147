"""Batch norms of the small configs use the scene's own statistics at inference (docs/model.md)."""

import numpy as np
from pinpoint3d_core.model.pinpoint3d import PinPoint3D
from pinpoint3d_core.model.voxelize import voxelize
import pytest
import torch


def _cloud(seed=0):
    rng = np.random.default_rng(seed)
    pts = rng.uniform(0, 2, size=(3000, 3)).astype(np.float32)
    return voxelize(pts, colors=rng.integers(0, 255, size=(3000, 3), dtype=np.uint8),
                    voxel_size=0.05)


def _encode(model, vox, train):
    model.train(train)
    with torch.no_grad():
        return model.encode(vox).features.clone()


@pytest.mark.parametrize('name, scene_stats', [('small', True), ('reference', False)])
def test_eval_normalisation_follows_config(name, scene_stats):
    torch.manual_seed(0)
    model = PinPoint3D(name)
    vox = _cloud()
    # Give the running averages values far from any scene's statistics.
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.fill_(3.0)
            m.running_var.fill_(9.0)
            m.momentum = 0.0   # the train-mode pass below must not move them
    in_train = _encode(model, vox, train=True)
    in_eval = _encode(model, vox, train=False)
    assert model.config.scene_norm_stats is scene_stats
    if scene_stats:
        torch.testing.assert_close(in_eval, in_train, rtol=1e-4, atol=1e-5)
    else:
        assert not torch.allclose(in_eval, in_train, atol=1e-3)
    running = [m.running_mean for m in model.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    assert all(torch.all(r == 3.0) for r in running)   # eval never touches the buffers
