"""
Sparse residual U-Net of the Res16UNet family (MinkowskiEngine).

Module names and parameter shapes follow the reference ``Res16UNet34C`` exactly (notes §1.2,
§5.3) so official checkpoints load key for key; depth and widths come from the config.
"""

from pinpoint3d_core.me_shim import import_minkowski
import torch
from torch import nn


class BasicBlock(nn.Module):
    """3x3x3 conv-BN-ReLU-conv-BN with identity or 1x1 projection shortcut, then ReLU."""

    def __init__(self, me, inplanes, planes, downsample=None, bn_momentum=0.1):
        super().__init__()
        self.conv1 = me.MinkowskiConvolution(inplanes, planes, kernel_size=3, dimension=3)
        self.norm1 = me.MinkowskiBatchNorm(planes, momentum=bn_momentum)
        self.conv2 = me.MinkowskiConvolution(planes, planes, kernel_size=3, dimension=3)
        self.norm2 = me.MinkowskiBatchNorm(planes, momentum=bn_momentum)
        self.relu = me.MinkowskiReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        """Apply the block."""
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.norm1(self.conv1(x)))
        out = self.norm2(self.conv2(out))
        return self.relu(out + residual)


class Res16UNet(nn.Module):
    """Encoder-decoder with 4 stride-2 levels; output at stride 1 with ``planes[7]`` channels."""

    def __init__(self, config):
        super().__init__()
        me = import_minkowski()
        self._me = me
        planes, layers, mom = config.planes, config.layers, config.bn_momentum
        if len(planes) != 8 or len(layers) != 8:
            raise ValueError('Res16UNet needs 8 plane widths and 8 layer counts')
        self.out_channels = planes[7]
        self.inplanes = config.init_dim
        self.conv0p1s1 = me.MinkowskiConvolution(
            config.in_channels, self.inplanes, kernel_size=config.conv1_kernel_size, dimension=3)
        self.bn0 = me.MinkowskiBatchNorm(self.inplanes, momentum=mom)
        for i in range(4):
            stride = 2 ** i
            setattr(self, f'conv{i + 1}p{stride}s2', me.MinkowskiConvolution(
                self.inplanes, self.inplanes, kernel_size=2, stride=2, dimension=3))
            setattr(self, f'bn{i + 1}', me.MinkowskiBatchNorm(self.inplanes, momentum=mom))
            setattr(self, f'block{i + 1}', self._make_layer(me, planes[i], layers[i], mom))
        # Channels of the encoder skips at strides 8, 4, 2, 1.
        skips = [planes[2], planes[1], planes[0], config.init_dim]
        for j in range(4):
            stride = 2 ** (4 - j)
            setattr(self, f'convtr{j + 4}p{stride}s2', me.MinkowskiConvolutionTranspose(
                self.inplanes, planes[4 + j], kernel_size=2, stride=2, dimension=3))
            setattr(self, f'bntr{j + 4}', me.MinkowskiBatchNorm(planes[4 + j], momentum=mom))
            self.inplanes = planes[4 + j] + skips[j]
            setattr(self, f'block{j + 5}', self._make_layer(me, planes[4 + j], layers[4 + j], mom))
        self.relu = me.MinkowskiReLU(inplace=True)
        for m in self.modules():
            if isinstance(m, me.MinkowskiConvolution) or isinstance(
                    m, me.MinkowskiConvolutionTranspose):
                me.utils.kaiming_normal_(m.kernel, mode='fan_out', nonlinearity='relu')
            if isinstance(m, me.MinkowskiBatchNorm):
                nn.init.constant_(m.bn.weight, 1)
                nn.init.constant_(m.bn.bias, 0)

    def _make_layer(self, me, planes, blocks, bn_momentum):
        downsample = None
        if self.inplanes != planes:
            downsample = nn.Sequential(
                me.MinkowskiConvolution(self.inplanes, planes, kernel_size=1, dimension=3),
                me.MinkowskiBatchNorm(planes, momentum=bn_momentum))
        seq = [BasicBlock(me, self.inplanes, planes, downsample)]
        self.inplanes = planes
        seq += [BasicBlock(me, planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*seq)

    def forward(self, x):
        """Map a stride-1 sparse tensor to stride-1 features on the same coordinates."""
        me = self._me
        out = self.relu(self.bn0(self.conv0p1s1(x)))
        skips = [out]
        for i in range(4):
            stride = 2 ** i
            down = getattr(self, f'conv{i + 1}p{stride}s2')
            out = self.relu(getattr(self, f'bn{i + 1}')(down(out)))
            out = getattr(self, f'block{i + 1}')(out)
            skips.append(out)
        for j in range(4):
            stride = 2 ** (4 - j)
            out = getattr(self, f'convtr{j + 4}p{stride}s2')(out)
            out = self.relu(getattr(self, f'bntr{j + 4}')(out))
            out = me.cat(out, skips[3 - j])
            out = getattr(self, f'block{j + 5}')(out)
        return out


def backbone_features(backbone, coords_list, feats_list, device):
    """Run the backbone on a batch; return one (V_i, C) tensor per scene in input row order."""
    me = import_minkowski()
    coords = me.utils.batched_coordinates(
        [torch.as_tensor(c, dtype=torch.int32) for c in coords_list], device=device)
    feats = torch.cat([torch.as_tensor(f, dtype=torch.float32) for f in feats_list]).to(device)
    x = me.SparseTensor(features=feats, coordinates=coords, device=device)
    out = backbone(x)
    feats_out = out.F
    # ME may store unique coordinates in another order; put rows back in the input order.
    index = getattr(x, 'unique_index', None)
    if index is not None and len(index) == feats_out.shape[0]:
        index = index.to(feats_out.device).long()
        if not torch.equal(index, torch.arange(len(index), device=index.device)):
            ordered = torch.empty_like(feats_out)
            ordered[index] = feats_out
            feats_out = ordered
    sizes = [len(c) for c in coords_list]
    return list(torch.split(feats_out, sizes))
