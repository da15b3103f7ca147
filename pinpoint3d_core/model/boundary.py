"""
The boundary network: which links of the surface graph cross from one object to another.

A sparse residual U-Net (the PinPoint3D backbone family, MinkowskiEngine) reads each graph
voxel's appearance, normal, curvature and height over the support plane and gives it an
embedding; a small MLP reads the two ends' embeddings and the link's geometric features and
says how likely the link crosses an object boundary. Geodesic segmentation
(``inference/geodesic.py``) then prices links by that probability: the learned part is local
(is there a boundary here?), the click handling stays the rule that transfers across sensors.
"""

import dataclasses
from typing import Tuple

import numpy as np
from pinpoint3d_core.errors import CheckpointError
from pinpoint3d_core.inference.surface import LINK_FEATURES, SurfaceGraph
import torch
from torch import nn

# Fixed scales that bring every link feature to roughly [0, 1] (all are scale-free already).
_LINK_SCALE = np.array([0.5, 1.0, 0.5, 3.0, 3.0, 3.0, 0.05, 0.05], dtype=np.float32)
_LINK_CLIP = np.array([4.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0], dtype=np.float32)
# Signed concavity (``SurfaceGraph.link_concavity``) x this, clipped to [-1, 1]: the concave
# test's threshold (0.05) maps to 0.2, a right-angle groove or ridge saturates.
_CONCAVITY_SCALE = 4.0
VOXEL_CHANNELS = 8     # appearance (3), |normal| (3), curvature, height over the plane
_PAIR_BLOCK = 16384    # links per MLP block at inference (about 2.6 MB of inputs)


@dataclasses.dataclass(frozen=True)
class BoundaryConfig:
    """Shape of a BoundaryNet (saved in checkpoints)."""

    name: str = 'boundary_small'
    in_channels: int = VOXEL_CHANNELS
    planes: Tuple[int, ...] = (16, 24, 32, 48, 48, 32, 24, 24)
    layers: Tuple[int, ...] = (1, 1, 1, 1, 1, 1, 1, 1)
    init_dim: int = 16
    conv1_kernel_size: int = 3
    bn_momentum: float = 0.02
    embed_dim: int = 16
    hidden: int = 32
    # The link MLP also reads the link's signed concavity seen from the frame's origin (the
    # sensor of a camera-frame cloud); checkpoints from before it have False.
    link_concavity: bool = False

    def to_dict(self) -> dict:
        """Return a torch/JSON-safe dict."""
        out = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}

    @classmethod
    def from_dict(cls, data: dict) -> 'BoundaryConfig':
        """Build from ``to_dict`` output; unknown keys are a CheckpointError."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise CheckpointError(f'boundary config has unknown fields {unknown}')
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


def voxel_inputs(surface: SurfaceGraph) -> np.ndarray:
    """Return (V, 8) float32 network inputs of the graph voxels, each in about [0, 1]."""
    app = surface.appearance
    if app.shape[1] == 3:
        colour = app
    elif app.shape[1] == 1:
        colour = np.repeat(app, 3, axis=1)
    else:
        colour = np.full((surface.size, 3), 0.5)
    height = np.minimum(surface.plane_distance() / (20.0 * surface.voxel), 1.0)
    return np.concatenate([colour, np.abs(surface.normals), 3.0 * surface.curvature[:, None],
                           height[:, None]], axis=1).astype(np.float32)


def link_inputs(surface: SurfaceGraph, concavity: bool = False) -> np.ndarray:
    """Return (L, 8) float32 link features scaled to about [0, 1], (L, 9) with concavity."""
    assert surface.link_features.shape[1] == len(LINK_FEATURES)
    scaled = np.minimum(surface.link_features * _LINK_SCALE, _LINK_CLIP)
    if not concavity:
        return scaled
    signed = np.clip(_CONCAVITY_SCALE * surface.link_concavity(), -1.0, 1.0)
    return np.concatenate([scaled, signed.astype(np.float32)[:, None]], axis=1)


def link_input_count(config: BoundaryConfig) -> int:
    """Return how many link inputs a network of ``config`` reads."""
    return len(LINK_FEATURES) + int(config.link_concavity)


def voxel_grid(surface: SurfaceGraph) -> np.ndarray:
    """Return (V, 3) int32 grid coordinates of the graph voxels (for the sparse network)."""
    return surface.cells


class BoundaryNet(nn.Module):
    """Sparse U-Net embeddings + a link MLP; ``forward`` returns boundary logits per link."""

    def __init__(self, config: BoundaryConfig = BoundaryConfig()):
        super().__init__()
        from pinpoint3d_core.model.backbone import Res16UNet
        from pinpoint3d_core.model.pinpoint3d import _normalise_by_scene
        self.config = config
        self.backbone = Res16UNet(config)
        self.embed = nn.Linear(config.planes[7], config.embed_dim)
        e, h = config.embed_dim, config.hidden
        self.head = nn.Sequential(nn.Linear(2 * e + link_input_count(config), h), nn.ReLU(),
                                  nn.Linear(h, h), nn.ReLU(), nn.Linear(h, 1))
        for module in self.modules():
            if isinstance(module, nn.BatchNorm1d):
                # one scene per step in training: normalise by the scene's own statistics
                module.register_forward_hook(_normalise_by_scene)

    def embeddings(self, grid: np.ndarray, inputs: np.ndarray) -> torch.Tensor:
        """Return (V, E) voxel embeddings."""
        from pinpoint3d_core.model.backbone import backbone_features
        dev = self.embed.weight.device
        feats = backbone_features(self.backbone, [grid], [inputs], dev)[0]
        return self.embed(feats)

    def link_logits(self, emb: torch.Tensor, src: torch.Tensor, dst: torch.Tensor,
                    links: torch.Tensor) -> torch.Tensor:
        """Return (L,) boundary logits; symmetric in the two ends."""
        a, b = emb[src], emb[dst]
        return self.head(torch.cat([(a - b).abs(), a * b, links], dim=1)).squeeze(1)

    def forward(self, surface: SurfaceGraph) -> torch.Tensor:
        """Return (L,) boundary logits of every link of ``surface``."""
        dev = self.embed.weight.device
        emb = self.embeddings(voxel_grid(surface), voxel_inputs(surface))
        src = torch.as_tensor(surface.links.src, device=dev)
        dst = torch.as_tensor(surface.links.dst, device=dev)
        links = link_inputs(surface, self.config.link_concavity)
        return self.link_logits(emb, src, dst, torch.as_tensor(links, device=dev))

    @torch.no_grad()
    def boundary_probability(self, surface: SurfaceGraph) -> np.ndarray:
        """Return (L,) P(link crosses an object boundary), float64 (inference)."""
        emb = self.embeddings(voxel_grid(surface), voxel_inputs(surface))
        return self.pair_probability(surface, emb)

    @torch.no_grad()
    def pair_probability(self, surface: SurfaceGraph, emb: torch.Tensor) -> np.ndarray:
        """
        Return (L,) P(boundary) from voxel embeddings: the link MLP, once per undirected pair.

        The logit is symmetric in the two ends and so are the link features, so a link and its
        reverse get the same value; the pairs go through the MLP in blocks that stay in the
        CPU cache. Same values as ``forward`` (which training uses), in about a quarter of
        its time.
        """
        dev = emb.device
        first, pair = surface.links.undirected_pairs()
        src = torch.as_tensor(surface.links.src[first], device=dev)
        dst = torch.as_tensor(surface.links.dst[first], device=dev)
        inputs = link_inputs(surface, self.config.link_concavity)
        links = torch.as_tensor(inputs[first], device=dev)
        prob = torch.empty(len(first), dtype=torch.float32, device=dev)
        for lo in range(0, len(first), _PAIR_BLOCK):
            hi = lo + _PAIR_BLOCK
            prob[lo:hi] = torch.sigmoid(self.link_logits(emb, src[lo:hi], dst[lo:hi],
                                                         links[lo:hi]))
        return prob.double().cpu().numpy()[pair]
