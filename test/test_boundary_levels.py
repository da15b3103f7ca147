"""Boundary levels: a correction click cannot take what a sure boundary keeps from it."""

import numpy as np
from pinpoint3d_core.inference.config import InferenceConfig
from pinpoint3d_core.inference.geodesic import GeodesicLabeller, GraphClick
from pinpoint3d_core.inference.levels import BoundaryLevels

CFG = InferenceConfig(graph_voxel=0.01, geodesic_cutoff=5.0)
LEVELS = (0.2, 0.4, 0.6, 0.8)
BOUNDARY_X = 0.3      # object A is x < 0.3, object B the rest of the strip
BAND_X = 0.52         # a weak false boundary inside B (boundary-network noise)


def _strip():
    """Return a flat 1 m x 10 cm strip's surface graph and each link's P(boundary)."""
    x, y = np.meshgrid(np.arange(0.0, 1.0, 0.005), np.arange(0.0, 0.1, 0.005))
    pts = np.column_stack([x.ravel(), y.ravel(), np.zeros(x.size)])
    surface = CFG.surface_graph(pts)
    a = surface.xyz[surface.links.src, 0]
    b = surface.xyz[surface.links.dst, 0]

    def crosses(at):
        return (np.minimum(a, b) < at) & (np.maximum(a, b) >= at)
    p = np.full(len(a), 0.01)
    p[crosses(BAND_X)] = 0.5
    p[crosses(BOUNDARY_X)] = 0.95
    return surface, p


def _labeller(surface, p, levels=LEVELS):
    costs = surface.learned_costs(p, 16.0)
    lv = BoundaryLevels(surface.size, surface.links.src, surface.links.dst, p,
                        ~surface.on_plane, levels) if levels else None
    return GeodesicLabeller(surface, costs, CFG.geodesic_cutoff, CFG.rim_radius, levels=lv)


def _click(surface, x, obj, positive=True):
    d = np.linalg.norm(surface.xyz - [x, 0.05, 0.0], axis=1)
    return GraphClick(int(np.argmin(d)), obj, 0, positive)


def _b_share(surface, labels):
    """Share of object B's voxels labelled B (id 2)."""
    b = surface.xyz[:, 0] >= BOUNDARY_X
    return float(np.mean(labels[b] == 2))


def test_pieces_follow_the_thresholds():
    surface, p = _strip()
    lv = BoundaryLevels(surface.size, surface.links.src, surface.links.dst, p,
                        ~surface.on_plane, LEVELS)
    x = surface.xyz[:, 0]
    left, mid, right = np.argmin(np.abs(x - 0.1)), np.argmin(np.abs(x - 0.4)), \
        np.argmin(np.abs(x - 0.9))
    low, high = lv.pieces[0], lv.pieces[2]          # below 0.2, below 0.6
    assert len({low[left], low[mid], low[right]}) == 3
    assert high[mid] == high[right] != high[left]
    assert len(np.unique(lv.pieces[-1])) == 2       # the sure boundary stays cut at 0.8


def test_a_correction_click_next_to_a_sure_boundary_keeps_the_other_object():
    surface, p = _strip()
    first = [_click(surface, 0.1, 1), _click(surface, 0.8, 2)]
    fix = first + [_click(surface, 0.29, 1)]       # on A, right at its boundary with B
    plain, guarded = _labeller(surface, p, ()), _labeller(surface, p)
    # Summed costs: the weak band inside B plus B's far click lose to one sure crossing.
    assert _b_share(surface, plain.objects(first)) > 0.99
    assert _b_share(surface, plain.objects(fix)) < 0.92
    # Bottleneck: B is one piece below 0.6 that holds B's click only; it stays B.
    assert _b_share(surface, guarded.objects(first)) > 0.99
    assert _b_share(surface, guarded.objects(fix)) > 0.99


def test_first_clicks_label_as_the_nearest_click_rule():
    surface, p = _strip()
    clicks = [_click(surface, 0.05, 1), _click(surface, 0.45, 2), _click(surface, 0.95, 3)]
    np.testing.assert_array_equal(_labeller(surface, p).objects(clicks),
                                  _labeller(surface, p, ()).objects(clicks))


def test_a_correction_inside_one_piece_still_moves_the_label():
    surface, p = _strip()
    first = [_click(surface, 0.1, 1), _click(surface, 0.8, 2)]
    neg = first + [_click(surface, 0.97, 0, positive=False)]   # B's far end is not B
    out = _labeller(surface, p).objects(neg)
    x = surface.xyz[:, 0]
    assert np.mean(out[x > 0.92] == 0) > 0.9
    assert np.mean(out[(x > 0.32) & (x < 0.5)] == 2) > 0.9
    # B's click inside A's piece: no level separates them there, so the nearest click decides
    inside = _labeller(surface, p).objects(first + [_click(surface, 0.2, 2)])
    assert np.mean(inside[(x > 0.18) & (x < 0.22)] == 2) > 0.9
    assert np.mean(inside[x < 0.12] == 1) > 0.9


def test_labels_depend_on_the_click_sequence_only():
    surface, p = _strip()
    seq = [_click(surface, 0.1, 1), _click(surface, 0.8, 2), _click(surface, 0.29, 1),
           _click(surface, 0.6, 0, positive=False), _click(surface, 0.35, 2)]
    stepwise = _labeller(surface, p)
    for k in range(1, len(seq) + 1):
        last = stepwise.objects(seq[:k])
    np.testing.assert_array_equal(last, _labeller(surface, p).objects(seq))
    # an undo reads the shorter sequence's labels again
    np.testing.assert_array_equal(stepwise.objects(seq[:3]),
                                  _labeller(surface, p).objects(seq[:3]))
