"""
Input checking, per-point features and voxelisation with a point->voxel inverse map.

Quantisation follows MinkowskiEngine's ``sparse_quantize`` (integer voxel = floor(xyz / size),
one representative point per voxel, the first one in input order, as in the reference); it is
done here in numpy so that the voxel order is deterministic and the memory is bounded by the
number of points (one int64 key per point). The voxels then become an ME sparse tensor.
"""

import dataclasses

import numpy as np

from pinpoint3d_core.errors import InvalidCloudError

# Feature used when a cloud has neither colours nor intensity (mid grey).
CONSTANT_FEATURE = 0.5


@dataclasses.dataclass
class VoxelizedCloud:
    """One scene on the voxel grid; every array is indexed by voxel unless said otherwise."""

    coords: np.ndarray        # (V, 3) int32 voxel coordinates
    xyz: np.ndarray           # (V, 3) float32 representative point position (metres)
    features: np.ndarray      # (V, C) float32 input features of the representative point
    inverse: np.ndarray       # (M,) int64 voxel of each finite input row
    valid_rows: np.ndarray    # (M,) int64 caller's row index of each finite input row
    rep_rows: np.ndarray      # (V,) int64 caller's row of each voxel's representative point
    num_input_points: int     # N, rows the caller passed (including non-finite ones)
    voxel_size: float

    @property
    def num_voxels(self):
        """Return the number of occupied voxels."""
        return int(self.coords.shape[0])

    def voxel_of_row(self):
        """Return (N,) int64: voxel of every caller row, -1 for dropped (non-finite) rows."""
        out = np.full(self.num_input_points, -1, dtype=np.int64)
        out[self.valid_rows] = self.inverse
        return out


def point_features(num_points, colors=None, intensity=None):
    """
    Return (N, 3) float32 features in [0, 1].

    Colours (uint8 0-255 or float 0..1) are used as is; without colours the intensity is
    repeated on the three channels (LiDAR); without either every point gets a constant grey.
    """
    if colors is not None:
        colors = np.asarray(colors)
        if colors.shape != (num_points, 3):
            raise InvalidCloudError(
                f'colors must have shape ({num_points}, 3) like the points; got {colors.shape}')
        if colors.dtype == np.uint8:
            return colors.astype(np.float32) / 255.0
        if not np.issubdtype(colors.dtype, np.number):
            raise InvalidCloudError(f'colors must be numeric, got dtype {colors.dtype}')
        colors = colors.astype(np.float32)
        if not np.all(np.isfinite(colors)):
            raise InvalidCloudError('colors contain NaN or inf values; fix or drop those rows')
        lo, hi = (float(colors.min()), float(colors.max())) if num_points else (0.0, 0.0)
        if lo < -1e-3 or hi > 1.0 + 1e-3:
            raise InvalidCloudError(
                f'float colors must lie in [0, 1] (got {lo:.3g}..{hi:.3g}); pass uint8 0-255 '
                'colours or divide by 255')
        return np.clip(colors, 0.0, 1.0)
    if intensity is not None:
        intensity = np.asarray(intensity, dtype=np.float32).reshape(-1)
        if intensity.shape[0] != num_points:
            raise InvalidCloudError(
                f'intensity must have {num_points} values like the points; '
                f'got {intensity.shape[0]}')
        finite = np.isfinite(intensity)
        intensity = np.where(finite, intensity, 0.0).astype(np.float32)
        hi = float(intensity.max()) if num_points else 0.0
        if hi > 1.0:
            intensity = intensity / hi    # raw sensor units: scale per scene into [0, 1]
        intensity = np.clip(intensity, 0.0, 1.0)
        return np.repeat(intensity[:, None], 3, axis=1)
    return np.full((num_points, 3), CONSTANT_FEATURE, dtype=np.float32)


def check_points(points, max_points):
    """Return (points float64 (N,3), finite-row mask); raise InvalidCloudError on bad input."""
    try:
        points = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidCloudError(f'points must be a numeric (N, 3) array: {exc}') from None
    if points.ndim != 2 or points.shape[1] != 3:
        raise InvalidCloudError(f'points must have shape (N, 3); got {points.shape}')
    if points.shape[0] == 0:
        raise InvalidCloudError('the point cloud is empty: pass at least two distinct points')
    if points.shape[0] > max_points:
        raise InvalidCloudError(
            f'the cloud has {points.shape[0]:,} points, more than the limit of '
            f'{max_points:,}; crop or downsample it first (or raise max_points)')
    finite = np.all(np.isfinite(points), axis=1)
    if not finite.any():
        raise InvalidCloudError(
            f'all {points.shape[0]} points have NaN or inf coordinates; nothing to segment')
    return points, finite


def voxelize(points, colors=None, intensity=None, voxel_size=0.05,
             max_points=20_000_000, max_voxels=2_000_000, min_voxels=2):
    """Check and voxelise one cloud; non-finite rows are dropped but keep caller indexing."""
    if not voxel_size > 0:
        raise InvalidCloudError(f'voxel_size must be positive, got {voxel_size}')
    points, finite = check_points(points, max_points)
    n = points.shape[0]
    feats = point_features(n, colors, intensity)
    valid_rows = np.flatnonzero(finite).astype(np.int64)
    pts = points[valid_rows]
    grid = np.floor(pts / voxel_size)
    if np.abs(grid).max() >= 2 ** 20:
        raise InvalidCloudError(
            f'coordinates reach {np.abs(pts).max():.3g} m, too far from the origin for '
            f'{voxel_size} m voxels; subtract a local origin first')
    grid = grid.astype(np.int64) + 2 ** 20
    key = (grid[:, 0] << 42) | (grid[:, 1] << 21) | grid[:, 2]
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    num_vox = first.shape[0]
    if num_vox < min_voxels:
        raise InvalidCloudError(
            f'the cloud occupies {num_vox} voxel(s) of {voxel_size} m; at least {min_voxels} '
            'distinct positions are needed (a single point or only duplicates of one point '
            'cannot be segmented)')
    if num_vox > max_voxels:
        raise InvalidCloudError(
            f'the cloud occupies {num_vox:,} voxels of {voxel_size} m, more than the limit of '
            f'{max_voxels:,}; crop it or use a larger voxel size')
    coords = (grid[first] - 2 ** 20).astype(np.int32)
    return VoxelizedCloud(
        coords=coords,
        xyz=pts[first].astype(np.float32),
        features=feats[valid_rows[first]].astype(np.float32),
        inverse=inverse.reshape(-1).astype(np.int64),
        valid_rows=valid_rows,
        rep_rows=valid_rows[first].astype(np.int64),
        num_input_points=n,
        voxel_size=float(voxel_size),
    )


def crop_voxels(voxels, keep):
    """
    Return the voxels selected by the (V,) mask ``keep``, rows still in caller indexing.

    Rows of dropped voxels read -1 in ``voxel_of_row()``; features and positions are those of
    the whole cloud, so a crop sees exactly the input the whole-cloud encoding would.
    """
    new_id = np.full(voxels.num_voxels, -1, dtype=np.int64)
    new_id[keep] = np.arange(int(keep.sum()))
    row_keep = keep[voxels.inverse]
    return VoxelizedCloud(
        coords=voxels.coords[keep], xyz=voxels.xyz[keep], features=voxels.features[keep],
        inverse=new_id[voxels.inverse[row_keep]], valid_rows=voxels.valid_rows[row_keep],
        rep_rows=voxels.rep_rows[keep], num_input_points=voxels.num_input_points,
        voxel_size=voxels.voxel_size)


# A focus box holds at least this many voxels: with fewer (a click on an isolated return in a
# sparse sweep) batch norm has no statistics to speak of; training cannot even run on one.
MIN_FOCUS_VOXELS = 16


def focus_box(positions, half_extent, xyz=None, min_voxels=MIN_FOCUS_VOXELS):
    """
    Return (lo, hi): the bounding box of ``positions`` grown by ``half_extent`` per axis.

    With the voxel positions ``xyz`` the margin doubles until the box holds ``min_voxels`` of
    them (or all of them).
    """
    positions = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
    lo, hi = positions.min(axis=0), positions.max(axis=0)
    margin = float(half_extent)
    if xyz is not None:
        need = min(int(min_voxels), len(xyz))
        while np.count_nonzero(in_box(xyz, lo - margin, hi + margin)) < need:
            margin *= 2.0
    return lo - margin, hi + margin


def in_box(xyz, lo, hi):
    """Return the mask of rows of ``xyz`` inside the closed box [lo, hi]."""
    return np.all((xyz >= np.asarray(lo)) & (xyz <= np.asarray(hi)), axis=1)
