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
