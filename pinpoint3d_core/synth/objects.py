"""
Parametric objects built from named part meshes.

Every generator takes a ``numpy.random.Generator`` and returns a :class:`SynthObject` in its
local frame: origin at the centre of the footprint on the floor, z up, front facing -y. Part
names are stable semantic names ('leg', 'door', 'handle', ...); several parts may share a name
(four legs) and each gets its own part id when placed in a scene. ``parent`` gives the
hierarchy (cabinet drawer -> its handle).
"""

from dataclasses import dataclass, field

import numpy as np

from pinpoint3d_core.synth import geometry as g

# material -> (base RGB 0..1, LiDAR reflectivity 0..1)
MATERIALS = {
    'wood': ((0.55, 0.40, 0.26), 0.35),
    'light_wood': ((0.74, 0.60, 0.42), 0.40),
    'dark_wood': ((0.33, 0.22, 0.14), 0.25),
    'white': ((0.86, 0.85, 0.82), 0.55),
    'grey': ((0.55, 0.55, 0.55), 0.35),
    'black': ((0.12, 0.12, 0.13), 0.08),
    'metal': ((0.70, 0.71, 0.73), 0.45),
    'fabric_blue': ((0.25, 0.32, 0.50), 0.30),
    'fabric_red': ((0.55, 0.18, 0.16), 0.30),
    'fabric_green': ((0.30, 0.42, 0.28), 0.30),
    'fabric_beige': ((0.72, 0.64, 0.50), 0.35),
    'leather': ((0.35, 0.22, 0.15), 0.20),
    'ceramic': ((0.90, 0.88, 0.84), 0.50),
    'glass': ((0.55, 0.65, 0.62), 0.05),
    'plastic_red': ((0.75, 0.15, 0.12), 0.40),
    'plastic_blue': ((0.15, 0.30, 0.70), 0.40),
    'plastic_yellow': ((0.85, 0.72, 0.15), 0.45),
    'wall': ((0.78, 0.74, 0.66), 0.40),
    'floor': ((0.52, 0.42, 0.32), 0.30),
    'carpet': ((0.45, 0.43, 0.40), 0.25),
    'ceiling': ((0.85, 0.84, 0.80), 0.40),
    'asphalt': ((0.22, 0.22, 0.22), 0.12),
    'concrete': ((0.60, 0.58, 0.55), 0.30),
    'brick': ((0.60, 0.32, 0.24), 0.32),
    'plaster': ((0.80, 0.76, 0.68), 0.40),
    'car_paint': ((0.5, 0.5, 0.5), 0.45),
    'tyre': ((0.08, 0.08, 0.08), 0.05),
    'skin': ((0.80, 0.62, 0.50), 0.35),
    'cloth': ((0.30, 0.30, 0.35), 0.25),
    'bark': ((0.35, 0.26, 0.18), 0.30),
    'foliage': ((0.25, 0.42, 0.20), 0.40),
    'sign': ((0.85, 0.85, 0.85), 0.90),
    'lamp_shade': ((0.92, 0.88, 0.75), 0.45),
}

FURNITURE_WOODS = ('wood', 'light_wood', 'dark_wood', 'white', 'grey', 'black')
FABRICS = ('fabric_blue', 'fabric_red', 'fabric_green', 'fabric_beige', 'leather', 'black')
PLASTICS = ('plastic_red', 'plastic_blue', 'plastic_yellow', 'white', 'black', 'ceramic')


@dataclass
class Part:
    """One named part: its mesh, material and parent index (None = child of the object)."""

    name: str
    mesh: tuple
    rgb: np.ndarray
    reflectivity: float
    parent: int = None
    surface: tuple = (0.0, 0.0)   # (shiny, transparent) for depth-camera drop-outs


@dataclass
class SynthObject:
    """An object in its local frame, with its named parts and layout information."""

    category: str
    parts: list = field(default_factory=list)
    has_parts: bool = True
    stuff: bool = False
    half_extent: tuple = (0.5, 0.5)   # footprint half sizes (x, y) for placement
    height: float = 1.0
    supports: list = field(default_factory=list)  # (z, half_x, half_y) free top surfaces
    rng: np.random.Generator = None

    def add(self, name, mesh, material, parent=None, jitter=0.08):
        """Add a part (material: MATERIALS key or (rgb, reflectivity)); return its index."""
        rgb, refl = MATERIALS[material] if isinstance(material, str) else material[:2]
        surface = (TABLETOP_SURFACE.get(material, (0.0, 0.0)) if isinstance(material, str)
                   else tuple(material[2:4]) or (0.0, 0.0))
        rgb = np.asarray(rgb, float)
        if self.rng is not None and jitter:
            rgb = rgb + self.rng.normal(0, jitter, 3)
            refl = refl * self.rng.uniform(0.8, 1.2)
        self.parts.append(Part(name, mesh, np.clip(rgb, 0, 1), float(np.clip(refl, 0, 1)),
                               parent, surface))
        return len(self.parts) - 1

    def finish(self):
        """Compute the footprint and height from the part meshes."""
        v = np.concatenate([p.mesh[0] for p in self.parts])
        self.half_extent = tuple(np.abs(v[:, :2]).max(0))
        self.height = float(v[:, 2].max())
        return self


def _pick(rng, options):
    return options[rng.integers(len(options))]


def _handle(rng, center, vertical=False, length=0.12, material='metal', out=-1):
    """Bar handle on two standoffs; ``out`` is the direction (sign along y) it sticks out."""
    cx, cy, cz = center
    r = 0.008
    off = 0.03 * out
    if vertical:
        a, b = (cx, cy + off, cz - length / 2), (cx, cy + off, cz + length / 2)
        s1, s2 = (cx, cy, cz - length / 2.5), (cx, cy, cz + length / 2.5)
    else:
        a, b = (cx - length / 2, cy + off, cz), (cx + length / 2, cy + off, cz)
        s1, s2 = (cx - length / 2.5, cy, cz), (cx + length / 2.5, cy, cz)
    bar = g.tube(a, b, r, 6)
    st = [g.tube(s, (s[0], s[1] + off, s[2]), r * 0.8, 6) for s in (s1, s2)]
    if rng.random() < 0.3:  # knob instead of bar
        return g.sphere(0.018, (cx, cy + off * 0.6, cz), 5)
    return g.merge([bar] + st)


# ---------------------------------------------------------------- indoor furniture

def table(rng):
    """Table: top, legs or a pedestal, optional drawers with handles."""
    o = SynthObject('Table', rng=rng)
    mat = _pick(rng, FURNITURE_WOODS)
    h = rng.uniform(0.68, 0.78)
    t = rng.uniform(0.025, 0.05)
    if rng.random() < 0.25:  # round pedestal table
        r = rng.uniform(0.4, 0.6)
        o.add('top', g.cylinder(r, t, (0, 0, h - t / 2), resolution=24), mat)
        o.add('pedestal', g.cylinder(rng.uniform(0.03, 0.06), h - t, (0, 0, (h - t) / 2),
                                     resolution=10), mat)
        o.add('base', g.cylinder(r * 0.55, 0.03, (0, 0, 0.015), resolution=16), mat)
        o.supports.append((h, r * 0.6, r * 0.6))
        return o.finish()
    w, d = rng.uniform(0.8, 1.8), rng.uniform(0.6, 1.0)
    o.add('top', g.box((w, d, t), (0, 0, h - t / 2)), mat)
    lw = rng.uniform(0.04, 0.07)
    leg_mat = mat if rng.random() < 0.6 else _pick(rng, ('metal', 'black'))
    round_legs = rng.random() < 0.4
    for sx in (-1, 1):
        for sy in (-1, 1):
            c = (sx * (w / 2 - lw), sy * (d / 2 - lw), (h - t) / 2)
            leg = (g.cylinder(lw / 2, h - t, c, resolution=8) if round_legs
                   else g.box((lw, lw, h - t), c))
            o.add('leg', leg, leg_mat)
    if rng.random() < 0.4:  # apron drawers on the front
        n = rng.integers(1, 3)
        dw = (w - 4 * lw) / n
        dh = rng.uniform(0.08, 0.12)
        for i in range(n):
            cx = -w / 2 + 2 * lw + dw * (i + 0.5)
            cy = -d / 2 + lw + 0.01
            drawer = o.add('drawer', g.box((dw - 0.02, 0.02, dh), (cx, cy, h - t - dh / 2)), mat)
            o.add('handle', _handle(rng, (cx, cy - 0.01, h - t - dh / 2), length=0.1), 'metal',
                  parent=drawer)
    o.supports.append((h, w / 2 - 0.1, d / 2 - 0.1))
    return o.finish()


def chair(rng):
    """Chair: seat, back, legs, optional arms."""
    o = SynthObject('Chair', rng=rng)
    mat = _pick(rng, FURNITURE_WOODS)
    seat_mat = mat if rng.random() < 0.5 else _pick(rng, FABRICS)
    w, d = rng.uniform(0.4, 0.55), rng.uniform(0.4, 0.52)
    sh, st = rng.uniform(0.42, 0.5), rng.uniform(0.03, 0.08)
    o.add('seat', g.box((w, d, st), (0, 0, sh - st / 2)), seat_mat)
    bh, bt = rng.uniform(0.3, 0.5), rng.uniform(0.02, 0.06)
    tilt = rng.uniform(0, 0.2)
    back = g.box((w, bt, bh), (0, 0, bh / 2))
    back = g.transform(back, g.rot_x(-tilt), (0, d / 2 - bt / 2, sh))
    o.add('back', back, seat_mat)
    lw = rng.uniform(0.025, 0.045)
    for sx in (-1, 1):
        for sy in (-1, 1):
            o.add('leg', g.box((lw, lw, sh - st), (sx * (w / 2 - lw / 2), sy * (d / 2 - lw / 2),
                                                   (sh - st) / 2)), mat)
    if rng.random() < 0.35:
        ah = rng.uniform(0.18, 0.25)
        for sx in (-1, 1):
            x = sx * (w / 2 + 0.03)
            arm = g.merge([g.box((0.05, d * 0.85, 0.03), (x, 0, sh + ah)),
                           g.box((0.03, 0.03, ah), (x, -d * 0.3, sh + ah / 2))])
            o.add('arm', arm, mat)
    return o.finish()


def storage_furniture(rng):
    """Cabinet/dresser: body, doors and/or drawers, each with a handle."""
    o = SynthObject('StorageFurniture', rng=rng)
    mat = _pick(rng, FURNITURE_WOODS)
    front_mat = mat if rng.random() < 0.7 else _pick(rng, FURNITURE_WOODS)
    w, d, h = rng.uniform(0.6, 1.6), rng.uniform(0.35, 0.6), rng.uniform(0.6, 1.9)
    plinth = rng.uniform(0.0, 0.08)
    o.add('body', g.box((w, d, h - plinth), (0, 0, plinth + (h - plinth) / 2)), mat)
    fy = -d / 2 - 0.01
    ncol = 1 if w < 0.8 else 2
    cw = (w - 0.04) / ncol
    z0, z1 = plinth + 0.02, h - 0.02
    n_drawers = int(rng.integers(0, 5)) if h < 1.2 else int(rng.integers(0, 3))
    dh = min(0.22, (z1 - z0) / max(n_drawers, 1))
    for col in range(ncol):
        cx = -w / 2 + 0.02 + cw * (col + 0.5)
        z = z0
        for _ in range(n_drawers):
            zc = z + dh / 2
            drawer = o.add('drawer', g.box((cw - 0.01, 0.02, dh - 0.01), (cx, fy, zc)), front_mat)
            o.add('handle', _handle(rng, (cx, fy - 0.01, zc), length=min(0.15, cw / 3)),
                  'metal', parent=drawer)
            z += dh
        if z1 - z > 0.25:
            zc, hh = (z + z1) / 2, z1 - z
            door = o.add('door', g.box((cw - 0.01, 0.02, hh - 0.01), (cx, fy, zc)), front_mat)
            hx = cx + (cw / 2 - 0.06) * (1 if col == ncol - 1 and ncol > 1 else -1)
            o.add('handle', _handle(rng, (hx, fy - 0.01, zc), vertical=True,
                                    length=min(0.2, hh / 3)), 'metal', parent=door)
    if h < 1.3:
        o.supports.append((h, w / 2 - 0.05, d / 2 - 0.05))
    return o.finish()


def refrigerator(rng):
    """Refrigerator: body, one or two doors with handles."""
    o = SynthObject('Refrigerator', rng=rng)
    mat = _pick(rng, ('white', 'metal', 'grey', 'black'))
    w, d, h = rng.uniform(0.55, 0.9), rng.uniform(0.6, 0.75), rng.uniform(1.45, 1.9)
    o.add('body', g.box((w, d, h), (0, 0, h / 2)), mat)
    fy = -d / 2 - 0.02
    if w > 0.8 and rng.random() < 0.5:  # side by side
        for sx in (-1, 1):
            door = o.add('door', g.box((w / 2 - 0.01, 0.04, h - 0.04), (sx * w / 4, fy, h / 2)),
                         mat)
            o.add('handle', _handle(rng, (sx * 0.05, fy - 0.02, h * 0.55), True, 0.4), 'metal',
                  parent=door)
    else:
        split = h * rng.uniform(0.3, 0.4)
        for z0, z1 in ((0.02, h - split), (h - split + 0.01, h - 0.02)):
            door = o.add('door', g.box((w - 0.02, 0.04, z1 - z0), (0, fy, (z0 + z1) / 2)), mat)
            hz = z1 - 0.15 if z0 < 0.1 else z0 + 0.15
            o.add('handle', _handle(rng, (-w / 2 + 0.07, fy - 0.02, hz), True,
                                    min(0.3, (z1 - z0) / 3)), 'metal', parent=door)
    return o.finish()


def dishwasher(rng):
    """Dishwasher: body, door, handle, control panel."""
    o = SynthObject('Dishwasher', rng=rng)
    mat = _pick(rng, ('white', 'metal', 'black'))
    w, d, h = rng.uniform(0.45, 0.62), rng.uniform(0.55, 0.62), rng.uniform(0.8, 0.88)
    o.add('body', g.box((w, d, h), (0, 0, h / 2)), mat)
    fy = -d / 2 - 0.015
    ph = rng.uniform(0.08, 0.12)
    o.add('control_panel', g.box((w - 0.02, 0.03, ph), (0, fy, h - ph / 2 - 0.01)),
          _pick(rng, ('black', 'metal', 'grey')))
    door = o.add('door', g.box((w - 0.02, 0.03, h - ph - 0.04), (0, fy, (h - ph) / 2)), mat)
    o.add('handle', _handle(rng, (0, fy - 0.015, h - ph - 0.07), length=w * 0.6), 'metal',
          parent=door)
    o.supports.append((h, w / 2 - 0.05, d / 2 - 0.05))
    return o.finish()


def microwave(rng):
    """Microwave: body, door with handle, control panel."""
    o = SynthObject('Microwave', rng=rng)
    mat = _pick(rng, ('white', 'metal', 'black', 'grey'))
    w, d, h = rng.uniform(0.42, 0.6), rng.uniform(0.32, 0.45), rng.uniform(0.25, 0.35)
    o.add('body', g.box((w, d, h), (0, 0, h / 2)), mat)
    fy = -d / 2 - 0.01
    pw = w * rng.uniform(0.22, 0.3)
    dw = w - pw
    door = o.add('door', g.box((dw - 0.02, 0.02, h - 0.03), (-w / 2 + dw / 2, fy, h / 2)),
                 _pick(rng, ('black', 'glass', mat)))
    o.add('handle', _handle(rng, (-w / 2 + dw - 0.04, fy - 0.01, h / 2), True, h * 0.6), 'metal',
          parent=door)
    o.add('control_panel', g.box((pw - 0.02, 0.02, h - 0.03), (w / 2 - pw / 2, fy, h / 2)),
          _pick(rng, ('black', 'grey')))
    return o.finish()


def bag(rng):
    """Bag: body and one or two handles."""
    o = SynthObject('Bag', rng=rng)
    mat = _pick(rng, FABRICS)
    w, d, h = rng.uniform(0.25, 0.45), rng.uniform(0.1, 0.22), rng.uniform(0.2, 0.4)
    body = g.sphere(1.0, (0, 0, h / 2), 10, scale=(w / 2, d / 2, h / 2))
    body = (np.clip(body[0], [-w, -d, 0.0], [w, d, h * 0.92]), body[1])  # flat bottom/top
    o.add('body', body, mat)
    for sy in ((-1, 1) if rng.random() < 0.6 else (0,)):
        hd = g.translate(g.torus(w * 0.28, 0.012, np.pi, segments=12, tube_segments=6),
                         (0, sy * d * 0.3, h * 0.9))
        o.add('handle', hd, mat)
    return o.finish()


def mug(rng):
    """Mug: hollow body and a side handle."""
    o = SynthObject('Mug', rng=rng)
    mat = _pick(rng, PLASTICS)
    r, h, t = rng.uniform(0.035, 0.05), rng.uniform(0.08, 0.12), 0.005
    o.add('body', g.lathe([r, r, r - t, r - t], [0, h, h, t], segments=20, cap_top=True), mat)
    hr = h * rng.uniform(0.28, 0.38)
    o.add('handle', g.transform(g.torus(hr, 0.007, np.pi, segments=10, tube_segments=6),
                                g.rot_y(np.pi / 2), (r - 0.003, 0, h * 0.5)), mat)
    return o.finish()


def bottle(rng):
    """Bottle: body, neck, cap."""
    o = SynthObject('Bottle', rng=rng)
    mat = _pick(rng, ('glass', 'plastic_blue', 'plastic_red', 'white', 'plastic_yellow'))
    r, h = rng.uniform(0.03, 0.045), rng.uniform(0.15, 0.26)
    nr, nh = r * rng.uniform(0.35, 0.5), h * rng.uniform(0.15, 0.25)
    sh = h * rng.uniform(0.12, 0.2)
    o.add('body', g.lathe([r, r, r * 0.97], [0, h - nh - sh, h - nh - sh * 0.8], segments=16),
          mat)
    neck_z = [h - nh - sh * 0.8, h - nh - sh * 0.3, h - nh, h]
    o.add('neck', g.lathe([r * 0.97, r * 0.7, nr, nr], neck_z, segments=14, cap_bottom=False),
          mat)
    o.add('cap', g.cylinder(nr * 1.15, 0.02, (0, 0, h + 0.01), resolution=12),
          _pick(rng, ('white', 'black', 'plastic_red', 'plastic_blue')))
    return o.finish()


def lamp(rng):
    """Desk or floor lamp: base, pole (optionally an arm), shade."""
    o = SynthObject('Lamp', rng=rng)
    mat = _pick(rng, ('metal', 'black', 'white', 'dark_wood'))
    floor = rng.random() < 0.5
    ph = rng.uniform(1.3, 1.7) if floor else rng.uniform(0.3, 0.5)
    br = rng.uniform(0.12, 0.18) if floor else rng.uniform(0.06, 0.1)
    o.add('base', g.cylinder(br, 0.03, (0, 0, 0.015), resolution=16), mat)
    o.add('pole', g.tube((0, 0, 0.03), (0, 0, ph), 0.012, 8), mat)
    top = np.array([0.0, 0, ph])
    if rng.random() < 0.4:
        reach = rng.uniform(0.15, 0.35)
        end = top + np.array([reach, 0, reach * 0.3])
        o.add('arm', g.tube(top, end, 0.01, 8), mat)
        top = end
    sr = rng.uniform(0.15, 0.25) if floor else rng.uniform(0.08, 0.13)
    sh = sr * rng.uniform(0.8, 1.3)
    o.add('shade', g.lathe([sr, sr * 0.6], [0, sh], segments=20, cap_bottom=False,
                           center=top - np.array([0, 0, sh * 0.4])), 'lamp_shade')
    return o.finish()


def vase(rng):
    """Vase: body and neck."""
    o = SynthObject('Vase', rng=rng)
    mat = _pick(rng, ('ceramic', 'glass', 'plastic_blue', 'dark_wood', 'white'))
    r, h = rng.uniform(0.05, 0.12), rng.uniform(0.15, 0.4)
    bh = h * rng.uniform(0.55, 0.75)
    prof_z = np.linspace(0, bh, 6)
    prof_r = r * (0.6 + 0.4 * np.sin(np.linspace(0.3, np.pi - 0.3, 6)))
    o.add('body', g.lathe(prof_r, prof_z, segments=18), mat)
    nr = r * rng.uniform(0.35, 0.6)
    o.add('neck', g.lathe([prof_r[-1], nr, nr * 1.2], [bh, bh + (h - bh) * 0.6, h], segments=16,
                          cap_bottom=False), mat)
    return o.finish()


def faucet(rng):
    """Faucet: base, spout, one or two handles."""
    o = SynthObject('Faucet', rng=rng)
    mat = _pick(rng, ('metal', 'black', 'white'))
    o.add('base', g.cylinder(0.03, 0.04, (0, 0, 0.02), resolution=12), mat)
    ph = rng.uniform(0.15, 0.3)
    reach = rng.uniform(0.12, 0.2)
    spout = g.merge([g.tube((0, 0, 0.04), (0, 0, ph), 0.013, 8),
                     g.transform(g.torus(reach / 2, 0.013, np.pi, segments=10, tube_segments=6),
                                 g.rot_z(-np.pi / 2), (0, -reach / 2, ph)),
                     g.tube((0, -reach, ph), (0, -reach, ph - 0.05), 0.013, 8)])
    o.add('spout', spout, mat)
    for sx in ((-1, 1) if rng.random() < 0.5 else (1,)):
        x = sx * rng.uniform(0.06, 0.09)
        o.add('handle', g.merge([g.cylinder(0.015, 0.04, (x, 0, 0.02), resolution=8),
                                 g.box((0.012, 0.06, 0.012), (x, -0.02, 0.05))]), mat)
    return o.finish()


def clutter(rng):
    """Object without part labels (box, bin, ball, cushion)."""
    kind = _pick(rng, ('box', 'bin', 'ball', 'cushion', 'book_stack'))
    o = SynthObject(kind, has_parts=False, rng=rng)
    mat = _pick(rng, PLASTICS + FABRICS + ('wood',))
    if kind == 'box':
        s = rng.uniform(0.15, 0.6, 3)
        o.add('body', g.box(s, (0, 0, s[2] / 2)), mat)
    elif kind == 'bin':
        r, h = rng.uniform(0.12, 0.2), rng.uniform(0.25, 0.45)
        o.add('body', g.lathe([r * 0.8, r, r * 0.95], [0, h, h], segments=18), mat)
    elif kind == 'ball':
        r = rng.uniform(0.08, 0.15)
        o.add('body', g.sphere(r, (0, 0, r), 8), mat)
    elif kind == 'cushion':
        s = rng.uniform(0.3, 0.5)
        o.add('body', g.sphere(1.0, (0, 0, 0.07), 8, scale=(s / 2, s / 2, 0.07)), mat)
    else:
        s = (rng.uniform(0.15, 0.3), rng.uniform(0.2, 0.3), rng.uniform(0.05, 0.2))
        o.add('body', g.box(s, (0, 0, s[2] / 2)), mat)
    return o.finish()


INDOOR_FLOOR = {'Table': table, 'Chair': chair, 'StorageFurniture': storage_furniture,
                'Refrigerator': refrigerator, 'Dishwasher': dishwasher, 'Lamp': lamp,
                'Bag': bag}
INDOOR_SMALL = {'Mug': mug, 'Bottle': bottle, 'Vase': vase, 'Microwave': microwave,
                'Faucet': faucet, 'Lamp': lamp, 'Bag': bag}


# ---------------------------------------------------------------- outdoor

def _car_like(rng, category, length, width, height, box_frac):
    """Vehicle: body, hood, roof, doors, windows, wheels, mirrors; front = +x."""
    o = SynthObject(category, rng=rng)
    paint = tuple(np.clip(rng.uniform(0.05, 0.9) + rng.normal(0, 0.1, 3), 0, 1))
    refl = rng.uniform(0.25, 0.7)
    paint_mat = (paint, refl)
    wr = rng.uniform(0.3, 0.4) * (1.3 if category != 'Car' else 1.0)
    clear = wr * 0.55
    body_h = height * (0.45 if category == 'Car' else 0.5)
    cabin_len = length * box_frac
    trunk_len = length * rng.uniform(0.05, 0.2) if category == 'Car' else 0.0
    hood_len = length - cabin_len - trunk_len
    L2, W2 = length / 2, width / 2
    # lower body
    lower = g.box((length, width, body_h - clear), (0, 0, clear + (body_h - clear) / 2))
    # hood slab on the front part
    _add_m(o, 'hood', g.box((hood_len * 0.9, width * 0.9, 0.04),
                            (L2 - hood_len * 0.45, 0, body_h + 0.02)), paint_mat)
    cx = -L2 + trunk_len + cabin_len / 2
    cab_h = height - body_h
    # windows: thin glass panels around the cabin
    glass = ((0.2, 0.25, 0.28), 0.05)
    win = [g.box((cabin_len * 0.9, 0.02, cab_h * 0.8), (cx, sy * (W2 - 0.05), body_h + cab_h / 2))
           for sy in (-1, 1)]
    for s, frac in ((1, 0.8), (-1, 0.7)):  # windscreen and rear window
        win.append(g.box((0.02, width * 0.85, cab_h * frac),
                         (cx + s * cabin_len / 2, 0, body_h + cab_h / 2)))
    _add_m(o, 'window', g.merge(win), glass)
    pillars = [g.box((0.08, 0.08, cab_h), (cx + s * cabin_len / 2, sy * (W2 - 0.06),
                                           body_h + cab_h / 2)) for s in (-1, 1) for sy in (-1, 1)]
    _add_m(o, 'body', g.merge([lower] + pillars), paint_mat)  # lower body and cabin pillars
    _add_m(o, 'roof', g.box((cabin_len, width * 0.95, 0.05), (cx, 0, height - 0.025)), paint_mat)
    n_doors = 2 if category != 'Car' or rng.random() < 0.3 else 4
    dl = min(cabin_len, length * 0.55) / (n_doors // 2)
    for sy in (-1, 1):
        for i in range(n_doors // 2):
            x = cx + cabin_len / 2 - dl * (i + 0.5)
            _add_m(o, 'door', g.box((dl - 0.03, 0.03, body_h - clear - 0.05),
                                    (x, sy * (W2 + 0.01), clear + (body_h - clear) / 2 + 0.02)),
                   paint_mat)
        mirror_at = (cx + cabin_len / 2 - 0.05, sy * (W2 + 0.07), body_h + 0.08)
        _add_m(o, 'mirror', g.box((0.1, 0.15, 0.08), mirror_at), paint_mat)
    axle = (L2 - wr * 1.5, -L2 + wr * 1.5)
    for x in axle:
        for sy in (-1, 1):
            _add_m(o, 'wheel', g.cylinder(wr, 0.22, (x, sy * (W2 - 0.1), wr), axis='y',
                                          resolution=14), ((0.08, 0.08, 0.08), 0.05))
    return o.finish()


def _add_m(o, name, mesh, mat):
    return o.add(name, mesh, mat, jitter=0.02)


def car(rng):
    """Passenger car."""
    return _car_like(rng, 'Car', rng.uniform(3.8, 4.9), rng.uniform(1.65, 1.9),
                     rng.uniform(1.4, 1.6), rng.uniform(0.45, 0.6))


def van(rng):
    """Van or small truck (tall cabin)."""
    return _car_like(rng, 'Van', rng.uniform(4.8, 6.5), rng.uniform(1.9, 2.3),
                     rng.uniform(2.0, 2.8), rng.uniform(0.7, 0.85))


def _person_parts(o, rng, base=(0, 0, 0), seated=False):
    bx, by, bz = base
    h = rng.uniform(1.55, 1.9)
    cloth = (tuple(rng.uniform(0.05, 0.6, 3)), rng.uniform(0.15, 0.4))
    skin = MATERIALS['skin']
    legs = MATERIALS['cloth']
    hip = bz + (0.0 if seated else h * 0.47)
    if not seated:
        for sy in (-1, 1):
            _add_m(o, 'leg', g.tube((bx, by + sy * 0.1, bz + 0.05), (bx, by + sy * 0.1, hip),
                                    0.065, 8), legs)
    else:
        for sy in (-1, 1):
            knee = (bx + 0.35, by + sy * 0.12, hip - 0.45)
            _add_m(o, 'leg', g.tube((bx, by + sy * 0.1, hip), knee, 0.06, 8), legs)
    th = h * 0.3
    _add_m(o, 'torso', g.sphere(1.0, (bx, by, hip + th / 2), 8, scale=(0.12, 0.2, th / 2)),
           cloth)
    for sy in (-1, 1):
        _add_m(o, 'arm', g.tube((bx, by + sy * 0.24, hip + th * 0.95),
                                (bx + (0.35 if seated else 0.05), by + sy * 0.27, hip + th * 0.2),
                                0.045, 8), cloth)
    _add_m(o, 'head', g.sphere(0.11, (bx, by, hip + th + 0.14), 8), skin)
    return hip + th + 0.25


def pedestrian(rng):
    """Pedestrian: head, torso, arms, legs."""
    o = SynthObject('Pedestrian', rng=rng)
    _person_parts(o, rng)
    return o.finish()


def cyclist(rng):
    """Cyclist: bicycle (wheels, frame, handlebar) with a seated rider."""
    o = SynthObject('Cyclist', rng=rng)
    wr = rng.uniform(0.3, 0.36)
    frame = (tuple(rng.uniform(0, 1, 3)), 0.5)
    tyre = ((0.08, 0.08, 0.08), 0.05)
    for x in (-0.55, 0.55):
        _add_m(o, 'wheel', g.transform(g.torus(wr, 0.025, segments=20, tube_segments=6),
                                       None, (x, 0, wr)), tyre)
    _add_m(o, 'frame', g.merge([g.tube((-0.55, 0, wr), (0, 0, wr + 0.35), 0.02, 6),
                                g.tube((0, 0, wr + 0.35), (0.55, 0, wr), 0.02, 6),
                                g.tube((-0.55, 0, wr), (0.05, 0, wr), 0.02, 6),
                                g.tube((0.05, 0, wr), (0.45, 0, wr + 0.45), 0.02, 6)]), frame)
    _add_m(o, 'handlebar', g.tube((0.45, -0.25, wr + 0.48), (0.45, 0.25, wr + 0.48), 0.015, 6),
           ((0.1, 0.1, 0.1), 0.3))
    _person_parts(o, rng, (-0.1, 0, wr + 0.45), seated=True)
    return o.finish()


def pole(rng):
    """Street lamp pole: pole and lamp head."""
    o = SynthObject('Pole', rng=rng)
    h = rng.uniform(4, 8)
    _add_m(o, 'pole', g.cylinder(rng.uniform(0.06, 0.12), h, (0, 0, h / 2), resolution=10),
           MATERIALS['metal'])
    if rng.random() < 0.7:
        _add_m(o, 'lamp', g.merge([g.tube((0, 0, h), (0, -1.2, h + 0.2), 0.05, 6),
                                   g.box((0.3, 0.6, 0.15), (0, -1.3, h + 0.15))]),
               MATERIALS['grey'])
    return o.finish()


def traffic_sign(rng):
    """Traffic sign: pole and sign plate."""
    o = SynthObject('TrafficSign', rng=rng)
    h = rng.uniform(2.0, 3.0)
    _add_m(o, 'pole', g.cylinder(0.04, h, (0, 0, h / 2), resolution=8), MATERIALS['metal'])
    s = rng.uniform(0.5, 0.9)
    plate = (g.cylinder(s / 2, 0.03, (0, 0, 0), axis='x', resolution=16) if rng.random() < 0.5
             else g.box((0.03, s, s), (0, 0, 0)))
    _add_m(o, 'sign', g.translate(plate, (-0.05, 0, h + s / 2 - 0.1)), MATERIALS['sign'])
    return o.finish()


def tree(rng):
    """Tree: trunk and crown."""
    o = SynthObject('Tree', rng=rng)
    th = rng.uniform(1.5, 3.5)
    _add_m(o, 'trunk', g.cylinder(rng.uniform(0.1, 0.25), th + 0.5, (0, 0, (th + 0.5) / 2),
                                  resolution=10), MATERIALS['bark'])
    cr = rng.uniform(1.2, 3.0)
    crown = g.sphere(1.0, (0, 0, th + cr * 0.8), 10, scale=(cr, cr, cr * rng.uniform(0.8, 1.3)))
    v = crown[0] + rng.normal(0, cr * 0.06, crown[0].shape)  # lumpy crown
    _add_m(o, 'crown', (v, crown[1]), MATERIALS['foliage'])
    return o.finish()


def barrier(rng):
    """
    Road barrier: a wider foot under a panel, front = +x along its length.

    nuScenes labels rows of these (1.4-2 m long, 0.2-0.4 m thick, 0.7-0.9 m tall) at
    construction sites; rows of near-identical neighbours teach the model to stop at a gap.
    """
    o = SynthObject('Barrier', rng=rng)
    length = rng.uniform(1.2, 2.2)
    height = rng.uniform(0.7, 1.0)
    foot_w = rng.uniform(0.3, 0.6)
    top_w = rng.uniform(0.12, min(0.3, foot_w))
    foot_h = height * rng.uniform(0.2, 0.35)
    mat = MATERIALS[_pick(rng, ('concrete', 'plastic_red', 'white', 'plastic_yellow'))]
    _add_m(o, 'foot', g.box((length, foot_w, foot_h), (0, 0, foot_h / 2)), mat)
    _add_m(o, 'panel', g.box((length * 0.98, top_w, height - foot_h),
                             (0, 0, foot_h + (height - foot_h) / 2)), mat)
    return o.finish()


def traffic_cone(rng):
    """Traffic cone: square base and cone (with a reflective band)."""
    o = SynthObject('TrafficCone', rng=rng)
    h = rng.uniform(0.45, 0.9)
    base = h * rng.uniform(0.5, 0.6)
    r0 = base * 0.38
    _add_m(o, 'base', g.box((base, base, 0.04), (0, 0, 0.02)), MATERIALS['black'])
    _add_m(o, 'cone', g.lathe([r0, r0 * 0.45, r0 * 0.12], [0.04, 0.04 + h * 0.55, h],
                              segments=12, cap_top=True), ((0.9, 0.35, 0.1), 0.8))
    return o.finish()


def building(rng, length=None):
    """Build a facade along x facing -y: wall, windows, door."""
    o = SynthObject('Building', rng=rng)
    length = length or rng.uniform(8, 25)
    h = rng.uniform(6, 20)
    depth = 6.0
    wall = MATERIALS[_pick(rng, ('brick', 'plaster', 'concrete'))]
    _add_m(o, 'wall', g.box((length, depth, h), (0, depth / 2, h / 2)), wall)
    floors = int(h // 3)
    cols = max(1, int(length // 3))
    wins = []
    for f in range(1, floors):
        for c in range(cols):
            x = -length / 2 + (c + 0.5) * length / cols
            wins.append(g.box((1.2, 0.06, 1.4), (x, -0.02, f * 3 + 1.0)))
    if wins:
        _add_m(o, 'window', g.merge(wins), ((0.2, 0.25, 0.3), 0.05))
    _add_m(o, 'door', g.box((1.2, 0.06, 2.2), (rng.uniform(-length / 3, length / 3), -0.03, 1.1)),
           MATERIALS['dark_wood'])
    return o.finish()


# ---------------------------------------------------------------- tabletop (household, 5-30 cm)

# materials of things on a table (printed cardboard, tins, fruit, table tops); how a depth
# camera fails on a material is in TABLETOP_SURFACE
MATERIALS.update({
    'cardboard': ((0.62, 0.48, 0.33), 0.35),
    'print_white': ((0.88, 0.87, 0.84), 0.5),
    'tin': ((0.72, 0.73, 0.75), 0.6),
    'terracotta': ((0.66, 0.36, 0.24), 0.3),
    'fruit_green': ((0.45, 0.62, 0.20), 0.3),
    'fruit_orange': ((0.90, 0.50, 0.10), 0.3),
    'table_white': ((0.84, 0.80, 0.78), 0.4),
    'table_grey': ((0.62, 0.60, 0.60), 0.35),
})
# material -> (shiny 0..1: specular drop-outs, transparent 0..1: rays that pass through)
TABLETOP_SURFACE = {'metal': (0.6, 0.0), 'tin': (0.7, 0.0), 'glass': (0.5, 0.6),
                    'ceramic': (0.25, 0.0), 'black': (0.2, 0.0), 'plastic_red': (0.1, 0.0),
                    'plastic_blue': (0.1, 0.0), 'plastic_yellow': (0.1, 0.0)}
BOX_MATERIALS = ('cardboard', 'print_white', 'plastic_red', 'plastic_blue', 'plastic_yellow',
                 'black', 'fabric_green', 'grey', 'white')
SOFT_MATERIALS = ('fabric_blue', 'fabric_red', 'fabric_green', 'fabric_beige', 'fruit_green',
                  'fruit_orange', 'cloth', 'leather')


def _printed(rng, material):
    """Return the material, or more often a random printed colour (packaging)."""
    if rng.random() < 0.4:
        return material
    rgb = tuple(np.clip(rng.uniform(0.25, 1.0, 3), 0, 1))
    return (rgb, MATERIALS[material][1]) + TABLETOP_SURFACE.get(material, (0.0, 0.0))


def _log_uniform(rng, lo, hi, size=None):
    return np.exp(rng.uniform(np.log(lo), np.log(hi), size))


def household_box(rng):
    """Box of any aspect ratio (cube, book, carton, bar, tray), 3-30 cm sides, lying flat."""
    o = SynthObject('Box', has_parts=False, rng=rng)
    shape = _pick(rng, ('cube', 'flat', 'tall', 'long', 'any'))
    if shape == 'cube':
        s = np.full(3, rng.uniform(0.07, 0.25)) * rng.uniform(0.85, 1.15, 3)
    elif shape == 'flat':
        s = np.array([rng.uniform(0.12, 0.3), rng.uniform(0.1, 0.25), rng.uniform(0.02, 0.07)])
    elif shape == 'tall':
        s = np.array([rng.uniform(0.08, 0.22), rng.uniform(0.04, 0.1), rng.uniform(0.15, 0.3)])
    elif shape == 'long':
        s = np.array([rng.uniform(0.15, 0.3), rng.uniform(0.03, 0.08), rng.uniform(0.03, 0.08)])
    else:
        s = _log_uniform(rng, 0.04, 0.3, 3)
        s[rng.integers(3)] = max(s.max(), 0.05)
    s = np.clip(s, 0.02, 0.3)
    o.add('body', g.box(s, (0, 0, s[2] / 2)), _printed(rng, _pick(rng, BOX_MATERIALS)),
          jitter=0.05)
    return o.finish()


def can(rng):
    """Tin can or drink can, upright or lying on its side (no parts)."""
    o = SynthObject('Can', has_parts=False, rng=rng)
    r, h = rng.uniform(0.025, 0.05), rng.uniform(0.06, 0.16)
    mat = _printed(rng, 'tin')
    if rng.random() < 0.2:  # lying: axis along x, resting on the table
        o.add('body', g.cylinder(r, h, (0, 0, r), axis='x', resolution=20), mat)
    else:
        o.add('body', g.cylinder(r, h, (0, 0, h / 2), resolution=20), mat)
    return o.finish()


def bowl(rng):
    """Bowl: a thin-walled lathe, open at the top (no parts)."""
    o = SynthObject('Bowl', has_parts=False, rng=rng)
    big, h = rng.uniform(0.06, 0.14), rng.uniform(0.04, 0.09)
    foot, t = big * rng.uniform(0.4, 0.6), 0.004
    k = np.linspace(0, 1, 6)
    outer_r = foot + (big - foot) * np.sin(k * np.pi / 2)
    outer_z = h * k ** 1.2
    radii = np.concatenate([outer_r, (outer_r - t)[::-1][:-1], [0.0]])
    heights = np.concatenate([outer_z, (outer_z[::-1] + t * (1 - k[::-1]))[:-1], [t]])
    o.add('body', g.lathe(radii, heights, segments=24), _pick(rng, PLASTICS + ('terracotta',)))
    return o.finish()


def jar(rng):
    """Jar or food container: body and a screw lid."""
    o = SynthObject('Jar', rng=rng)
    r, h = rng.uniform(0.03, 0.06), rng.uniform(0.06, 0.16)
    lid_h = rng.uniform(0.012, 0.025)
    o.add('body', g.lathe([r * 0.95, r, r, r * 0.92], [0, 0.005, h - lid_h - 0.004, h - lid_h],
                          segments=20), _pick(rng, ('glass', 'white', 'plastic_red', 'ceramic')))
    o.add('lid', g.cylinder(r * 0.96, lid_h, (0, 0, h - lid_h / 2), resolution=20),
          _pick(rng, ('metal', 'black', 'white', 'plastic_red', 'plastic_blue')))
    return o.finish()


def cup(rng):
    """Paper or plastic cup: a tapered open lathe (no parts)."""
    o = SynthObject('Cup', has_parts=False, rng=rng)
    r, h, t = rng.uniform(0.03, 0.045), rng.uniform(0.07, 0.13), 0.003
    rb = r * rng.uniform(0.65, 0.8)
    o.add('body', g.lathe([rb, r, r - t, rb - t, 0.0], [0, h, h, t, t], segments=20),
          _pick(rng, PLASTICS + ('print_white',)))
    return o.finish()


def soft_blob(rng):
    """Soft or irregular thing (plush toy, cloth bundle, fruit, sponge): a lumpy squashed body."""
    o = SynthObject('Soft', has_parts=False, rng=rng)
    size = rng.uniform(0.05, 0.2, 3)
    size[2] = min(size[2], size[:2].max())
    v, f = g.sphere(1.0, (0, 0, 0), 12)
    d = v / np.linalg.norm(v, axis=1, keepdims=True)
    bump = np.zeros(len(v))
    for _ in range(4):  # a few smooth random lobes
        axis = rng.normal(size=3)
        axis /= np.linalg.norm(axis)
        bump += rng.uniform(-0.25, 0.3) * np.exp(rng.uniform(1.0, 4.0) * (d @ axis - 1))
    v = d * (1 + bump)[:, None] * size / 2
    v[:, 2] -= v[:, 2].min()
    flat = size[2] * rng.uniform(0.05, 0.2)  # squashed where it rests
    v[:, 2] = np.maximum(v[:, 2] - flat, 0)
    o.add('body', (v, f), _pick(rng, SOFT_MATERIALS))
    return o.finish()


def household_mug(rng):
    """Mug with its handle as a part (the indoor mug, in tabletop colours)."""
    return mug(rng)


def household_bottle(rng):
    """Bottle with body, neck and cap parts; sometimes short and wide (sauce, shampoo)."""
    o = bottle(rng)
    top = max(p.mesh[0][:, 2].max() for p in o.parts)
    if top > 0.3:  # keep objects within 30 cm
        s = 0.3 / top
        for p in o.parts:
            p.mesh = (p.mesh[0] * s, p.mesh[1])
    return o.finish()


TABLETOP = {'Box': household_box, 'Can': can, 'Mug': household_mug,
            'Bottle': household_bottle, 'Bowl': bowl, 'Jar': jar, 'Cup': cup, 'Soft': soft_blob}
TABLETOP_WEIGHTS = {'Box': 5, 'Can': 2, 'Mug': 2, 'Bottle': 1.5, 'Bowl': 1, 'Jar': 1,
                    'Cup': 1, 'Soft': 1.5}
