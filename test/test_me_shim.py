"""MinkowskiEngine imports through the project's shim and trains a sparse convolution."""

import numpy as np
from pinpoint3d_core.me_shim import import_minkowski
import torch


def test_sparse_convolution_forward_and_backward():
    me = import_minkowski()
    rng = np.random.default_rng(0)
    coords = np.unique(rng.integers(0, 20, size=(500, 3)), axis=0)
    feats = torch.from_numpy(rng.normal(size=(len(coords), 3)).astype(np.float32))
    batched = me.utils.batched_coordinates([torch.from_numpy(coords).int()])
    x = me.SparseTensor(feats.requires_grad_(), coordinates=batched)
    conv = me.MinkowskiConvolution(3, 8, kernel_size=3, stride=1, dimension=3)
    down = me.MinkowskiConvolution(8, 4, kernel_size=2, stride=2, dimension=3)
    y = down(conv(x))
    assert y.F.shape[1] == 4 and 0 < y.F.shape[0] < len(coords)
    y.F.pow(2).sum().backward()
    assert conv.kernel.grad is not None and torch.count_nonzero(conv.kernel.grad) > 0
    assert feats.grad is not None and torch.isfinite(feats.grad).all()


def test_shim_is_the_only_minkowski_import():
    import pathlib
    root = pathlib.Path(__file__).resolve().parents[1]
    offenders = [str(p.relative_to(root)) for d in ('pinpoint3d_core', 'pinpoint3d_ros')
                 for p in (root / d).rglob('*.py')
                 if p.name != 'me_shim.py' and 'import MinkowskiEngine' in p.read_text()]
    assert offenders == []


def test_core_has_no_ros_imports():
    import pathlib
    import re
    root = pathlib.Path(__file__).resolve().parents[1]
    pattern = re.compile(r'^\s*(from|import)\s+(rclpy|sensor_msgs|geometry_msgs|std_msgs|'
                         r'visualization_msgs|pinpoint3d\.|pinpoint3d_ros|tf2_ros)', re.M)
    offenders = [str(p.relative_to(root)) for p in (root / 'pinpoint3d_core').rglob('*.py')
                 if pattern.search(p.read_text())]
    assert offenders == []
