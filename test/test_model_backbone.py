"""Sparse backbone: reference key layout and row alignment of voxel features."""

import numpy as np
from pinpoint3d_core.model.config import get_config
from pinpoint3d_core.model.voxelize import voxelize
from pinpoint3d_core.toyscenes import benchmark_room
import pytest
import torch


@pytest.fixture(scope='module')
def me(minkowski):
    return minkowski


def test_reference_backbone_matches_published_layout(me):
    from pinpoint3d_core.model.backbone import Res16UNet
    bb = Res16UNet(get_config('reference'))
    sd = bb.state_dict()
    assert len(sd) == 372
    params = sum(p.numel() for p in bb.parameters())
    assert params == 37_854_112
    assert tuple(sd['conv0p1s1.kernel'].shape) == (125, 3, 32)
    assert tuple(sd['block5.0.conv1.kernel'].shape) == (27, 384, 256)
    assert tuple(sd['convtr7p2s2.kernel'].shape) == (8, 96, 96)
    assert 'block2.0.downsample.1.bn.running_var' in sd


def test_voxel_rows_stay_aligned_when_order_changes(me):
    from pinpoint3d_core.model.backbone import backbone_features, Res16UNet
    torch.manual_seed(0)
    bb = Res16UNet(get_config('small')).eval()
    room = benchmark_room(3000, seed=2)
    vox = voxelize(room['points'], room['colors'])
    perm = np.random.default_rng(0).permutation(vox.num_voxels)
    with torch.no_grad():
        a = backbone_features(bb, [vox.coords], [vox.features], 'cpu')[0]
        b = backbone_features(bb, [vox.coords[perm]], [vox.features[perm]], 'cpu')[0]
        # A batch of two scenes gives each scene its own rows.
        pair = backbone_features(bb, [vox.coords, vox.coords[perm]],
                                 [vox.features, vox.features[perm]], 'cpu')
    assert a.shape == (vox.num_voxels, get_config('small').planes[7])
    assert torch.allclose(a[perm], b, atol=1e-4)
    assert torch.allclose(pair[0], a, atol=1e-4) and torch.allclose(pair[1], b, atol=1e-4)
