"""Cropping a voxelised cloud to a focus box."""

import numpy as np


def test_crop_voxels_keeps_caller_rows_and_features():
    from pinpoint3d_core.model.voxelize import crop_voxels, voxelize
    rng = np.random.default_rng(3)
    pts = rng.uniform(0, 4, (3000, 3))
    pts[5] = np.nan
    full = voxelize(pts, rng.integers(0, 255, (3000, 3), dtype=np.uint8), voxel_size=0.1)
    inside = np.all((full.xyz >= 1) & (full.xyz <= 2), axis=1)
    crop = crop_voxels(full, inside)
    assert crop.num_voxels == int(inside.sum()) > 0
    assert np.array_equal(crop.features, full.features[inside])
    assert crop.num_input_points == 3000
    vor_full, vor_crop = full.voxel_of_row(), crop.voxel_of_row()
    kept = vor_crop >= 0
    assert vor_crop[5] == -1
    # every kept row maps to the crop voxel of its whole-cloud voxel, all others read -1
    assert np.array_equal(kept, (vor_full >= 0) & inside[np.maximum(vor_full, 0)])
    assert np.array_equal(crop.xyz[vor_crop[kept]], full.xyz[vor_full[kept]])


def test_focus_box_grows_until_it_holds_enough_voxels():
    from pinpoint3d_core.model.voxelize import focus_box, in_box, MIN_FOCUS_VOXELS
    rng = np.random.default_rng(0)
    xyz = np.concatenate([rng.uniform(0, 5, (500, 3)), [[40.0, 40.0, 0.0]]])
    lo, hi = focus_box(xyz[-1:], 2.0)                 # no voxels given: plain margin
    assert np.allclose(hi - lo, 4.0)
    lo, hi = focus_box(xyz[-1:], 2.0, xyz)            # the isolated return: margin doubles
    assert np.count_nonzero(in_box(xyz, lo, hi)) >= MIN_FOCUS_VOXELS
    lo, hi = focus_box(xyz[:1], 2.0, xyz)             # enough neighbours: margin unchanged
    assert np.allclose(hi - lo, 4.0)
    lo, hi = focus_box(xyz[:1], 2.0, xyz[:3])         # fewer voxels than the minimum: all
    assert np.count_nonzero(in_box(xyz[:3], lo, hi)) == 3
