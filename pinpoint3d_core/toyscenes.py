"""
Tiny procedural box scenes for tests, smoke runs and benchmarks (numpy only).

``benchmark_room`` is one fixed room (walls, a table, a chair and a cabinet with parts) with an
exact point count, the scene of ``pinpoint3d bench model``; ``toy_scene`` is a random floor with
a few tables and cabinets, the ``toy`` training kind. Both sample box surfaces with
``box_surface`` and need nothing beyond numpy, so training and evaluation can be checked end to
end in seconds without the full generator (``pinpoint3d_core.synth``).
"""

import numpy as np

from pinpoint3d_core.scene import Scene


def box_surface(rng, centre, size, num_points):
    """``num_points`` points uniform on the surface of an axis-aligned box."""
    size = np.asarray(size, float)
    face_area = np.array([size[1] * size[2], size[0] * size[2], size[0] * size[1]])
    axis = rng.choice(3, size=num_points, p=face_area / face_area.sum())
    p = rng.uniform(-0.5, 0.5, (num_points, 3))
    p[np.arange(num_points), axis] = rng.choice([-0.5, 0.5], size=num_points)
    return np.asarray(centre, float) + p * size


def surface_area(size):
    """Return the surface area of a box of ``size`` (m²)."""
    s = np.asarray(size, float)
    return 2 * (s[0] * s[1] + s[1] * s[2] + s[0] * s[2])


def _boxes():
    """(object id, part id, centre, size, rgb) of every box; object 0 = room shell."""
    b = []
    room = (6.0, 5.0, 3.0)
    b.append((0, 0, (3.0, 2.5, -0.01), (6.0, 5.0, 0.02), (120, 110, 100)))       # floor
    b.append((0, 0, (3.0, -0.01, 1.5), (6.0, 0.02, 3.0), (200, 200, 190)))       # walls
    b.append((0, 0, (3.0, 5.01, 1.5), (6.0, 0.02, 3.0), (200, 200, 190)))
    b.append((0, 0, (-0.01, 2.5, 1.5), (0.02, 5.0, 3.0), (190, 200, 200)))
    b.append((0, 0, (6.01, 2.5, 1.5), (0.02, 5.0, 3.0), (190, 200, 200)))
    # Table (object 1): top + 4 legs.
    b.append((1, 1, (2.0, 2.0, 0.74), (1.2, 0.8, 0.04), (150, 90, 40)))
    for j, (dx, dy) in enumerate(((-0.55, -0.35), (0.55, -0.35), (-0.55, 0.35), (0.55, 0.35))):
        b.append((1, 2 + j, (2.0 + dx, 2.0 + dy, 0.36), (0.05, 0.05, 0.72), (90, 60, 30)))
    # Chair (object 2): seat, back, 4 legs.
    b.append((2, 6, (2.0, 3.0, 0.45), (0.45, 0.45, 0.04), (40, 80, 160)))
    b.append((2, 7, (2.0, 3.21, 0.72), (0.45, 0.03, 0.5), (30, 60, 140)))
    for j, (dx, dy) in enumerate(((-0.2, -0.2), (0.2, -0.2), (-0.2, 0.2), (0.2, 0.2))):
        b.append((2, 8 + j, (2.0 + dx, 3.0 + dy, 0.22), (0.03, 0.03, 0.44), (20, 20, 20)))
    # Cabinet (object 3): body, two doors, top.
    b.append((3, 12, (5.6, 1.0, 0.5), (0.6, 1.0, 1.0), (180, 180, 170)))
    b.append((3, 13, (5.28, 0.75, 0.5), (0.02, 0.48, 0.9), (160, 40, 40)))
    b.append((3, 14, (5.28, 1.25, 0.5), (0.02, 0.48, 0.9), (40, 160, 40)))
    assert room
    return b


def benchmark_room(num_points, seed=0):
    """
    Return dict(points, colors, object_ids, part_ids) sampled on box surfaces.

    Objects get a fixed share of the points (25 %) so they stay visible at every size.
    """
    rng = np.random.default_rng(seed)
    boxes = _boxes()
    area = np.array([2 * (s[0] * s[1] + s[1] * s[2] + s[0] * s[2]) for _, _, _, s, _ in boxes])
    is_obj = np.array([o > 0 for o, _, _, _, _ in boxes])
    share = np.where(is_obj, 0.25 * area / area[is_obj].sum(), 0.75 * area / area[~is_obj].sum())
    counts = rng.multinomial(num_points, share)
    pts, cols, oids, pids = [], [], [], []
    for (oid, pid, centre, size, rgb), n in zip(boxes, counts):
        pts.append(box_surface(rng, centre, size, n))
        c = np.clip(np.asarray(rgb) + rng.normal(0, 8, (n, 3)), 0, 255)
        cols.append(c.astype(np.uint8))
        oids.append(np.full(n, oid, np.int32))
        pids.append(np.full(n, pid, np.int32))
    return {'points': np.concatenate(pts).astype(np.float32), 'colors': np.concatenate(cols),
            'object_ids': np.concatenate(oids), 'part_ids': np.concatenate(pids)}


def toy_scene(seed=0, n_objects=3, density=900.0, room=4.0):
    """Floor plus ``n_objects`` tables (top + legs) / cabinets (body + door + handle)."""
    rng = np.random.default_rng(seed)
    pts, obj, part, col = [], [], [], []
    floor = np.column_stack([rng.uniform(0, room, int(room * room * density / 4)),
                             rng.uniform(0, room, int(room * room * density / 4)),
                             rng.normal(0, 0.003, int(room * room * density / 4))])
    pts.append(floor)
    obj.append(np.zeros(len(floor), int))
    part.append(np.zeros(len(floor), int))
    col.append(np.tile([150, 140, 120], (len(floor), 1)))
    next_part = 1
    slots = rng.permutation(4)[:n_objects]
    for k, slot in enumerate(slots, 1):
        cx, cy = 1.0 + 2.0 * (slot % 2), 1.0 + 2.0 * (slot // 2)
        pieces = []
        if rng.random() < 0.5:
            w, d, h = rng.uniform(0.7, 1.1), rng.uniform(0.5, 0.8), rng.uniform(0.6, 0.8)
            pieces.append(('top', [cx - w / 2, cy - d / 2, h - 0.05], [cx + w / 2, cy + d / 2, h]))
            for sx in (-1, 1):
                for sy in (-1, 1):
                    x, y = cx + sx * (w / 2 - 0.05), cy + sy * (d / 2 - 0.05)
                    pieces.append((f'leg{sx}{sy}', [x - 0.03, y - 0.03, 0.0],
                                   [x + 0.03, y + 0.03, h - 0.05]))
            # The four legs form one part, as in part-annotated datasets.
            names = ['top', 'legs']
        else:
            w, d, h = rng.uniform(0.6, 0.9), rng.uniform(0.4, 0.6), rng.uniform(0.8, 1.2)
            pieces.append(('body', [cx - w / 2, cy - d / 2, 0.0], [cx + w / 2, cy + d / 2, h]))
            pieces.append(('door', [cx - w / 2 + 0.03, cy - d / 2 - 0.03, 0.05],
                           [cx + w / 2 - 0.03, cy - d / 2, h - 0.05]))
            pieces.append(('handle', [cx + w / 2 - 0.15, cy - d / 2 - 0.08, h / 2 - 0.08],
                           [cx + w / 2 - 0.11, cy - d / 2 - 0.03, h / 2 + 0.08]))
            names = ['body', 'door', 'handle']
        part_of = {n: next_part + i for i, n in enumerate(names)}
        base = rng.integers(40, 215, size=3)
        for name, lo, hi in pieces:
            key = 'legs' if name.startswith('leg') else name
            lo, hi = np.asarray(lo, float), np.asarray(hi, float)
            n = max(4, int(surface_area(hi - lo) * density))
            p = box_surface(rng, (lo + hi) / 2, hi - lo, n)
            pid = part_of[key]
            shade = np.clip(base + (pid - next_part) * 35, 0, 255)
            pts.append(p)
            obj.append(np.full(len(p), k))
            part.append(np.full(len(p), pid))
            col.append(np.tile(shade, (len(p), 1)))
        next_part += len(names)
    coords = np.concatenate(pts)
    colors = np.concatenate(col) + rng.normal(0, 6, (len(coords), 3))
    return Scene(coords.astype(np.float32), np.clip(colors, 0, 255).astype(np.uint8), None,
                 np.concatenate(obj).astype(np.int32), np.concatenate(part).astype(np.int32),
                 {'generator': 'toy', 'seed': int(seed)})
