"""
Scene composition: place objects into a labelled triangle world.

A :class:`World` is one triangle soup with per-triangle labels (object id, part id, colour,
LiDAR reflectivity), ready for one ``RaycastingScene``. Indoor rooms use a floor occupancy grid
for furniture and support surfaces for small objects; streets use slots along lanes and
sidewalks.
"""

import numpy as np

from pinpoint3d_core.synth import geometry as g
from pinpoint3d_core.synth import objects as ob


class World:
    """Triangles of all placed objects with their labels and the objects' meta records."""

    def __init__(self):
        """Start an empty world (object and part ids start at 1)."""
        self._chunks = []
        self._surface = []
        self.objects = {}
        self._next_part = 1
        # filled by generation: per-triangle object/part ids as they appear in the Scene
        self.final_object = None
        self.final_part = None

    def place(self, obj, yaw=0.0, position=(0, 0, 0), parent=None):
        """Add ``obj`` rotated by ``yaw`` about z and moved to ``position``; returns its id."""
        oid = len(self.objects) + 1
        rot = g.rot_z(yaw)
        pos = np.asarray(position, float)
        part_ids = []
        for part in obj.parts:
            pid = 0
            if obj.has_parts:
                pid = self._next_part
                self._next_part += 1
            part_ids.append(pid)
            v, f = part.mesh
            n = len(f)
            self._chunks.append((v @ rot.T + pos, f, np.full(n, oid, np.int32),
                                 np.full(n, pid, np.int32), np.tile(part.rgb, (n, 1)),
                                 np.full(n, part.reflectivity)))
            self._surface.append(np.tile(np.asarray(part.surface, float), (n, 1)))
        cat = obj.category
        rec = {'name': f'{cat.lower()}_{oid}', 'category': cat, 'has_parts': obj.has_parts,
               'stuff': obj.stuff, 'parent': parent, 'parts': {}, 'part_parent': {}}
        if obj.has_parts:
            for part, pid in zip(obj.parts, part_ids):
                rec['parts'][pid] = part.name
                rec['part_parent'][pid] = 0 if part.parent is None else part_ids[part.parent]
        self.objects[oid] = rec
        return oid

    def arrays(self):
        """Return (vertices, triangles, tri_object, tri_part, tri_rgb, tri_reflectivity)."""
        offsets = np.cumsum([0] + [len(c[0]) for c in self._chunks[:-1]])
        v = np.concatenate([c[0] for c in self._chunks]).astype(np.float32)
        f = np.concatenate([c[1] + o for c, o in zip(self._chunks, offsets)]).astype(np.uint32)
        cols = [np.concatenate([c[i] for c in self._chunks]) for i in range(2, 6)]
        return (v, f, *cols)

    def surface_arrays(self):
        """Return (T, 2) per-triangle (shiny, transparent) in World.arrays() order."""
        return np.concatenate(self._surface)

    def scene_part_mesh(self, part_id):
        """Vertices and triangles labelled ``part_id`` in the generated Scene."""
        v, f = self.arrays()[:2]
        return v, f[self.final_part == part_id]


def _stuff(category, mesh, material, rng):
    o = ob.SynthObject(category, has_parts=False, stuff=True, rng=rng)
    o.add(category, mesh, material, jitter=0.03)
    return o.finish()


# ---------------------------------------------------------------- indoor

class _FloorGrid:
    """Occupancy grid over the room floor at 5 cm for furniture placement."""

    def __init__(self, width, depth, cell=0.05):
        self.cell = cell
        self.occ = np.zeros((int(width / cell), int(depth / cell)), bool)
        self.w, self.d = width, depth

    def try_place(self, half, yaw, center, margin=0.05):
        """Mark and return True when the yawed footprint at ``center`` is free."""
        c, s = abs(np.cos(yaw)), abs(np.sin(yaw))
        hx = c * half[0] + s * half[1] + margin
        hy = s * half[0] + c * half[1] + margin
        x0, x1 = center[0] - hx, center[0] + hx
        y0, y1 = center[1] - hy, center[1] + hy
        if x0 < 0 or y0 < 0 or x1 > self.w or y1 > self.d:
            return False
        i0, i1 = int(x0 / self.cell), int(np.ceil(x1 / self.cell))
        j0, j1 = int(y0 / self.cell), int(np.ceil(y1 / self.cell))
        if self.occ[i0:i1, j0:j1].any():
            return False
        self.occ[i0:i1, j0:j1] = True
        return True


WALL_CATEGORIES = ('StorageFurniture', 'Refrigerator', 'Dishwasher')


def indoor_world(rng, size='normal', ceiling=False):
    """
    Room shell, furniture on a floor grid, small objects on supports, clutter.

    Returns (world, room dict, floor grid); the grid tells the sensor where free floor is.
    """
    world = World()
    if size == 'small':
        width, depth = rng.uniform(3.0, 4.2, 2)
        height = rng.uniform(2.3, 2.6)
        n_furniture, n_clutter = int(rng.integers(3, 6)), int(rng.integers(1, 3))
    else:
        width, depth = rng.uniform(5.5, 8.5, 2)
        height = rng.uniform(2.6, 3.1)
        n_furniture, n_clutter = int(rng.integers(12, 21)), int(rng.integers(8, 17))
    floor_mat = ob._pick(rng, ('floor', 'carpet', 'light_wood', 'grey'))
    world.place(_stuff('floor', g.box((width, depth, 0.05), (width / 2, depth / 2, -0.025)),
                       floor_mat, rng))
    t = 0.1
    walls = [((width + 2 * t, t, height), (width / 2, -t / 2, height / 2)),
             ((width + 2 * t, t, height), (width / 2, depth + t / 2, height / 2)),
             ((t, depth, height), (-t / 2, depth / 2, height / 2)),
             ((t, depth, height), (width + t / 2, depth / 2, height / 2))]
    wall_rgb = np.clip(np.asarray(ob.MATERIALS['wall'][0]) + rng.normal(0, 0.06, 3), 0, 1)
    for size3, center in walls:
        world.place(_stuff('wall', g.box(size3, center), (wall_rgb, 0.4), rng))
    if ceiling:
        world.place(_stuff('ceiling', g.box((width, depth, 0.05),
                                            (width / 2, depth / 2, height + 0.025)),
                           'ceiling', rng))
    grid = _FloorGrid(width, depth)
    # keep a free spot for the sensor trajectory in the middle
    grid.try_place((0.35, 0.35), 0.0, (width / 2, depth / 2), margin=0.0)
    categories = list(ob.INDOOR_FLOOR)
    weights = np.array([3, 4, 3, 1, 1, 1, 1], float)
    placed = []
    for _ in range(n_furniture):
        cat = categories[rng.choice(len(categories), p=weights / weights.sum())]
        obj = ob.INDOOR_FLOOR[cat](rng)
        for _try in range(40):
            if cat in WALL_CATEGORIES or rng.random() < 0.3:
                yaw, center = _against_wall(rng, obj, width, depth)
            else:
                yaw = rng.uniform(0, 2 * np.pi) if rng.random() < 0.5 else \
                    rng.integers(4) * np.pi / 2
                center = rng.uniform([0, 0], [width, depth])
            if grid.try_place(obj.half_extent, yaw, center):
                oid = world.place(obj, yaw, (center[0], center[1], 0.0))
                placed.append((oid, obj, yaw, center))
                if cat == 'Table':
                    _chairs_around(world, grid, rng, obj, yaw, center)
                break
    for oid, obj, yaw, center in placed:  # small objects on support surfaces
        for z, hx, hy in obj.supports:
            taken = []
            for _ in range(int(rng.integers(1, 5))):
                small_cat = list(ob.INDOOR_SMALL)[rng.integers(len(ob.INDOOR_SMALL))]
                small = ob.INDOOR_SMALL[small_cat](rng) if rng.random() < 0.8 else ob.clutter(rng)
                sx, sy = small.half_extent
                if sx > hx or sy > hy or small.height > 1.0:
                    continue
                local = rng.uniform([-hx + sx, -hy + sy], [hx - sx, hy - sy])
                r = max(sx, sy)
                if any(np.hypot(*(local - p)) < r + q for p, q in taken):
                    continue
                taken.append((local, r))
                world_xy = g.rot_z(yaw)[:2, :2] @ local + center
                world.place(small, rng.uniform(0, 2 * np.pi), (world_xy[0], world_xy[1], z),
                            parent=oid)
    for _ in range(n_clutter):
        obj = ob.clutter(rng)
        for _try in range(15):
            yaw = rng.uniform(0, 2 * np.pi)
            center = rng.uniform([0, 0], [width, depth])
            if grid.try_place(obj.half_extent, yaw, center):
                world.place(obj, yaw, (center[0], center[1], 0.0))
                break
    room = {'width': float(width), 'depth': float(depth), 'height': float(height)}
    return world, room, grid


def _chairs_around(world, grid, rng, table, yaw, center):
    """Up to four chairs facing the table from its sides."""
    hx, hy = table.half_extent
    for side in rng.permutation(4)[:int(rng.integers(0, 5))]:
        chair = ob.chair(rng)
        reach = (hx, hy, hx, hy)[side] + chair.half_extent[1] + 0.1
        phi = yaw + side * np.pi / 2  # direction from the table centre to the chair
        pos = center + reach * np.array([np.cos(phi), np.sin(phi)])
        chair_yaw = phi - np.pi / 2 + rng.normal(0, 0.15)
        if grid.try_place(chair.half_extent, chair_yaw, pos, margin=0.02):
            world.place(chair, chair_yaw, (pos[0], pos[1], 0.0))


def _against_wall(rng, obj, width, depth):
    """Yaw and centre that put the object's back (+y) against a random wall."""
    wall = rng.integers(4)
    hx, hy = obj.half_extent
    gap = 0.08 + hy  # clears the grid margin
    if wall == 0:   # y = 0 wall, front must face +y -> yaw pi
        return np.pi, np.array([rng.uniform(hx, width - hx), gap])
    if wall == 1:   # y = depth wall, front faces -y
        return 0.0, np.array([rng.uniform(hx, width - hx), depth - gap])
    if wall == 2:   # x = 0 wall, front faces +x
        return np.pi / 2, np.array([gap, rng.uniform(hx, depth - hx)])
    return -np.pi / 2, np.array([width - gap, rng.uniform(hx, depth - hx)])


# ---------------------------------------------------------------- outdoor

def _boundary(rng, length):
    """Hedge (lumpy foliage) or fence along x at a property edge, as a stuff object."""
    h = rng.uniform(0.8, 2.2)
    if rng.random() < 0.5:
        mesh = g.sphere(1.0, (0, 0, h / 2), 16, scale=(length / 2, rng.uniform(0.3, 0.6), h / 2))
        mesh = (mesh[0] + rng.normal(0, 0.05, mesh[0].shape), mesh[1])
        return _stuff('vegetation', mesh, 'foliage', rng)
    return _stuff('fence', g.box((length, 0.05, h), (0, 0, h / 2)),
                  ob._pick(rng, ('wood', 'metal', 'concrete')), rng)


def _roadworks(world, rng, half_len, road_w, lanes, ego_lane):
    """
    Place rows of barriers and lines of cones on the road; return the closed stretches.

    Each closure is (lane centre y, x from, x to); vehicles are kept out of them.
    """
    closed = []
    for _ in range(int(rng.integers(0, 4))):
        edge = rng.random() < 0.5
        if edge:  # along a curb, in the parking lane
            y = rng.choice((-1, 1)) * (road_w / 2 - rng.uniform(0.4, 1.2))
        else:
            y = -road_w / 2 + 1.75 + 3.5 * int(rng.integers(lanes)) + rng.uniform(-1.2, 1.2)
        if abs(y - ego_lane) < 2.5:
            continue
        x0 = rng.uniform(-half_len + 5, half_len - 30)
        x = x0
        if rng.random() < 0.7:  # a row of barriers, nearly touching
            for _ in range(int(rng.integers(4, 21))):
                b = ob.barrier(rng)
                length = 2 * b.half_extent[0]
                world.place(b, rng.normal(0, 0.04), (x + length / 2, y + rng.normal(0, 0.05), 0))
                x += length + rng.uniform(0.0, 0.6)
        else:  # a line of cones
            for _ in range(int(rng.integers(3, 12))):
                world.place(ob.traffic_cone(rng), rng.uniform(0, np.pi), (x, y, 0))
                x += rng.uniform(1.0, 4.0)
        closed.append((y, x0, x))
    return closed


def street_world(rng, size='normal'):
    """Straight street along x through the origin (sensor frame, ground at z=0)."""
    world = World()
    half_len = 45.0 if size == 'small' else 90.0
    lanes = int(rng.integers(2, 5))
    road_w = lanes * 3.5
    walk_w = rng.uniform(2.0, 4.0)
    curb = 0.15
    world.place(_stuff('road', g.box((2 * half_len, road_w, 0.1), (0, 0, -0.05)), 'asphalt', rng))
    for sy in (-1, 1):
        yc = sy * (road_w / 2 + walk_w / 2)
        world.place(_stuff('sidewalk', g.box((2 * half_len, walk_w, 0.1 + curb),
                                             (0, yc, curb / 2 - 0.05)), 'concrete', rng))
        yt = sy * (road_w / 2 + walk_w + 40)
        world.place(_stuff('terrain', g.box((2 * half_len, 80, 0.1), (0, yt, -0.05)),
                           ob._pick(rng, ('concrete', 'foliage', 'asphalt')), rng))
    ego_lane = -road_w / 2 + 1.75 + 3.5 * int(rng.integers(lanes))
    # buildings along both sides behind a hedge or fence line at the property edge
    for sy in (-1, 1):
        x = -half_len
        y_edge = sy * (road_w / 2 + walk_w)
        while x < half_len:
            length = rng.uniform(8, 25)
            setback = rng.uniform(1.0, 10.0)
            if rng.random() < 0.8:
                b = ob.building(rng, length)
                world.place(b, 0.0 if sy > 0 else np.pi, (x + length / 2, y_edge + sy * setback,
                                                          0.0))
            if rng.random() < 0.4:
                world.place(_boundary(rng, length), 0.0, (x + length / 2, y_edge + sy * 0.3,
                                                          curb))
            x += length + rng.uniform(0, 4)
    # street furniture on the sidewalk edge
    for sy in (-1, 1):
        x = -half_len + rng.uniform(0, 10)
        y_edge = sy * (road_w / 2 + 0.5)
        while x < half_len:
            kind = rng.choice(3, p=[0.4, 0.25, 0.35])
            maker = (ob.pole, ob.traffic_sign, ob.tree)[kind]
            y = y_edge + sy * (rng.uniform(0.5, 1.5) if kind == 2 else 0)
            world.place(maker(rng), 0.0 if sy > 0 else np.pi, (x, y, curb))
            x += rng.uniform(6, 20)
        x = -half_len + rng.uniform(0, 10)  # pedestrians on the sidewalk
        while x < half_len:
            y = sy * (road_w / 2 + rng.uniform(0.8, walk_w - 0.4))
            world.place(ob.pedestrian(rng), rng.uniform(0, 2 * np.pi), (x, y, curb))
            x += rng.exponential(15) + 2
    closed = _roadworks(world, rng, half_len, road_w, lanes, ego_lane)
    # parked vehicles along both curbs (sometimes bumper to bumper, as in city streets),
    # moving vehicles and cyclists in lanes
    for lane_y, parked in ([(sy * (road_w / 2 - 1.1), True) for sy in (-1, 1)]
                           + [(-road_w / 2 + 1.75 + 3.5 * i, False) for i in range(lanes)]):
        x = -half_len + rng.uniform(0, 8)
        density = rng.uniform(0.3, 0.85) if parked else 0.2
        max_gap = rng.choice((3.0, 12.0)) if parked else 25.0
        while x < half_len - 6:
            veh = ob.van(rng) if rng.random() < 0.2 else ob.car(rng)
            length = 2 * veh.half_extent[0]
            near_ego = abs(lane_y - ego_lane) < 2.0 and abs(x + length / 2) < length / 2 + 8
            blocked = any(abs(lane_y - cy) < 2.2 and x - 1 < x1 and x + length + 1 > x0
                          for cy, x0, x1 in closed)
            if rng.random() < density and not near_ego and not blocked:
                heading = 0.0 if (parked and rng.random() < 0.5) or lane_y < 0 else np.pi
                heading += rng.normal(0, 0.03)
                world.place(veh, heading, (x + length / 2, lane_y, 0.0))
            elif not parked and rng.random() < 0.15 and not near_ego:
                world.place(ob.cyclist(rng), 0.0 if lane_y < 0 else np.pi,
                            (x + 1, lane_y + 1.2 * np.sign(lane_y + 1e-6), 0.0))
            x += length + rng.uniform(0.6, max_gap)
    layout = {'lanes': lanes, 'road_width': float(road_w), 'sidewalk_width': float(walk_w),
              'ego_y': float(ego_lane)}
    return world, layout


# ---------------------------------------------------------------- tabletop

class _TableGrid:
    """Occupancy of a table top at 4 mm; footprints are the convex hulls of the meshes."""

    def __init__(self, half_x, half_y, cell=0.004):
        self.cell, self.hx, self.hy = cell, half_x, half_y
        self.occ = np.zeros((int(2 * half_x / cell), int(2 * half_y / cell)), bool)

    def footprint(self, obj, yaw, center, margin=0.0):
        """Return (i0, j0, mask) of the cells under the yawed object at ``center``, or None."""
        from scipy.spatial import ConvexHull
        xy = np.concatenate([p.mesh[0][:, :2] for p in obj.parts]) @ g.rot_z(yaw)[:2, :2].T
        hull = ConvexHull(xy)
        poly = xy[hull.vertices] + center
        lo, hi = poly.min(0) - margin, poly.max(0) + margin
        if lo[0] < -self.hx or lo[1] < -self.hy or hi[0] > self.hx or hi[1] > self.hy:
            return None
        i0, j0 = (np.floor((lo + [self.hx, self.hy]) / self.cell)).astype(int)
        i1, j1 = (np.ceil((hi + [self.hx, self.hy]) / self.cell)).astype(int)
        i1, j1 = min(i1, self.occ.shape[0]), min(j1, self.occ.shape[1])
        ci = (np.arange(i0, i1) + 0.5) * self.cell - self.hx
        cj = (np.arange(j0, j1) + 0.5) * self.cell - self.hy
        pts = np.stack(np.meshgrid(ci, cj, indexing='ij'), -1) - center
        eq = hull.equations  # n . x + d <= 0 inside (in the object's yawed frame)
        inside = (pts @ eq[:, :2].T + eq[:, 2] <= margin).all(-1)
        return i0, j0, inside

    def free(self, fp):
        """Return True when no cell of the footprint is taken."""
        if fp is None:
            return False
        i0, j0, m = fp
        return not (self.occ[i0:i0 + m.shape[0], j0:j0 + m.shape[1]] & m).any()

    def take(self, fp):
        """Mark the footprint's cells."""
        i0, j0, m = fp
        self.occ[i0:i0 + m.shape[0], j0:j0 + m.shape[1]] |= m


def _table(rng):
    """Table (stuff): a top with a visible front edge, and legs."""
    o = ob.SynthObject('table', has_parts=False, stuff=True, rng=rng)
    w, d = rng.uniform(1.0, 1.8), rng.uniform(0.75, 1.2)
    h, t = rng.uniform(0.7, 0.78), rng.uniform(0.02, 0.045)
    mat = ob._pick(rng, ('table_white', 'table_white', 'table_white', 'table_grey',
                         'light_wood', 'white'))
    legs = [g.box((0.05, 0.05, h - t), (sx * (w / 2 - 0.06), sy * (d / 2 - 0.06), (h - t) / 2))
            for sx in (-1, 1) for sy in (-1, 1)]
    o.add('table', g.merge([g.box((w, d, t), (0, 0, h - t / 2))] + legs), mat, jitter=0.04)
    o.finish()
    return o, w, d, h


def _is_box(obj):
    return obj.category == 'Box'


def tabletop_world(rng, n_objects=None):
    """
    Build a table (its front edge, the floor below, a wall behind) with 3-15 objects on it.

    Objects rest on the table top or on a box (stacked); some are pushed against a neighbour
    until they touch. Returns (world, layout); layout has the table and the cluster centre
    the camera looks at (world frame: z up, table top centred at x = y = 0, camera side -y).
    """
    world = World()
    world.place(_stuff('floor', g.box((8, 8, 0.05), (0, 0, -0.025)),
                       ob._pick(rng, ('floor', 'carpet', 'grey', 'dark_wood')), rng))
    table, tw, td, th = _table(rng)
    table_id = world.place(table)
    wall_y = td / 2 + rng.uniform(0.05, 1.0)
    world.place(_stuff('wall', g.box((8, 0.1, 2.6), (0, wall_y + 0.05, 1.3)),
                       ob._pick(rng, ('wall', 'white', 'plaster', 'grey')), rng))
    n = int(n_objects or rng.integers(3, 16))
    cluster = np.array([rng.uniform(-0.15, 0.15) * tw, -td / 2 + rng.uniform(0.22, 0.4)])
    spread = np.array([0.12, 0.08]) + 0.025 * n * rng.uniform(0.7, 1.3)
    grid = _TableGrid(tw / 2 - 0.01, td / 2 - 0.01)
    cats = list(ob.TABLETOP)
    weights = np.array([ob.TABLETOP_WEIGHTS[c] for c in cats], float)
    placed = []   # objects on the table top: (oid, obj, yaw, center, footprint polygon)
    tops = []     # boxes whose top is free: (oid, obj, yaw, center, top z)
    previous = None
    for _ in range(n):
        twin = previous is not None and rng.random() < 0.2   # a second, identical item
        if twin:
            obj = previous[1]
        else:
            cat = cats[rng.choice(len(cats), p=weights / weights.sum())]
            obj = ob.TABLETOP[cat](rng)
        mode = 'touch' if twin else rng.choice(('free', 'touch', 'stack'), p=(0.5, 0.33, 0.17))
        where = None
        if mode == 'stack' and tops:
            where = _stack_on(rng, obj, tops)
        if where is None and mode == 'touch' and placed:
            where = _touch(rng, grid, obj, placed, previous if twin else None)
        if where is None:
            where = _free_spot(rng, grid, obj, cluster, spread)
        if where is None:
            continue
        yaw, center, z, parent, fp = where
        if fp is not None:
            grid.take(fp)
        oid = world.place(obj, yaw, (center[0], center[1], th + z), parent=parent or table_id)
        world.objects[oid]['support_z'] = float(th + z)
        if fp is not None:
            placed.append((oid, obj, yaw, center, _hull(obj, yaw, center)))
            previous = placed[-1]
        if _is_box(obj) and min(obj.half_extent) > 0.03:
            tops.append((oid, obj, yaw, center, z + obj.height))
    layout = {'table': {'width': float(tw), 'depth': float(td), 'height': float(th)},
              'wall_y': float(wall_y), 'cluster': [float(cluster[0]), float(cluster[1])],
              'placed': len(world.objects) - 3}
    return world, layout


def _free_spot(rng, grid, obj, cluster, spread):
    for _ in range(30):
        yaw = rng.uniform(0, 2 * np.pi)
        center = cluster + rng.uniform(-1, 1, 2) * spread
        fp = grid.footprint(obj, yaw, center, margin=0.004)
        if grid.free(fp):
            return yaw, center, 0.0, None, grid.footprint(obj, yaw, center)
    return None


def _hull(obj, yaw, center):
    """Convex footprint of the yawed object at ``center`` (counter-clockwise vertices)."""
    from scipy.spatial import ConvexHull
    xy = np.concatenate([p.mesh[0][:, :2] for p in obj.parts]) @ g.rot_z(yaw)[:2, :2].T
    return xy[ConvexHull(xy).vertices] + center


def _overlap(a, b):
    """Return True when two convex polygons overlap (separating axis test)."""
    for poly in (a, b):
        edges = np.roll(poly, -1, axis=0) - poly
        normals = np.stack([edges[:, 1], -edges[:, 0]], 1)
        pa, pb = a @ normals.T, b @ normals.T
        if ((pa.max(0) < pb.min(0)) | (pb.max(0) < pa.min(0))).any():
            return False
    return True


def _touch(rng, grid, obj, placed, neighbour=None):
    """
    Slide the object towards a placed neighbour until it touches it (gap < 0.1 mm).

    The 4 mm grid brings it close; the exact footprints then close the last millimetres, so
    touching objects really touch, as boxes pushed together do. Aligned boxes are often flush
    with their neighbour's side (one continuous face across both).
    """
    oid, other, oyaw, ocenter, opoly = neighbour or placed[int(rng.integers(len(placed)))]
    aligned = _is_box(obj) and _is_box(other) and rng.random() < 0.7
    yaw = oyaw + rng.integers(4) * np.pi / 2 + (0 if rng.random() < 0.5 else rng.normal(
        0, 0.03)) if aligned else rng.uniform(0, 2 * np.pi)
    phi = oyaw + rng.integers(4) * np.pi / 2 if aligned else rng.uniform(0, 2 * np.pi)
    direction = np.array([np.cos(phi), np.sin(phi)])
    side = np.array([-direction[1], direction[0]])
    offset = 0.0
    if aligned and rng.random() < 0.6:   # flush with one side of the neighbour
        mine = np.abs((_hull(obj, yaw, (0, 0))) @ side).max()
        theirs = np.abs((opoly - ocenter) @ side).max()
        offset = rng.choice((-1, 1)) * (theirs - mine)
    reach = max(other.half_extent) * 1.5 + max(obj.half_extent) * 1.5 + 0.02
    start = ocenter + side * offset
    last = None
    for s in np.arange(reach, 0, -0.002):
        fp = grid.footprint(obj, yaw, start + direction * s)
        if not grid.free(fp):
            break
        last = s
    if last is None:
        return None
    others = [q for *_, q in placed]

    def clear(s):
        poly = _hull(obj, yaw, start + direction * s)
        return not any(_overlap(poly, q) for q in others)

    if not clear(last):
        return None
    lo, hi = 0.0, min(last, 0.015)   # how much closer it can come
    for _ in range(9):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if clear(last - mid) else (lo, mid)
    center = start + direction * (last - lo)
    return yaw, center, 0.0, None, grid.footprint(obj, yaw, center)


def _stack_on(rng, obj, tops):
    """Put the object on top of a box whose top it fits on; the box's top is then taken."""
    for k in rng.permutation(len(tops)):
        oid, box, byaw, bcenter, top = tops[k]
        bx, by = box.half_extent
        flush = _is_box(obj) and rng.random() < 0.5   # a side flush with the box below
        yaw = byaw + rng.integers(4) * np.pi / 2 + (0 if flush else rng.normal(0, 0.1))
        xy = np.concatenate([p.mesh[0][:, :2] for p in obj.parts]) @ g.rot_z(yaw - byaw)[:2, :2].T
        ex = np.abs(xy).max(0)
        slack = np.array([bx, by]) - ex
        if (slack < -0.01).any() or top + obj.height > 0.45:
            continue
        local = rng.uniform(-1, 1, 2) * np.maximum(slack, 0) * 0.8
        if flush:
            axis = int(rng.integers(2))
            local[axis] = rng.choice((-1, 1)) * slack[axis]
        center = bcenter + g.rot_z(byaw)[:2, :2] @ local
        tops.pop(k)
        return yaw, center, top, oid, None
    return None
