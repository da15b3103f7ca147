"""
The encode shortcuts give what the plain computations give (docs/benchmarks.md, "Geodesic masks").

Each shortcut (once per undirected pair, RANSAC scored in one product, the link MLP in
blocks) is checked against the straightforward version written out here.
"""

import numpy as np
from pinpoint3d_core.inference.config import InferenceConfig
from pinpoint3d_core.inference.graph import _undirected_pairs, NeighbourGraph
from pinpoint3d_core.inference.surface import _cross, _most_inliers, LINK_FEATURES
from pinpoint3d_core.toyscenes import box_surface
import pytest

TABLE = InferenceConfig(graph_voxel=0.01, support_plane_m=0.006)


def _scene(seed=0):
    """Return a table with three boxes, colours varying per object."""
    rng = np.random.default_rng(seed)
    table = np.column_stack([rng.uniform(-0.4, 0.4, 20000), rng.uniform(-0.4, 0.4, 20000),
                             rng.normal(0, 0.001, 20000)])
    boxes = [box_surface(rng, (x, 0, 0.05), (0.1, 0.08, 0.1), 4000) for x in (-0.2, 0, 0.2)]
    # off the 1 cm grid, so no box face lies on voxel borders (those are covered by
    # test_geodesic's cell-border test)
    pts = np.concatenate([table] + boxes) + 0.00123
    colors = np.concatenate([np.full((len(table), 3), 90)]
                            + [np.full((len(b), 3), 60 * i + 40) for i, b in enumerate(boxes)])
    colors = np.clip(colors + rng.integers(-10, 10, colors.shape), 0, 255).astype(np.uint8)
    return pts, colors


def _plain_link_features(s):
    """Compute the link features for every directed link, without pairing."""
    src, dst = s.links.src, s.links.dst
    d = s.xyz[dst] - s.xyz[src]
    length = np.linalg.norm(d, axis=1)
    u = d / np.maximum(length, 1e-12)[:, None]
    n = s.normals
    crease = (np.abs(np.einsum('ij,ij->i', n[src], u))
              + np.abs(np.einsum('ij,ij->i', n[dst], u)))
    app = s.appearance
    plane_d = s.plane_distance()
    cols = [length / s.voxel, 1.0 - np.abs(np.einsum('ij,ij->i', n[src], n[dst])), crease,
            np.maximum(s.curvature[src], s.curvature[dst]),
            np.abs(s.curvature[src] - s.curvature[dst]),
            np.linalg.norm(app[src] - app[dst], axis=1) / np.sqrt(app.shape[1]),
            np.minimum(np.abs(plane_d[src]), np.abs(plane_d[dst])) / s.voxel,
            np.abs(plane_d[src] - plane_d[dst]) / s.voxel]
    return np.stack(cols, axis=1).astype(np.float32)


def test_undirected_pairs_join_each_link_with_its_reverse_only():
    pts, _ = _scene()
    graph = NeighbourGraph(TABLE.surface_graph(pts).xyz, np.inf, 10)
    assert graph.complete
    first, pair = graph.undirected_pairs()
    src, dst = graph.src, graph.dst
    rep = first[pair]
    same = rep == np.arange(len(src))
    # a link stands for itself or for its exact reverse
    assert np.all(same | ((src[rep] == dst) & (dst[rep] == src)))
    # every mutual pair is computed once: no two representatives are reverses of each other
    keys = np.minimum(src[first], dst[first]) * graph.size + np.maximum(src[first], dst[first])
    assert len(np.unique(keys)) == len(first)
    assert len(first) < 0.75 * len(src)        # most kNN links are mutual
    # the general path (sorting pair keys) agrees with the kNN-row shortcut
    general = _undirected_pairs(src, dst, graph.size, graph.neighbours, complete=False)
    assert np.array_equal(general[0], first) and np.array_equal(general[1], pair)
    # a graph cut down to some nodes takes the general path
    kept = graph.restricted(np.arange(graph.size) % 3 > 0)
    kfirst, kpair = kept.undirected_pairs()
    krep = kfirst[kpair]
    assert np.all((krep == np.arange(len(kept.src)))
                  | ((kept.src[krep] == kept.dst) & (kept.dst[krep] == kept.src)))


def test_paired_link_features_are_the_plain_per_link_features_bit_for_bit():
    pts, colors = _scene(1)
    surface = TABLE.surface_graph(pts, colors)
    assert surface.link_features.shape == (len(surface.links.src), len(LINK_FEATURES))
    assert np.array_equal(surface.link_features, _plain_link_features(surface))
    assert set(surface.timings) == {'voxel_means', 'knn', 'normals', 'planes', 'features'}


def _exhaustive_best(sample, candidates, threshold):
    best, best_count = None, 0
    for normal, point in candidates:
        count = np.count_nonzero(np.abs((sample - point) @ normal) < threshold)
        if count > best_count:
            best, best_count = (normal, point), count
    return best


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_ransac_scoring_picks_the_exhaustive_winner(seed):
    rng = np.random.default_rng(seed)
    pts, _ = _scene(seed)
    sample = pts[rng.choice(len(pts), 5000, replace=False)]
    draws = np.array([rng.choice(len(sample), 3, replace=False) for _ in range(200)])
    p0, p1, p2 = (sample[draws[:, i]] for i in range(3))
    crosses = _cross(p1 - p0, p2 - p0)
    for i in range(20):
        assert np.array_equal(crosses[i], np.cross(p1[i] - p0[i], p2[i] - p0[i]))
    norms = np.linalg.norm(crosses, axis=1)
    ok = norms > 1e-12
    candidates = list(zip(crosses[ok] / norms[ok, None], p0[ok]))
    # ties on purpose: the same plane twice, the first must win as in the plain loop
    candidates = candidates[:50] + candidates[:50] + candidates[50:]
    got = _most_inliers(sample, candidates, 0.006)
    want = _exhaustive_best(sample, candidates, 0.006)
    assert got[0] is want[0] and got[1] is want[1]
    assert _most_inliers(sample, [], 0.006) is None


def test_paired_boundary_probability_matches_the_training_forward():
    import torch
    from pinpoint3d_core.model.boundary import BoundaryConfig, BoundaryNet
    pts, colors = _scene(2)
    surface = TABLE.surface_graph(pts, colors)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = BoundaryNet(BoundaryConfig()).eval()
    prob = net.boundary_probability(surface)
    with torch.no_grad():
        plain = torch.sigmoid(net(surface)).double().numpy()
    assert prob.shape == (len(surface.links.src),)
    np.testing.assert_allclose(prob, plain, rtol=0, atol=1e-6)
    first, pair = surface.links.undirected_pairs()
    assert np.array_equal(prob, prob[first][pair])    # a link and its reverse: one value


def test_geodesic_bench_breaks_the_encode_down_and_times_every_click():
    from pinpoint3d_core.benchmarks.geodesic import (
        click_script, encode_stages, format_rows, tabletop_segmenter)
    pts, colors = _scene(3)
    labels = np.zeros(len(pts), dtype=np.int64)
    labels[20000:] = 1 + (np.arange(len(pts) - 20000) // 4000)
    seg, what = tabletop_segmenter()
    assert seg.boundary is not None and what
    seg.inference = seg.inference.replace(graph_voxel=0.01)
    stages = encode_stages(seg, pts, colors)
    assert {'voxel_means', 'knn', 'normals', 'planes', 'features', 'graph', 'boundary_net',
            'link_mlp'} <= set(stages)
    assert all(w >= 0 and c >= 0 for k, (w, c) in stages.items() if k != 'voxels')
    session = seg.start(pts, colors)
    timings = click_script(session, labels, 20, seed=0)
    assert len(timings) == 20 and all(w > 0 for w, _ in timings)
    assert len(session.clicks) == 20
    row = {'case': 'tabletop', 'scene': 'test', 'weights': what, 'points': len(pts),
           'voxels': stages['voxels'][0], 'links': stages['voxels'][1],
           'stages': {k: v for k, v in stages.items() if k != 'voxels'},
           'encode_ms': 1.0, 'encode_cpu_ms': 1.0, 'decode_ms_median': 1.0,
           'decode_ms_p90': 1.0, 'decode_cpu_ms_median': 1.0, 'load_average': 0.0}
    table = format_rows([row, {'case': 'indoor', 'skipped': 'over 1 s'}])
    assert '| tabletop | test |' in table and 'skipped: over 1 s' in table
