"""One entry point: compose a world, render it with a simulated sensor, return a Scene."""

import numpy as np
from pinpoint3d_core.errors import Pinpoint3DError
from pinpoint3d_core.scene import FORMAT_VERSION, Scene
from pinpoint3d_core.synth import compose, sensors
from scipy import ndimage

GENERATOR_VERSION = '1.1'
KINDS = ('indoor', 'lidar', 'tabletop')
MODES = ('scan', 'single')
SIZES = ('normal', 'small')

# Voxel (m) for thinning fused indoor scans to ScanNet-like spacing (median NN about 2.9 cm).
SCAN_VOXEL = 0.035
N_FRAMES = 64
FUSED_NOISE = 0.003  # m, residual noise of a fused reconstruction


class SynthOptionError(Pinpoint3DError, ValueError):
    """An option of the synthetic data generator is out of range."""


def generate_scene(kind='indoor', seed=0, mode='scan', size='normal', noise=True, beams=64,
                   min_part_points=5, ceiling=False):
    """
    Generate one labelled scene, deterministic for ``seed``.

    kind: 'indoor' (RGB-D), 'lidar' or 'tabletop' (one Kinect/RealSense-like depth frame of
    household objects on a table, in the camera optical frame, see :func:`render_tabletop`);
    mode (indoor): 'scan' = fused trajectory thinned to ScanNet density, 'single' = one
    robot-height frame with its occlusions (tabletop is always one frame); size: 'normal'
    (~100k points; tabletop 640x480 pixels, ~150-250k points) or 'small' (~10-30k, for tests
    and quick training; tabletop 320x240); noise: False gives exact surface points (and no
    sensor artefacts); beams (lidar): 64 or 32; parts with fewer than ``min_part_points``
    points are merged into their parent part or dropped, so every listed part has points.
    """
    return generate_scene_and_world(kind, seed, mode, size, noise, beams, min_part_points,
                                    ceiling)[0]


def generate_scene_and_world(kind='indoor', seed=0, mode='scan', size='normal', noise=True,
                             beams=64, min_part_points=5, ceiling=False):
    """Like generate_scene but also return the World (meshes), for tests and previews."""
    _check(kind in KINDS, f'kind must be one of {KINDS}, got {kind!r}')
    _check(mode in MODES, f'mode must be one of {MODES}, got {mode!r}')
    _check(size in SIZES, f'size must be one of {SIZES}, got {size!r}')
    _check(beams in (32, 64), f'beams must be 32 or 64, got {beams!r}')
    _check(int(min_part_points) >= 1, 'min_part_points must be >= 1')
    rng = np.random.default_rng(int(seed))
    noise = 1.0 if noise else 0.0
    if kind == 'tabletop':
        world, layout = compose.tabletop_world(rng)
        hits, colors, sensor, table = render_tabletop(world, layout, rng, size, noise)
        meta = {'generator': 'pinpoint3d_core.synth', 'generator_version': GENERATOR_VERSION,
                'format_version': FORMAT_VERSION, 'kind': kind, 'mode': 'single',
                'size': size, 'seed': int(seed), 'noise': bool(noise), 'units': 'm',
                'frame': 'camera optical frame (x right, y down, z forward); not '
                         'gravity-aligned', 'sensor': sensor, 'layout': layout, **table}
        scene = _finalize(hits, world.arrays(), world, colors, None, np.zeros(3), meta,
                          min_part_points)
        return scene, world
    if kind == 'indoor':
        world, room, grid = compose.indoor_world(rng, size, ceiling)
        arrays = world.arrays()
        caster = sensors.Raycaster(arrays)
        hits, sensor = _render_indoor(caster, grid, room, rng, mode, size, noise)
        colors = sensors.shade_colors(arrays, hits, rng, rng.uniform(0.9, 1.1), noise)
        intensity = None
        layout = {'room': room}
        origin = np.zeros(3)
    else:
        world, layout = compose.street_world(rng, size)
        arrays = world.arrays()
        caster = sensors.Raycaster(arrays)
        height = 1.73 if beams == 64 else 1.84
        origin = np.array([0.0, layout['ego_y'], height])
        columns = (2048 if beams == 64 else 1084) if size == 'normal' else 512
        max_range = 80.0 if size == 'normal' else 45.0
        hits, intensity = sensors.lidar_scan(caster, origin, rng, beams, columns, max_range,
                                             noise, arrays[5])
        colors = None
        sensor = {'type': 'lidar', 'model': 'HDL-64E' if beams == 64 else 'HDL-32E',
                  'beams': beams, 'columns': columns, 'max_range': max_range,
                  'height': height, 'frame': 'sensor (x forward, y left, z up)'}
    meta = {'generator': 'pinpoint3d_core.synth', 'generator_version': GENERATOR_VERSION,
            'format_version': FORMAT_VERSION, 'kind': kind, 'mode': mode if kind == 'indoor'
            else 'scan', 'size': size, 'seed': int(seed), 'noise': bool(noise), 'units': 'm',
            'sensor': sensor, 'layout': layout}
    if kind == 'lidar':
        meta['intensity_range'] = [0.0, 1.0]
    scene = _finalize(hits, arrays, world, colors, intensity, origin, meta, min_part_points)
    return scene, world


def tabletop_camera_pose(layout, rng):
    """
    Camera position and camera-to-world rotation looking at the objects on the table.

    A head or wrist camera 0.6-1.0 m from the objects, 35-65 degrees down, from the table's
    near side (-y) with up to 35 degrees of azimuth and a little roll.
    """
    table = layout['table']
    target = np.array([*layout['cluster'], table['height']]) + np.append(
        rng.normal(0, 0.03, 2), 0)
    dist = rng.uniform(0.62, 1.02)
    pitch = -np.radians(rng.uniform(35, 65))
    yaw = np.pi / 2 + np.radians(rng.uniform(-35, 35))
    rot = sensors.look_rotation(yaw, pitch)
    roll = np.radians(rng.normal(0, 3))
    c, s = np.cos(roll), np.sin(roll)
    rot = rot @ np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])  # about the optical axis
    position = target - rot[:, 2] * dist
    return position, rot, target


def render_tabletop(world, layout, rng, size='normal', noise=1.0):
    """
    One structured-light frame of a tabletop world, points in the camera optical frame.

    Returns (hits, colours, sensor meta, table meta); table meta gives ``table_up`` (unit
    normal of the table top, towards the camera) and ``table_centre`` (a point on it) in the
    camera frame, as the real mOSD scans do.
    """
    cam = sensors.random_depth_camera(rng, size)
    position, rot, target = tabletop_camera_pose(layout, rng)
    arrays = world.arrays()
    caster = sensors.Raycaster(arrays)
    light = np.array([*rng.normal(0, 0.3, 2), 1.0])
    light /= np.linalg.norm(light)
    hits, colors, counts = sensors.structured_light_frame(
        caster, cam, position, rot, arrays[4], world.surface_arrays(), rng, noise, light,
        rng.uniform(0.8, 1.15) if noise else 1.0)
    fx, fy, cx, cy = cam.intrinsics()
    sensor = {'type': 'rgbd', 'mode': 'single', 'model': 'structured light / active stereo',
              'width': cam.width, 'height': cam.height, 'fx': fx, 'fy': fy, 'cx': cx,
              'cy': cy, 'baseline': cam.baseline, 'projector_side': cam.projector_side,
              'sigma_1m': cam.sigma_1m, 'disparity_c': cam.disparity_c,
              'colour_offset': list(cam.colour_offset), 'artefacts': counts,
              'position': np.round(position, 6).tolist(), 'rotation': rot.tolist()}
    table = {'table_up': (rot.T @ np.array([0, 0, 1.0])).tolist(),
             'table_centre': (rot.T @ (target - position)).tolist()}
    return hits, colors, sensor, table


def _check(ok, message):
    if not ok:
        raise SynthOptionError(message)


def _free_positions(grid, clearance):
    """World (x, y) of floor cells at least ``clearance`` from furniture and walls."""
    free = np.pad(~grid.occ, 1, constant_values=False)
    dist = ndimage.distance_transform_edt(free)[1:-1, 1:-1] * grid.cell
    ii, jj = np.nonzero(dist >= min(clearance, dist.max()))
    return np.stack([ii + 0.5, jj + 0.5], 1) * grid.cell


def _render_indoor(caster, grid, room, rng, mode, size, noise):
    center = np.array([room['width'] / 2, room['depth'] / 2])
    if mode == 'single':
        cand = _free_positions(grid, 0.4)
        xy = cand[rng.integers(len(cand))]
        pos = np.array([xy[0], xy[1], rng.uniform(0.5, 1.0)])
        to_c = center - xy
        yaw = np.arctan2(to_c[1], to_c[0]) + rng.normal(0, 0.4) if np.hypot(*to_c) > 0.5 \
            else rng.uniform(0, 2 * np.pi)
        pitch = np.radians(rng.uniform(-25, -5))
        w, h = (320, 240) if size == 'normal' else (176, 132)
        hits = sensors.rgbd_frame(caster, pos, sensors.look_rotation(yaw, pitch), rng, w, h,
                                  60.0, 6.0, noise)
        sensor = {'type': 'rgbd', 'mode': 'single', 'width': w, 'height': h, 'hfov_deg': 60.0,
                  'position': np.round(pos, 4).tolist(), 'yaw': float(yaw),
                  'pitch': float(pitch)}
        return hits, sensor
    n_frames, (w, h) = (N_FRAMES, (128, 96)) if size == 'normal' else (16, (96, 72))
    cand = _free_positions(grid, 0.45)
    pick = cand[rng.choice(len(cand), n_frames, replace=len(cand) < n_frames)]
    ang = np.arctan2(pick[:, 1] - center[1], pick[:, 0] - center[0])
    pick, ang = pick[np.argsort(ang)], np.sort(ang)  # a loop around the room
    parts, poses = [], []
    for k, (xy, a) in enumerate(zip(pick, ang)):
        pos = np.array([xy[0], xy[1], rng.uniform(1.2, 1.7)])
        yaw = a + np.pi * (k % 3 == 2) + rng.normal(0, 0.5)  # mostly outward, some across
        pitch = np.radians(rng.uniform(-60, -15))
        parts.append(sensors.rgbd_frame(caster, pos, sensors.look_rotation(yaw, pitch), rng,
                                        w, h, 60.0, 6.0, noise * 0.5))
        poses.append(np.round(pos, 3).tolist())
    hits = sensors.Hits(*(np.concatenate([getattr(p, f) for p in parts])
                          for f in sensors.Hits.__dataclass_fields__))
    # fusion averages depth noise away: thin the exact surface points, keep a small residual
    keep = voxel_thin(hits.clean, SCAN_VOXEL, rng)
    hits = sensors.Hits(*(getattr(hits, f)[keep] for f in sensors.Hits.__dataclass_fields__))
    hits.points = hits.clean + rng.normal(0, FUSED_NOISE * noise, hits.clean.shape)
    sensor = {'type': 'rgbd', 'mode': 'scan', 'frames': n_frames, 'width': w, 'height': h,
              'hfov_deg': 60.0, 'voxel': SCAN_VOXEL, 'positions': poses}
    return hits, sensor


def voxel_thin(points, voxel, rng):
    """Return indices keeping the point nearest each occupied voxel's centre (vertex-like)."""
    shifted = points / voxel + rng.uniform(0, 1, 3)
    q = np.floor(shifted).astype(np.int64)
    dist = ((shifted - q - 0.5) ** 2).sum(1)  # < 0.75
    q -= q.min(0)
    dims = q.max(0) + 1
    key = (q[:, 0] * dims[1] + q[:, 1]) * dims[2] + q[:, 2]
    order = np.argsort(key + dist / 0.76)  # by voxel, then by distance to its centre
    first = np.ones(len(order), bool)
    first[1:] = key[order[1:]] != key[order[:-1]]
    return np.sort(order[first])


def _finalize(hits, arrays, world, colors, intensity, origin, meta, min_part_points):
    """Labels per point, tiny parts merged/dropped, ids renumbered 1..K, meta filled in."""
    tri_obj, tri_part = arrays[2], arrays[3]
    obj = tri_obj[hits.triangle]
    part = tri_part[hits.triangle]
    n_parts = int(tri_part.max()) + 1
    counts = np.bincount(part, minlength=n_parts)
    parent = np.zeros(n_parts, np.int64)
    for rec in world.objects.values():
        for pid, par in rec['part_parent'].items():
            parent[pid] = par
    # each part maps to itself when it has enough points, else to its nearest such ancestor
    remap = np.arange(n_parts)
    for pid in range(1, n_parts):
        p = pid
        while p and counts[p] < min_part_points:
            p = parent[p]
        remap[pid] = p if p else -1
    part = remap[part]
    keep = part >= 0
    obj, part = obj[keep], part[keep]
    # renumber to contiguous ids in order of first appearance in the world
    obj_ids = np.unique(obj)
    obj_new = np.zeros(int(tri_obj.max()) + 1, np.int32)
    obj_new[obj_ids] = np.arange(1, len(obj_ids) + 1)
    part_ids = np.unique(part[part > 0])
    part_new = np.zeros(n_parts, np.int32)
    part_new[part_ids] = np.arange(1, len(part_ids) + 1)
    objects = {}
    for old in obj_ids:
        rec = dict(world.objects[int(old)])
        new = int(obj_new[old])
        alive = [p for p in rec['parts'] if remap[p] == p and part_new[p]]
        rec['parts'] = {str(part_new[p]): rec['parts'][p] for p in alive}
        rec['part_parent'] = {str(part_new[p]): int(part_new[_alive_ancestor(p, parent, remap)])
                              for p in alive}
        if rec['parent'] is not None:
            rec['parent'] = int(obj_new[rec['parent']]) or None
        rec['name'] = f"{rec['category'].lower()}_{new}"
        rec['num_points'] = int((obj == old).sum())
        objects[str(new)] = rec
    # per-triangle final labels (-1 = its points were dropped), for tests and previews
    world.final_object = obj_new[tri_obj]
    world.final_part = np.where(remap[tri_part] >= 0, part_new[np.maximum(remap[tri_part], 0)],
                                -1).astype(np.int32)
    meta.update(objects=objects, num_points=int(keep.sum()), num_objects=len(objects),
                num_parts=len(part_ids),
                objects_with_parts=sorted(int(k) for k, r in objects.items() if r['has_parts']))
    coords = hits.points[keep] - origin
    return Scene(coords, None if colors is None else colors[keep],
                 None if intensity is None else intensity[keep],
                 obj_new[obj], part_new[part], meta)


def _alive_ancestor(pid, parent, remap):
    p = parent[pid]
    while p and remap[p] != p:
        p = parent[p]
    return p
