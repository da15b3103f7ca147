"""Positional encodings: random Fourier features of positions and a click-order table."""

import math

import torch
from torch import nn


class FourierPositionEncoding(nn.Module):
    """
    Random Fourier features of positions min-max normalised to the scene's box.

    The projection matrix is a buffer named ``gauss_B`` (3, d/2), drawn once at construction,
    because official checkpoints store it and the trained decoder depends on its exact values.
    """

    def __init__(self, dim, gauss_scale=1.0):
        super().__init__()
        if dim % 2:
            raise ValueError(f'Fourier encoding needs an even width, got {dim}')
        self.register_buffer('gauss_B', torch.randn(3, dim // 2) * gauss_scale)

    def forward(self, xyz, lo, hi):
        """Encode (..., 3) positions with the scene bounds lo/hi (3,) -> (..., dim)."""
        extent = torch.clamp(hi - lo, min=1e-6)
        norm = (xyz - lo) / extent
        proj = (2.0 * math.pi * norm) @ self.gauss_B.to(norm.dtype)
        return torch.cat([proj.sin(), proj.cos()], dim=-1)


def click_order_table(max_clicks, dim):
    """Return the (max_clicks, dim) sinusoidal table: even dims sin, odd dims cos."""
    pos = torch.arange(max_clicks, dtype=torch.float32)[:, None]
    freq = torch.pow(10000.0, -torch.arange(0, dim, 2, dtype=torch.float32) / dim)
    table = torch.zeros(max_clicks, dim)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq[: dim // 2])
    return table
