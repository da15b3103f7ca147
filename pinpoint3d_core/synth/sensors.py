"""
Simulated sensors: RGB-D cameras and rotating multi-beam LiDAR via open3d ray casting.

The whole world is one triangle geometry, so a hit's ``primitive_ids`` index directly into the
world's per-triangle label arrays (object id, part id, colour, reflectivity).
"""

from dataclasses import dataclass

import numpy as np
import open3d as o3d

# Velodyne HDL-64E: upper block 32 lasers +2.0 .. -8.33 deg (1/3 deg steps), lower block
# 32 lasers -8.83 .. -24.33 deg (1/2 deg steps).
HDL64_ELEVATIONS = np.concatenate([2.0 - np.arange(32) / 3.0, -8.83 - 0.5 * np.arange(32)])
# Velodyne HDL-32E: +10.67 .. -30.67 deg in 4/3 deg steps.
HDL32_ELEVATIONS = 10.67 - np.arange(32) * (41.34 / 31)
# mean shading factor a frame is exposed to (calibrated to ScanNet's mean colour)
AUTO_EXPOSURE = 0.66


@dataclass
class Hits:
    """Ray hits: points (noise-free and measured), triangle ids, ray data."""

    clean: np.ndarray      # (M,3) exact surface points
    points: np.ndarray     # (M,3) with sensor noise
    triangle: np.ndarray   # (M,) index into the world triangle arrays
    cos_incidence: np.ndarray  # (M,) |normal . ray|
    distance: np.ndarray   # (M,) range along the ray
    exposure: np.ndarray   # (M,) camera gain of the frame that saw the point (1 for LiDAR)


class Raycaster:
    """One open3d RaycastingScene over a World's triangles."""

    def __init__(self, world_arrays):
        """Build the BVH once; ``world_arrays`` is World.arrays()."""
        self.vertices, self.triangles = world_arrays[0], world_arrays[1]
        self.scene = o3d.t.geometry.RaycastingScene(nthreads=0)
        self.scene.add_triangles(o3d.core.Tensor(self.vertices),
                                 o3d.core.Tensor(self.triangles))

    def cast(self, origins, directions):
        """Cast unit-direction rays; returns (t_hit, triangle ids, |cos incidence|)."""
        rays = np.concatenate([np.broadcast_to(origins, directions.shape), directions], 1)
        ans = self.scene.cast_rays(o3d.core.Tensor(rays.astype(np.float32)))
        t = ans['t_hit'].numpy()
        tri = ans['primitive_ids'].numpy().astype(np.int64)
        cos = np.abs((ans['primitive_normals'].numpy() * directions).sum(1))
        return t, tri, cos


def kinect_sigma(depth):
    """Axial depth noise (m) of a structured-light RGB-D camera growing with range."""
    return 0.0012 + 0.0019 * (depth - 0.4) ** 2


def camera_rays(width, height, hfov_deg):
    """Return unit ray directions in the camera frame (x right, y down, z forward), (H*W, 3)."""
    f = (width / 2) / np.tan(np.radians(hfov_deg) / 2)
    u, v = np.meshgrid(np.arange(width) + 0.5 - width / 2, np.arange(height) + 0.5 - height / 2)
    d = np.stack([u / f, v / f, np.ones_like(u)], -1).reshape(-1, 3)
    return d / np.linalg.norm(d, axis=1, keepdims=True)


def look_rotation(yaw, pitch):
    """Camera-to-world rotation for a camera looking along ``yaw`` (about z) tilted by pitch."""
    fwd = np.array([np.cos(yaw) * np.cos(pitch), np.sin(yaw) * np.cos(pitch), np.sin(pitch)])
    right = np.array([np.sin(yaw), -np.cos(yaw), 0.0])
    down = np.cross(fwd, right)
    return np.stack([right, down, fwd], 1)


def rgbd_frame(caster, position, rotation, rng, width=160, height=120, hfov=60.0,
               max_depth=6.0, noise=1.0):
    """Render one depth frame; drops misses, far hits, depth edges and grazing hits."""
    d_cam = camera_rays(width, height, hfov)
    dirs = d_cam @ rotation.T
    t, tri, cos = caster.cast(position, dirs)
    depth = (t * d_cam[:, 2]).reshape(height, width)
    valid = np.isfinite(depth) & (depth < max_depth) & (depth > 0.3)
    if noise:
        dpad = np.pad(np.where(np.isfinite(depth), depth, 1e3), 1, mode='edge')
        jump = np.max(np.abs(np.stack([dpad[1:-1, :-2], dpad[1:-1, 2:], dpad[:-2, 1:-1],
                                       dpad[2:, 1:-1]]) - depth[None]), 0)
        edge = jump > 0.04 + 0.03 * depth
        valid &= ~(edge & (rng.random(depth.shape) < 0.7))
        valid = valid.reshape(-1) & ~((cos < 0.12) & (rng.random(len(cos)) < 0.8))
    valid = valid.reshape(-1)
    t, tri, cos, dirs, z = t[valid], tri[valid], cos[valid], dirs[valid], depth.reshape(-1)[valid]
    clean = position + dirs * t[:, None]
    tn = t + (rng.normal(0, 1, len(t)) * kinect_sigma(z) * noise / d_cam[valid, 2]
              if noise else 0.0)
    gain = np.full(len(t), rng.uniform(0.75, 1.45) if noise else 1.0)
    return Hits(clean, position + dirs * tn[:, None], tri, cos, t, gain)


def shade_colors(world_arrays, hits, rng, light=1.0, noise=1.0):
    """Per-material colour with Lambert-like shading, distance fall-off and sensor noise."""
    rgb = world_arrays[4][hits.triangle]
    shade = (0.3 + 0.7 * hits.cos_incidence) / (1 + 0.04 * hits.distance)
    # auto-exposure: each frame (one exposure value) gets the same mean shading, then its gain
    _, frame = np.unique(hits.exposure, return_inverse=True)
    mean = np.bincount(frame, shade) / np.maximum(np.bincount(frame), 1)
    shade = shade / mean[frame] * AUTO_EXPOSURE * light * hits.exposure
    out = rgb * shade[:, None]
    if noise:
        out = out + rng.normal(0, 0.03, out.shape)
    return np.clip(out * 255 + 0.5, 0, 255).astype(np.uint8)


def lidar_scan(caster, position, rng, beams=64, columns=2048, max_range=80.0, noise=1.0,
               reflectivity=None):
    """Rotating multi-beam LiDAR at ``position``; returns (Hits, intensity 0..1)."""
    elev = np.radians(HDL64_ELEVATIONS if beams == 64 else HDL32_ELEVATIONS)
    az = np.linspace(0, 2 * np.pi, columns, endpoint=False) + rng.uniform(0, 2 * np.pi / columns)
    if noise:
        elev = elev + np.radians(rng.normal(0, 0.02, len(elev)))  # per-laser calibration
    ee, aa = np.meshgrid(elev, az, indexing='ij')
    dirs = np.stack([np.cos(ee) * np.cos(aa), np.cos(ee) * np.sin(aa), np.sin(ee)],
                    -1).reshape(-1, 3)
    t, tri, cos = caster.cast(position, dirs)
    valid = np.isfinite(t) & (t < max_range) & (t > 1.0)
    t_safe = np.where(valid, t, 0.0)
    refl = reflectivity[np.where(valid, tri, 0)]
    raw = refl * (0.35 + 0.65 * cos) * np.exp(-t_safe / 120.0)
    if noise:
        # weak returns vanish with range; a few percent drop at random
        p_drop = 0.02 + 0.9 * np.clip(0.04 - raw, 0, None) / 0.04 * (t_safe / max_range)
        valid &= rng.random(len(t)) >= np.where(valid, p_drop, 1.0)
    t, tri, dirs, raw, cos = t[valid], tri[valid], dirs[valid], raw[valid], cos[valid]
    clean = position + dirs * t[:, None]
    tn = t + (rng.normal(0, 0.015, len(t)) * noise if noise else 0.0)
    intensity = raw * 2.0 + (rng.normal(0, 0.03, len(raw)) * noise if noise else 0.0)
    hits = Hits(clean, position + dirs * tn[:, None], tri, cos, t, np.ones(len(t)))
    return hits, np.clip(intensity, 0, 1).astype(np.float32)
