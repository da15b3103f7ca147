"""
Triangle-mesh helpers shared by every generator (the one geometry module).

Meshes are plain ``(vertices float64 (V,3), triangles int32 (F,3))`` tuples so that scaling,
moving and concatenating thousands of parts stays vectorised numpy. Boxes, cylinders and
spheres come from open3d's TriangleMesh primitives (built once per resolution and cached);
tori and lathed profiles are parametric grids built here.
"""

import functools

import numpy as np


@functools.lru_cache(maxsize=None)
def _o3d_unit(kind, resolution):
    import open3d as o3d
    if kind == 'box':
        m = o3d.geometry.TriangleMesh.create_box(1.0, 1.0, 1.0)
        m.translate((-0.5, -0.5, -0.5))
    elif kind == 'cylinder':
        m = o3d.geometry.TriangleMesh.create_cylinder(1.0, 1.0, resolution, 1)
    elif kind == 'sphere':
        m = o3d.geometry.TriangleMesh.create_sphere(1.0, resolution)
    else:
        raise ValueError(kind)
    v = np.asarray(m.vertices, dtype=np.float64)
    f = np.asarray(m.triangles, dtype=np.int32)
    v.setflags(write=False)
    f.setflags(write=False)
    return v, f


def box(size, center=(0, 0, 0)):
    """Axis-aligned box of full extents ``size`` centred at ``center``."""
    v, f = _o3d_unit('box', 0)
    return v * np.asarray(size, float) + np.asarray(center, float), f


def cylinder(radius, height, center=(0, 0, 0), axis='z', resolution=16):
    """Build a closed cylinder along ``axis`` ('x', 'y' or 'z') centred at ``center``."""
    v, f = _o3d_unit('cylinder', resolution)
    v = v * np.array([radius, radius, height])
    return _axis(v, axis) + np.asarray(center, float), f


def sphere(radius, center=(0, 0, 0), resolution=8, scale=(1, 1, 1)):
    """Sphere (or ellipsoid with ``scale``) centred at ``center``."""
    v, f = _o3d_unit('sphere', resolution)
    return v * (radius * np.asarray(scale, float)) + np.asarray(center, float), f


def _axis(v, axis):
    if axis == 'x':
        return v[:, [2, 0, 1]]
    if axis == 'y':
        return v[:, [1, 2, 0]]
    return v


def grid_surface(points, closed_u=True):
    """Triangulate a (U, W, 3) grid of points; ``closed_u`` wraps the first index."""
    nu, nw = points.shape[:2]
    idx = np.arange(nu * nw).reshape(nu, nw)
    nxt = np.roll(idx, -1, axis=0) if closed_u else idx[1:]
    cur = idx if closed_u else idx[:-1]
    a, b = cur[:, :-1], cur[:, 1:]
    c, d = nxt[:, :-1], nxt[:, 1:]
    tris = np.concatenate([np.stack([a, c, b], -1).reshape(-1, 3),
                           np.stack([b, c, d], -1).reshape(-1, 3)])
    return points.reshape(-1, 3).astype(np.float64), tris.astype(np.int32)


def lathe(radii, heights, center=(0, 0, 0), segments=20, cap_bottom=True, cap_top=False):
    """Surface of revolution about z from a profile of (radius, height) samples."""
    radii = np.asarray(radii, float)
    heights = np.asarray(heights, float)
    ang = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    pts = np.stack([np.cos(ang)[:, None] * radii[None], np.sin(ang)[:, None] * radii[None],
                    np.broadcast_to(heights, (segments, len(heights)))], -1)
    meshes = [grid_surface(pts)]
    for cap, i in ((cap_bottom, 0), (cap_top, -1)):
        if cap and radii[i] > 0:
            meshes.append(disk(radii[i], (0, 0, heights[i]), segments))
    return translate(merge(meshes), center)


def disk(radius, center=(0, 0, 0), segments=20):
    """Flat disk in the xy plane (a triangle fan)."""
    ang = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    v = np.concatenate([[[0, 0, 0]], np.stack([np.cos(ang), np.sin(ang), 0 * ang], 1) * radius])
    i = np.arange(segments)
    f = np.stack([np.zeros(segments, int), i + 1, (i + 1) % segments + 1], 1)
    return v + np.asarray(center, float), f.astype(np.int32)


def torus(major, minor, arc=2 * np.pi, center=(0, 0, 0), segments=16, tube_segments=8):
    """Torus (or an arc of one, for handles) in the xz plane around the y axis."""
    closed = arc >= 2 * np.pi - 1e-9
    u = np.linspace(0, arc, segments, endpoint=not closed)
    w = np.linspace(0, 2 * np.pi, tube_segments + 1)
    ring = (major + minor * np.cos(w))[None]
    pts = np.stack([np.cos(u)[:, None] * ring,
                    np.broadcast_to(minor * np.sin(w)[None], (len(u), len(w))),
                    np.sin(u)[:, None] * ring], -1)
    return translate(grid_surface(pts, closed_u=closed), center)


def tube(p0, p1, radius, resolution=8):
    """Cylinder between two points (poles, arms, frames)."""
    p0 = np.asarray(p0, float)
    p1 = np.asarray(p1, float)
    d = p1 - p0
    length = float(np.linalg.norm(d))
    v, f = cylinder(radius, length, resolution=resolution)
    return transform((v, f), rotation_to(d), (p0 + p1) / 2)


def rotation_to(direction):
    """Rotation matrix taking +z to ``direction``."""
    z = np.asarray(direction, float)
    z = z / np.linalg.norm(z)
    helper = np.array([1.0, 0, 0]) if abs(z[0]) < 0.9 else np.array([0, 1.0, 0])
    x = np.cross(helper, z)
    x /= np.linalg.norm(x)
    return np.stack([x, np.cross(z, x), z], 1)


def rot_z(yaw):
    """Rotation matrix about z."""
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])


def rot_x(angle):
    """Rotation matrix about x."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[1.0, 0, 0], [0, c, -s], [0, s, c]])


def rot_y(angle):
    """Rotation matrix about y."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, 0, s], [0, 1.0, 0], [-s, 0, c]])


def transform(mesh, rotation=None, translation=(0, 0, 0)):
    """Apply ``v @ R.T + t`` to a mesh."""
    v, f = mesh
    if rotation is not None:
        v = v @ np.asarray(rotation, float).T
    return v + np.asarray(translation, float), f


def translate(mesh, offset):
    """Move a mesh."""
    return mesh[0] + np.asarray(offset, float), mesh[1]


def merge(meshes):
    """Concatenate meshes into one."""
    meshes = [m for m in meshes if len(m[1])]
    if not meshes:
        return np.zeros((0, 3)), np.zeros((0, 3), np.int32)
    offsets = np.cumsum([0] + [len(v) for v, _ in meshes[:-1]])
    v = np.concatenate([m[0] for m in meshes])
    f = np.concatenate([m[1] + o for m, o in zip(meshes, offsets)]).astype(np.int32)
    return v, f


def triangle_normals(vertices, triangles):
    """Return unit normals of each triangle (zero for degenerate ones)."""
    a, b, c = (vertices[triangles[:, i]] for i in range(3))
    n = np.cross(b - a, c - a)
    norm = np.linalg.norm(n, axis=1, keepdims=True)
    return n / np.maximum(norm, 1e-12)


def triangle_areas(vertices, triangles):
    """Area of each triangle."""
    a, b, c = (vertices[triangles[:, i]] for i in range(3))
    return 0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1)
