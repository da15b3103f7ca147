"""
Named model configurations: the network, i.e. what the weights depend on.

What happens around the network (focus box, post-decoder rules, input guards) is in
``pinpoint3d_core.inference.config.InferenceConfig``. ``reference`` reproduces the published
network so official checkpoints load; ``small`` is the default and is sized for training and
interactive use on a 2-core CPU. Every departure from the reference that might change
accuracy is a flag here so that it can be measured.
"""

import dataclasses
from typing import Optional, Tuple

from pinpoint3d_core.errors import CheckpointError


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Hyper-parameters of one PinPoint3D model (all plain values, saved in checkpoints)."""

    name: str = 'small'
    # Input and voxelisation.
    in_channels: int = 3
    voxel_size: float = 0.05
    # Backbone (Res16UNet family): 8 stages, 4 down then 4 up.
    planes: Tuple[int, ...] = (32, 64, 128, 256, 256, 128, 96, 96)
    layers: Tuple[int, ...] = (2, 3, 4, 6, 2, 2, 2, 2)
    init_dim: int = 32
    conv1_kernel_size: int = 5
    bn_momentum: float = 0.02
    # Head and decoder.
    d_model: int = 128
    n_heads: int = 8
    ffn_dim: int = 1024
    num_object_layers: int = 3
    num_part_layers: int = 3
    num_bg_queries: int = 10
    max_clicks: int = 200
    gauss_scale: float = 1.0
    adapter_scale: float = 0.1
    # Decoder memory: attention runs on tokens = voxel features mean-pooled into cells of
    # ``token_stride`` voxels (1 = every voxel, as in the reference); when there are more
    # than ``max_tokens`` cells the stride grows until they fit (None = no cap).
    token_stride: int = 1
    max_tokens: Optional[int] = None
    # Which decoder layers update scene features (scene-to-click attention); the reference
    # does it in every layer. Indices into the object / part layer lists.
    s2c_object_layers: Tuple[int, ...] = (0, 1, 2)
    s2c_part_layers: Tuple[int, ...] = (0, 1, 2)
    # The part decoder reads the scene features as updated by the object decoder (reference);
    # False = it reads the encoder's features, whose projections are then cached per scene.
    part_scene_from_object: bool = True
    # Part-decoder scene updates only on tokens the object decoder assigns to the target
    # object (the only place part labels can appear); the reference updates every point.
    part_s2c_inside_only: bool = False
    # Section 7 of the reference notes: behaviours that differ from the released code.
    tam_all_layers: bool = False
    gate_parts_by_object: bool = False
    part_queries_from_refined: bool = False
    # Batch norms normalise by the statistics of the scene being processed, at inference as in
    # training, instead of the running averages. Trained with one scene per step, the network
    # relies on per-scene statistics; the running averages then halve its IoU (docs/model.md).
    # The reference keeps running statistics, which is what its official weights expect.
    scene_norm_stats: bool = True

    def to_dict(self) -> dict:
        """Return a JSON/torch-safe dict (tuples become lists)."""
        out = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}

    @classmethod
    def from_dict(cls, data: dict) -> 'ModelConfig':
        """
        Build from ``to_dict`` output; unknown keys are a CheckpointError.

        Inference settings that old checkpoints kept here are skipped (``split_legacy`` in
        inference/config.py returns them).
        """
        from pinpoint3d_core.inference.config import split_legacy
        data, _ = split_legacy(data)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise CheckpointError(
                f'model config has unknown fields {unknown}: the checkpoint was written by a '
                'newer or different pinpoint3d version')
        fixed = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**fixed)

    def replace(self, **changes) -> 'ModelConfig':
        """Return a copy with some fields changed."""
        return dataclasses.replace(self, **changes)


REFERENCE = ModelConfig(name='reference', scene_norm_stats=False)

# Widths chosen so one training step (backbone + decoder forward/backward) on a 50k-point
# indoor scene takes about a second on 2 CPU cores (figures in docs/benchmarks.md).
SMALL = ModelConfig(
    name='small',
    planes=(16, 24, 32, 48, 48, 32, 24, 24),
    layers=(1, 1, 1, 1, 1, 1, 1, 1),
    init_dim=16,
    conv1_kernel_size=3,
    d_model=64,
    n_heads=4,
    ffn_dim=256,
    token_stride=2,
    max_tokens=8192,
    s2c_object_layers=(2,),
    s2c_part_layers=(2,),
    part_scene_from_object=False,
    part_s2c_inside_only=True,
    tam_all_layers=True,
    gate_parts_by_object=True,
    part_queries_from_refined=True,
)

# Same network as ``small`` with coarser voxels for sparse outdoor LiDAR sweeps.
SMALL_LIDAR = SMALL.replace(name='small_lidar', voxel_size=0.1)

CONFIGS = {c.name: c for c in (REFERENCE, SMALL, SMALL_LIDAR)}


def get_config(name_or_config='small') -> ModelConfig:
    """Return a ModelConfig from a name, a dict, or a ModelConfig."""
    if isinstance(name_or_config, ModelConfig):
        return name_or_config
    if isinstance(name_or_config, dict):
        return ModelConfig.from_dict(name_or_config)
    try:
        return CONFIGS[name_or_config]
    except KeyError:
        raise ValueError(
            f'unknown model config {name_or_config!r}; choose one of {sorted(CONFIGS)}'
        ) from None
