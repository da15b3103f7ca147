"""
A tiny procedural scene (floor + a few boxy objects with parts) for tests and smoke runs.

It needs nothing beyond numpy, so training and evaluation can be checked end to end in a few
seconds without the full generator (``pinpoint3d_core.synth``). Kind name: ``toy``.
"""

import numpy as np

from pinpoint3d_core.scene import Scene


def _box_surface(rng, lo, hi, density):
    """Points on the surface of an axis-aligned box, ~``density`` points per m²."""
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    size = hi - lo
    faces = []
    for axis in range(3):
        u, v = [a for a in range(3) if a != axis]
        area = size[u] * size[v]
        n = max(4, int(area * density))
        for side in (lo[axis], hi[axis]):
            p = np.empty((n, 3))
            p[:, axis] = side
            p[:, u] = rng.uniform(lo[u], hi[u], n)
            p[:, v] = rng.uniform(lo[v], hi[v], n)
            faces.append(p)
    return np.concatenate(faces)


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
            p = _box_surface(rng, lo, hi, density)
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
