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


# ---------------------------------------------------------------- structured-light RGB-D

@dataclass
class DepthCamera:
    """A Kinect / RealSense-like depth camera with its error model (SI units, pixels)."""

    width: int = 640
    height: int = 480
    focal: float = 525.0          # px, fx = fy; principal point at the image centre
    baseline: float = 0.075       # m, camera to projector (shadows)
    projector_side: float = 1.0   # +1: projector on the camera's +x side, -1: on its -x side
    sigma_1m: float = 0.0015      # m, axial noise at 1 m, grows with depth squared
    disparity_c: float = 350.0    # depth quantisation step = z^2 / disparity_c (m)
    noise_cell: int = 4           # px over which the depth error is correlated
    min_depth: float = 0.35
    max_depth: float = 3.5
    edge_drop: float = 0.3        # share of depth-edge pixels without a return
    flying: float = 0.02          # share of depth-edge pixels mixed between both sides
    # m: flying pixels moved farther than this off their own surface are filtered out (the
    # real mOSD scans hold no labelled point floating away from its object; kept, such a
    # point carries its object's id up to 0.9 m behind it, and the simulated user's first
    # click, at the point farthest from other labels, lands on it)
    flying_reach: float = 0.03
    colour_offset: tuple = (0, 0)  # px, colour-to-depth registration error

    def intrinsics(self):
        """Return (fx, fy, cx, cy)."""
        return self.focal, self.focal, (self.width - 1) / 2.0, (self.height - 1) / 2.0

    def rays(self):
        """Return unnormalised (H*W, 3) rays with z = 1 and the pixel grid (u, v)."""
        fx, fy, cx, cy = self.intrinsics()
        u, v = np.meshgrid(np.arange(self.width, dtype=np.float64),
                           np.arange(self.height, dtype=np.float64))
        d = np.stack([(u - cx) / fx, (v - cy) / fy, np.ones_like(u)], -1).reshape(-1, 3)
        return d, u.reshape(-1), v.reshape(-1)


def random_depth_camera(rng, size='normal'):
    """Draw a camera: Kinect-like (f 525, 7.5 cm baseline) or RealSense-like (f 615, 5 cm)."""
    kinect = rng.random() < 0.75
    scale = 1.0 if size == 'normal' else 0.5
    return DepthCamera(
        width=int(640 * scale), height=int(480 * scale),
        focal=(525.0 if kinect else 615.0) * rng.uniform(0.98, 1.02) * scale,
        baseline=0.075 if kinect else 0.05, projector_side=float(rng.choice((-1.0, 1.0))),
        sigma_1m=rng.uniform(0.0014, 0.002), disparity_c=rng.uniform(320.0, 380.0) * scale,
        edge_drop=rng.uniform(0.2, 0.45), flying=rng.uniform(0.005, 0.04),
        colour_offset=tuple(int(x) for x in rng.integers(-3, 4, 2)))


def _smooth_normal(rng, shape, cell=8):
    """Standard-normal field correlated over about ``cell`` pixels (blobs of drop-outs)."""
    from scipy import ndimage
    small = rng.normal(size=(shape[0] // cell + 2, shape[1] // cell + 2))
    big = ndimage.zoom(small, cell, order=1)[:shape[0], :shape[1]]
    return (big - big.mean()) / max(big.std(), 1e-9)


def _depth_edges(depth, valid):
    """Per pixel: largest depth jump to a 4-neighbour and that neighbour's depth."""
    d = np.where(valid, depth, np.inf)
    pad = np.pad(d, 1, mode='edge')
    nbs = np.stack([pad[1:-1, :-2], pad[1:-1, 2:], pad[:-2, 1:-1], pad[2:, 1:-1]])
    both = np.isfinite(nbs) & np.isfinite(d)[None]
    diff = np.where(both, np.abs(np.where(both, nbs, 0) - np.where(both, d[None], 0)), 0.0)
    k = np.argmax(diff, 0)
    jump = np.take_along_axis(diff, k[None], 0)[0]
    other = np.take_along_axis(nbs, k[None], 0)[0]
    return jump, other


def structured_light_frame(caster, cam, position, rotation, tri_rgb, tri_surface, rng,
                           noise=1.0, light=(0.0, 0.0, 1.0), gain=1.0):
    """
    Render one RGB-D frame; return (Hits in the camera optical frame, colours, artefact counts).

    The error model of a structured-light / active-stereo camera: a return is missing where the
    projector cannot light the point (shadow beside objects), on dark, shiny or transparent
    materials and grazing surfaces; pixels on a depth edge are dropped or mixed between both
    sides (flying pixels); depth noise grows with z^2 and depth is quantised in disparity, then
    to millimetres. Colours come from a colour camera registered a few pixels off.
    """
    h, w = cam.height, cam.width
    d_cam, u, v = cam.rays()
    unit = d_cam / np.linalg.norm(d_cam, axis=1, keepdims=True)
    dirs = unit @ rotation.T
    rays = np.concatenate([np.broadcast_to(position, dirs.shape), dirs], 1).astype(np.float32)
    ans = caster.scene.cast_rays(o3d.core.Tensor(rays))
    t = ans['t_hit'].numpy().astype(np.float64)
    hit = np.isfinite(t)
    tri = np.where(hit, ans['primitive_ids'].numpy().astype(np.int64), 0)
    normals = ans['primitive_normals'].numpy().astype(np.float64)
    cos = np.abs((normals * dirs).sum(1))
    z = np.where(hit, t * unit[:, 2], np.inf)
    valid = hit & (z > cam.min_depth) & (z < cam.max_depth)
    counts = {'pixels': int(h * w), 'no_surface': int((~valid).sum())}
    # colour image first: the colour camera sees what the depth camera may miss
    facing = np.where(((normals * dirs).sum(1) < 0)[:, None], normals, -normals)
    lam = np.clip(facing @ np.asarray(light, float), 0, 1)
    shade = (0.6 + 0.3 * lam + 0.1 * cos) * gain
    rgb = tri_rgb[tri] * shade[:, None]
    if noise:
        rgb = rgb + rng.normal(0, 0.02, rgb.shape)
    world_pts = position + dirs * np.where(hit, t, 0)[:, None]
    if noise:
        surf = tri_surface[tri]
        # projector shadow: the point must also be lit from the projector
        proj = position + rotation[:, 0] * cam.baseline * cam.projector_side
        idx = np.flatnonzero(valid)
        to = world_pts[idx] - proj
        dist = np.linalg.norm(to, axis=1)
        pr = np.concatenate([np.broadcast_to(proj, to.shape), to / dist[:, None]], 1)
        t_proj = caster.scene.cast_rays(o3d.core.Tensor(pr.astype(np.float32)))['t_hit'].numpy()
        shadow = np.zeros(h * w, bool)
        shadow[idx] = t_proj < dist - np.maximum(0.004, 0.01 * dist)
        # materials: dark, shiny (specular highlight or oblique), transparent; grazing rays
        lum = tri_rgb[tri] @ np.array([0.3, 0.59, 0.11])
        p_dark = np.clip((0.2 - lum) / 0.2, 0, 1) * (0.1 + 0.5 * (1 - cos))
        p_shiny = surf[:, 0] * (0.8 * (cos > 0.97) + 0.2 * (1 - cos))
        p_glass = surf[:, 1] * 0.6
        p_graze = 0.8 * (cos < 0.15)
        p = 1 - (1 - p_dark) * (1 - p_shiny) * (1 - p_glass) * (1 - p_graze) * (1 - 0.0001)
        field = 0.8 * _smooth_normal(rng, (h, w)).reshape(-1) + 0.6 * rng.normal(size=h * w)
        from scipy.special import ndtr
        material = ndtr(field) < p
        # depth edges: dropped or flying (mixed) pixels
        jump, other = _depth_edges(z.reshape(h, w), valid.reshape(h, w))
        jump, other = jump.reshape(-1), other.reshape(-1)
        edge = valid & (jump > 0.015 + 0.02 * np.where(valid, z, 0))
        roll = rng.random(h * w)
        edge_drop = edge & (roll < cam.edge_drop)
        flying = edge & ~edge_drop & (roll < cam.edge_drop + cam.flying) & np.isfinite(other)
        # mostly near their own side (edge fattening), a few far out between both surfaces
        mix = rng.uniform(0, 1, h * w) ** 3 * 0.9
        shift = mix * (np.where(np.isfinite(other), other, z) - z)
        z_meas = np.where(flying, z + shift, z)
        flying_far = flying & (np.abs(shift) > cam.flying_reach)
        keep = valid & ~shadow & ~material & ~edge_drop
        counts['flying_filtered'] = int((keep & flying_far).sum())
        keep &= ~flying_far
        counts.update(shadow=int((valid & shadow).sum()),
                      material=int((valid & ~shadow & material).sum()),
                      edge_dropped=int((valid & ~shadow & ~material & edge_drop).sum()),
                      flying=int((keep & flying).sum()))
        # block matching correlates the error of neighbouring pixels over a few pixels
        err = 0.9 * _smooth_normal(rng, (h, w), cam.noise_cell).reshape(-1) + \
            0.436 * rng.normal(size=h * w)
        z_meas = z_meas + err * cam.sigma_1m * np.where(valid, z, 1) ** 2
        with np.errstate(divide='ignore', invalid='ignore'):
            z_meas = cam.disparity_c / np.round(cam.disparity_c / z_meas)
        z_meas = np.round(z_meas * 1000) / 1000
        keep &= np.isfinite(z_meas) & (z_meas > 0)
    else:
        keep = valid
        z_meas = z
        flying = np.zeros(h * w, bool)
    # colour registration: each depth pixel takes the colour of a pixel a few px away
    du, dv = cam.colour_offset if noise else (0, 0)
    src = (np.clip(v + dv, 0, h - 1) * w + np.clip(u + du, 0, w - 1)).astype(np.int64)
    src = np.where(hit[src], src, np.arange(h * w))
    colors = np.clip(rgb[src] * 255 + 0.5, 0, 255).astype(np.uint8)
    counts['kept'] = int(keep.sum())
    k = np.flatnonzero(keep)
    clean = d_cam[k] * z[k, None]
    points = d_cam[k] * z_meas[k, None]
    hits = Hits(clean, points, tri[k], cos[k], t[k], np.full(len(k), gain))
    hits.flying = flying[k]
    return hits, colors[k], counts
