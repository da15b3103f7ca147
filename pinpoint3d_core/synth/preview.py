"""Preview images of labelled scenes, coloured by part (matplotlib, Agg backend)."""

import numpy as np


def _scatter(ax, xyz, col, size, z_scale):
    """Scatter points on a 3D axis with equal x/y extent (z shortened by ``z_scale``)."""
    ax.scatter(xyz[:, 0], xyz[:, 1], xyz[:, 2], c=col, s=size, linewidths=0, depthshade=False)
    lo, hi = xyz.min(0), xyz.max(0)
    mid, half = (lo + hi) / 2, (hi - lo).max() / 2
    ax.set_xlim(mid[0] - half, mid[0] + half)
    ax.set_ylim(mid[1] - half, mid[1] + half)
    ax.set_zlim(mid[2] - half * z_scale, mid[2] + half * z_scale)


def label_colors(scene):
    """RGB 0..1 per point: one colour per part; objects without parts get a muted shade."""
    rng = np.random.default_rng(7)
    palette = rng.uniform(0.15, 0.95, (int(scene.part_ids.max()) + 1, 3))
    obj_pal = 0.45 + 0.3 * rng.uniform(0, 1, (int(scene.object_ids.max()) + 1, 3))
    colors = obj_pal[scene.object_ids]
    stuff = [int(k) for k, r in scene.meta.get('objects', {}).items() if r.get('stuff')]
    grey = np.isin(scene.object_ids, stuff) | (scene.object_ids == 0)
    colors[grey] = 0.72 + 0.08 * rng.uniform(0, 1, (int(grey.sum()), 1))
    has = scene.part_ids > 0
    colors[has] = palette[scene.part_ids[has]]
    return colors


def save_preview(scene, path, max_points=80000, title=None, dpi=90, crop=30.0):
    """Write an oblique view coloured by part (LiDAR cropped to ``crop`` m); return the path."""
    if scene.meta.get('kind') == 'tabletop':   # a camera frame: show it as the camera saw it
        meta = scene.meta
        title = title or (f"tabletop seed {meta.get('seed', '')}: {len(scene):,} points, "
                          f"{meta.get('num_objects', '?')} objects")
        return save_camera_gallery(path, [(title, scene)])
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    n = len(scene)
    keep = np.ones(n, bool)
    if scene.intensity is not None:
        keep = np.abs(scene.coords[:, :2]).max(1) < crop
    idx = np.flatnonzero(keep)
    idx = np.random.default_rng(0).choice(idx, min(len(idx), max_points), replace=False)
    xyz = scene.coords[idx]
    col = label_colors(scene)[idx]
    order = np.argsort(scene.part_ids[idx] > 0, kind='stable')  # parts drawn last, on top
    xyz, col = xyz[order], col[order]
    fig = plt.figure(figsize=(6, 4.5), dpi=dpi)
    ax = fig.add_subplot(projection='3d')
    _scatter(ax, xyz, col, size=0.6, z_scale=1 / 3)
    ax.set_box_aspect((1, 1, 1 / 3))
    ax.view_init(elev=35, azim=-60)
    ax.set_axis_off()
    meta = scene.meta
    ax.set_title(title or f"{meta.get('kind', '')} {meta.get('mode', '')} seed "
                 f"{meta.get('seed', '')}: {n:,} points, {meta.get('num_objects', '?')} objects, "
                 f"{meta.get('num_parts', '?')} parts", fontsize=8)
    fig.subplots_adjust(0, 0, 1, 0.95)
    fig.savefig(path)
    plt.close(fig)
    return path


def _object_view(obj, rng, pixels=150):
    """Ray-cast one object from the front-left above: visible points and their part names."""
    from pinpoint3d_core.synth import compose, sensors
    world = compose.World()
    world.place(obj)
    arrays = world.arrays()
    v = arrays[0]
    center = (v.min(0) + v.max(0)) / 2
    dist = 1.6 * np.linalg.norm(v.max(0) - v.min(0)) / (2 * np.tan(np.radians(20)))
    dist = max(dist, 0.45)   # the simulated camera sees nothing nearer than 0.3 m
    az, el = np.radians(-115), np.radians(25)
    pos = center + dist * np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])
    hits = sensors.rgbd_frame(sensors.Raycaster(arrays), pos,
                              sensors.look_rotation(az + np.pi, -el), rng, pixels, pixels, 40.0,
                              dist * 3, noise=0.0)
    names = world.objects[1]['parts']   # empty for objects without parts
    return hits.points, [names.get(int(p), obj.parts[0].name) for p in arrays[3][hits.triangle]]


def save_gallery(path, makers, seed=0, columns=4, dpi=80):
    """Write one panel per object generator: a ray-cast view coloured by part name."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    rng = np.random.default_rng(seed)
    rows = int(np.ceil(len(makers) / columns))
    fig = plt.figure(figsize=(2.4 * columns, 2.4 * rows), dpi=dpi)
    cmap = plt.get_cmap('tab10')
    for i, (name, maker) in enumerate(makers.items()):
        obj = maker(rng)
        xyz, labels = _object_view(obj, rng)
        names = sorted({p.name for p in obj.parts})
        col = np.array([cmap(names.index(n) % 10) for n in labels])
        ax = fig.add_subplot(rows, columns, i + 1, projection='3d')
        _scatter(ax, xyz, col, size=0.5, z_scale=1.0)
        ax.view_init(elev=25, azim=-115)
        ax.set_axis_off()
        ax.set_title(f"{name}: {', '.join(names)}", fontsize=6)
    fig.subplots_adjust(0, 0, 1, 0.95, 0, 0.05)
    fig.savefig(path)
    plt.close(fig)
    return path


def camera_image(scene, intrinsics=None):
    """
    Return (colour image, label image, depth image) of a camera-frame scene's pixel grid.

    Points of a single-view RGB-D frame (synthetic tabletop, real mOSD) lie on the camera's
    pixel grid; ``intrinsics`` (fx, fy, cx, cy, width, height) default to the scene's sensor
    meta, else a 640x480 Kinect (f = 525 px). Pixels without a return are white.
    """
    sensor = scene.meta.get('sensor')
    if intrinsics is None:
        intrinsics = ((sensor['fx'], sensor['fy'], sensor['cx'], sensor['cy'], sensor['width'],
                       sensor['height']) if isinstance(sensor, dict) and 'fx' in sensor
                      else (525.0, 525.0, 319.5, 239.5, 640, 480))
    fx, fy, cx, cy, w, h = intrinsics
    xyz = scene.coords.astype(np.float64)
    u = np.round(xyz[:, 0] / xyz[:, 2] * fx + cx).astype(int)
    v = np.round(xyz[:, 1] / xyz[:, 2] * fy + cy).astype(int)
    ok = (u >= 0) & (u < w) & (v >= 0) & (v < h)
    rgb, lab = np.ones((h, w, 3)), np.ones((h, w, 3))
    depth = np.full((h, w), np.nan)
    if scene.colors is not None:
        rgb[v[ok], u[ok]] = scene.colors[ok] / 255.0
    lab[v[ok], u[ok]] = label_colors(scene)[ok]
    depth[v[ok], u[ok]] = xyz[ok, 2]
    return rgb, lab, depth


def save_camera_gallery(path, scenes, dpi=70):
    """One row per (title, scene): colours, labels (by part) and depth as the camera saw them."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(len(scenes), 3, figsize=(12, 3.1 * len(scenes)), dpi=dpi,
                             squeeze=False)
    for row, (title, scene) in enumerate(scenes):
        rgb, lab, depth = camera_image(scene)
        for col, (img, what) in enumerate(((rgb, 'colour'), (lab, 'objects and parts'),
                                           (depth, 'depth'))):
            ax = axes[row, col]
            ax.imshow(img, cmap='viridis', vmin=0.4, vmax=1.6, interpolation='nearest')
            ax.set_axis_off()
            ax.set_title(f'{title}: {what}', fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def write_tabletop_images(folder, real_scan=None):
    """
    Write data_tabletop.png (generated frames next to a real mOSD scan) and the object gallery.

    ``real_scan``: path of a real scan for the first row (skipped when None or absent).
    """
    import os
    from pinpoint3d_core.scene import load_scene
    from pinpoint3d_core.synth import generate_scene
    from pinpoint3d_core.synth import objects as ob
    os.makedirs(folder, exist_ok=True)
    rows = []
    if real_scan and os.path.isfile(real_scan):
        name = os.path.splitext(os.path.basename(real_scan))[0]
        rows.append((f'real {name} (mOSD, Kinect)', load_scene(real_scan)))
    for seed in (0, 1, 3):
        scene = generate_scene('tabletop', seed=seed)
        rows.append((f"synth tabletop seed {seed} ({scene.meta['num_objects']} objects)", scene))
    return [save_camera_gallery(os.path.join(folder, 'data_tabletop.png'), rows),
            save_gallery(os.path.join(folder, 'data_objects_tabletop.png'), ob.TABLETOP, seed=1)]


def write_doc_images(folder):
    """Regenerate the docs/images/data_*.png previews; return the paths written."""
    import os
    from pinpoint3d_core.synth import generate_scene
    from pinpoint3d_core.synth import objects as ob
    os.makedirs(folder, exist_ok=True)
    out = []
    for kind, mode, name in (('indoor', 'scan', 'data_indoor_scan.png'),
                             ('indoor', 'single', 'data_indoor_single.png'),
                             ('lidar', 'scan', 'data_lidar_scan.png')):
        out.append(save_preview(generate_scene(kind, seed=0, mode=mode),
                                os.path.join(folder, name)))
    indoor = {**ob.INDOOR_FLOOR, **ob.INDOOR_SMALL}
    outdoor = {'Car': ob.car, 'Van': ob.van, 'Pedestrian': ob.pedestrian,
               'Cyclist': ob.cyclist, 'Pole': ob.pole, 'TrafficSign': ob.traffic_sign,
               'Tree': ob.tree, 'Building': ob.building, 'Barrier': ob.barrier,
               'TrafficCone': ob.traffic_cone}
    out.append(save_gallery(os.path.join(folder, 'data_objects_indoor.png'), indoor, seed=1))
    out.append(save_gallery(os.path.join(folder, 'data_objects_outdoor.png'), outdoor, seed=1))
    from pinpoint3d_core.evaluation.realdev import shared_dir
    real = os.path.join(shared_dir(), 'devdata', 'mosd', 'mosd_learn22.npz')
    out += write_tabletop_images(folder, real)
    return out


if __name__ == '__main__':
    import sys
    for p in write_doc_images(sys.argv[1] if len(sys.argv) > 1 else 'docs/images'):
        print(p)
