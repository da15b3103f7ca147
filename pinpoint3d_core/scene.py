"""
Scene file format (.npz) and readers for common point cloud files.

One in-memory type, :class:`Scene`, is shared by the generators, training, evaluation and the
command line. The on-disk format is a plain ``.npz`` readable with ``allow_pickle=False`` so that
loading a file can never execute code.
"""

from dataclasses import dataclass, field
import glob
import json
import os

import numpy as np

from pinpoint3d_core.errors import SceneFormatError

FORMAT_VERSION = 1
_ARRAYS = ('coords', 'colors', 'intensity', 'object_ids', 'part_ids')


@dataclass
class Scene:
    """A labelled point cloud; arrays share the first dimension N."""

    coords: np.ndarray
    colors: np.ndarray = None
    intensity: np.ndarray = None
    object_ids: np.ndarray = None
    part_ids: np.ndarray = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        """Coerce dtypes and fill missing label arrays with zeros, then validate."""
        self.coords = np.ascontiguousarray(self.coords, dtype=np.float32)
        n = len(self.coords)
        if self.colors is not None:
            self.colors = np.ascontiguousarray(self.colors, dtype=np.uint8)
        if self.intensity is not None:
            self.intensity = np.ascontiguousarray(self.intensity, dtype=np.float32)
        self.object_ids = (np.zeros(n, np.int32) if self.object_ids is None
                           else np.ascontiguousarray(self.object_ids, dtype=np.int32))
        self.part_ids = (np.zeros(n, np.int32) if self.part_ids is None
                         else np.ascontiguousarray(self.part_ids, dtype=np.int32))
        self.meta = dict(self.meta or {})
        validate(self)

    def __len__(self):
        """Return the number of points."""
        return len(self.coords)

    def subset(self, mask):
        """Return a new scene with the selected points (meta is shared, not filtered)."""
        return Scene(self.coords[mask],
                     None if self.colors is None else self.colors[mask],
                     None if self.intensity is None else self.intensity[mask],
                     self.object_ids[mask], self.part_ids[mask], dict(self.meta))

    def object_meta(self, object_id):
        """Return the meta record of one object ({} when the scene has none)."""
        return self.meta.get('objects', {}).get(str(int(object_id)), {})

    def part_to_object(self):
        """Map each labelled part id to the one object id that owns it."""
        mask = self.part_ids > 0
        pairs = np.unique(np.stack([self.part_ids[mask], self.object_ids[mask]], 1), axis=0)
        return {int(p): int(o) for p, o in pairs}


def real_data_dir():
    """
    Folder of the real labelled scans used by tests, evaluation and statistics.

    $PINPOINT3D_REAL_DATA, else ``shared/data`` beside the checkout (where CI and developers
    have it); the scans are third-party data that the repository must not contain.
    """
    default = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.realpath(__file__)))), 'shared', 'data')
    return os.environ.get('PINPOINT3D_REAL_DATA', default)


def validate(scene, source='scene'):
    """Raise SceneFormatError when shapes, dtypes, values or labels are inconsistent."""
    c = scene.coords
    if c.ndim != 2 or c.shape[1] != 3:
        raise SceneFormatError(f'{source}: coords must have shape (N, 3), got {c.shape}')
    n = len(c)
    for name in ('colors', 'intensity', 'object_ids', 'part_ids'):
        arr = getattr(scene, name)
        if arr is None:
            continue
        want = (n, 3) if name == 'colors' else (n,)
        if arr.shape != want:
            raise SceneFormatError(
                f'{source}: {name} must have shape {want} to match coords, got {arr.shape}')
    if (scene.object_ids < 0).any() or (scene.part_ids < 0).any():
        raise SceneFormatError(f'{source}: object_ids and part_ids must be >= 0')
    if ((scene.part_ids > 0) & (scene.object_ids == 0)).any():
        raise SceneFormatError(f'{source}: points with a part id must have an object id')
    mask = scene.part_ids > 0
    if mask.any():
        pairs = np.unique(np.stack([scene.part_ids[mask], scene.object_ids[mask]], 1), axis=0)
        if len(np.unique(pairs[:, 0])) != len(pairs):
            raise SceneFormatError(
                f'{source}: a part id is used by several objects; part ids must be unique '
                'within the scene')
    if not isinstance(scene.meta, dict):
        raise SceneFormatError(f'{source}: meta must be a dict')


def save_scene(path, scene):
    """Write a scene as .npz (meta as a JSON string); returns the path written."""
    validate(scene)
    arrays = {'coords': scene.coords, 'object_ids': scene.object_ids,
              'part_ids': scene.part_ids,
              'meta': np.array(json.dumps(_jsonable(scene.meta), sort_keys=True))}
    if scene.colors is not None:
        arrays['colors'] = scene.colors
    if scene.intensity is not None:
        arrays['intensity'] = scene.intensity
    path = os.fspath(path)
    if not path.endswith('.npz'):
        path += '.npz'
    np.savez_compressed(path, **arrays)
    return path


def load_scene(path):
    """Read a scene .npz written by save_scene (or the shared real scans) safely."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise SceneFormatError(f'{path}: no such scene file')
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except Exception as exc:  # zip, pickle and header errors all mean "not our format"
        raise SceneFormatError(
            f'{path}: not a readable .npz scene ({type(exc).__name__}: {exc}); '
            'write scenes with pinpoint3d_core.scene.save_scene') from exc
    if 'coords' not in arrays:
        raise SceneFormatError(f'{path}: missing the "coords" array (float32 N x 3)')
    unknown = set(arrays) - set(_ARRAYS) - {'meta'}
    if unknown:
        raise SceneFormatError(f'{path}: unexpected arrays {sorted(unknown)}')
    meta = {}
    if 'meta' in arrays:
        try:
            meta = json.loads(str(arrays['meta']))
        except ValueError as exc:
            raise SceneFormatError(f'{path}: meta is not valid JSON ({exc})') from exc
        if not isinstance(meta, dict):
            raise SceneFormatError(f'{path}: meta must be a JSON object')
    for name in _ARRAYS:
        arr = arrays.get(name)
        if arr is None:
            continue
        if name == 'colors' and arr.dtype != np.uint8:
            raise SceneFormatError(f'{path}: colors must be uint8, got {arr.dtype}')
        if name in ('object_ids', 'part_ids') and not np.issubdtype(arr.dtype, np.integer):
            raise SceneFormatError(f'{path}: {name} must be integers, got {arr.dtype}')
        if name in ('coords', 'intensity') and not np.issubdtype(arr.dtype, np.floating):
            raise SceneFormatError(f'{path}: {name} must be floats, got {arr.dtype}')
    intensity = arrays.get('intensity')
    if intensity is not None:
        intensity = _normalise_intensity(intensity, meta)
        meta['intensity_range'] = [0.0, 1.0]
    try:
        return Scene(arrays['coords'], arrays.get('colors'), intensity,
                     arrays.get('object_ids'), arrays.get('part_ids'), meta)
    except SceneFormatError as exc:
        raise SceneFormatError(f'{path}: {exc}') from exc


def _normalise_intensity(intensity, meta):
    """Scale intensity to 0..1 using meta.intensity_range (nuScenes stores 0..255)."""
    lo, hi = meta.get('intensity_range', [0.0, 1.0])
    if hi <= lo:
        raise SceneFormatError(f'meta.intensity_range must be increasing, got {[lo, hi]}')
    if (lo, hi) == (0.0, 1.0):
        return intensity.astype(np.float32)
    return np.clip((intensity.astype(np.float32) - lo) / (hi - lo), 0.0, 1.0)


def _jsonable(obj):
    """Convert numpy scalars/arrays and int keys so json.dumps accepts meta."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def write_labelled_ply(path, coords, colors, object_ids, part_ids, comment=None):
    """Write a binary PLY that open3d, CloudCompare and MeshLab read, labels kept as fields."""
    n = len(coords)
    if colors is None:
        colors = np.full((n, 3), 128, np.uint8)
    rec = np.empty(n, dtype=[('x', '<f4'), ('y', '<f4'), ('z', '<f4'), ('red', 'u1'),
                             ('green', 'u1'), ('blue', 'u1'), ('object_id', '<u4'),
                             ('part_id', '<u4')])
    for i, k in enumerate(('x', 'y', 'z')):
        rec[k] = coords[:, i]
    for i, k in enumerate(('red', 'green', 'blue')):
        rec[k] = colors[:, i]
    rec['object_id'], rec['part_id'] = object_ids, part_ids
    header = ('ply\nformat binary_little_endian 1.0\n'
              + (f'comment {comment}\n' if comment else '')
              + f'element vertex {n}\n'
              'property float x\nproperty float y\nproperty float z\n'
              'property uchar red\nproperty uchar green\nproperty uchar blue\n'
              'property uint object_id\nproperty uint part_id\nend_header\n')
    with open(path, 'wb') as f:
        f.write(header.encode('ascii'))
        f.write(rec.tobytes())


def read_kitti_bin(path, object_ids=None, part_ids=None):
    """Read a KITTI velodyne .bin (float32 x, y, z, intensity) with optional label arrays."""
    path = os.fspath(path)
    raw = np.fromfile(path, dtype=np.float32)
    if raw.size == 0 or raw.size % 4:
        raise SceneFormatError(
            f'{path}: a KITTI .bin holds float32 x,y,z,intensity records; size {raw.size * 4} '
            'bytes is not a multiple of 16')
    raw = raw.reshape(-1, 4)
    return Scene(raw[:, :3], None, np.clip(raw[:, 3], 0, 1), object_ids, part_ids,
                 {'sensor': 'lidar', 'source': os.path.basename(path)})


def read_point_file(path, object_ids=None, part_ids=None):
    """Read a PLY or PCD file (open3d), keeping colours when present."""
    import open3d as o3d
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise SceneFormatError(f'{path}: no such file')
    pcd = o3d.io.read_point_cloud(path)
    if len(pcd.points) == 0:
        raise SceneFormatError(f'{path}: no points could be read (is it a PLY/PCD cloud?)')
    colors = None
    if pcd.has_colors():
        colors = np.round(np.asarray(pcd.colors) * 255).clip(0, 255).astype(np.uint8)
    return Scene(np.asarray(pcd.points), colors, None, object_ids, part_ids,
                 {'sensor': 'file', 'source': os.path.basename(path)})


def read_any(path, object_ids=None, part_ids=None):
    """Read a scene from .npz, .bin (KITTI), .ply or .pcd by extension."""
    ext = os.path.splitext(os.fspath(path))[1].lower()
    if ext == '.npz':
        return load_scene(path)
    if ext == '.bin':
        return read_kitti_bin(path, object_ids, part_ids)
    if ext in ('.ply', '.pcd'):
        return read_point_file(path, object_ids, part_ids)
    raise SceneFormatError(f'{path}: unknown extension {ext!r}; use .npz, .bin, .ply or .pcd')


def stuff_ids(scene):
    """
    Object ids the scene's meta marks as stuff (floor, wall, road, table...): never targets.

    Synthetic scenes flag ``meta.objects[id].stuff``; converted real scans (mOSD) list them in
    ``meta.stuff_ids``. Both count.
    """
    meta = scene.meta or {}
    objs = meta.get('objects', {})
    out = {int(k) for k, v in objs.items() if isinstance(v, dict) and v.get('stuff')}
    return out | {int(k) for k in meta.get('stuff_ids', [])}


def scene_paths(specs):
    """Expand directories and globs into a sorted list of scene files."""
    exts = ('.npz', '.ply', '.pcd', '.bin')
    out = []
    for spec in specs:
        spec = os.fspath(spec)
        if os.path.isdir(spec):
            out += sorted(p for p in glob.glob(os.path.join(spec, '**', '*'), recursive=True)
                          if p.lower().endswith(exts))
        elif any(ch in spec for ch in '*?['):
            out += sorted(glob.glob(spec))
        elif os.path.isfile(spec):
            out.append(spec)
        else:
            raise SceneFormatError(f'{spec}: no such scene file or directory')
    if not out:
        raise SceneFormatError(f'no scene files (.npz/.ply/.pcd/.bin) found in {list(specs)}')
    return out


def named_scenes(paths):
    """Yield (name, Scene) for scene files, the name being the file name without extension."""
    for p in paths:
        yield os.path.splitext(os.path.basename(p))[0], read_any(p)
