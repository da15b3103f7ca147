"""
The fast part-click path keeps the straightforward path's labels exactly.

Indoor part clicks run geodesic objects and parts plus the click decoder's parts; the fast path
cuts graphs down (object, reach ball), keeps results between clicks and compares on the
decoder's view only. Each test here computes the same labels the plain way (whole-graph
Dijkstras, nothing kept) and asks for equality, bit for bit.
"""

import numpy as np
from pinpoint3d_core.inference import graph as graph_module, rules
from pinpoint3d_core.inference.config import InferenceConfig
from pinpoint3d_core.inference.geodesic import (
    GeodesicLabeller, graph_clicks, GraphClick, scatter_to_rows)
from pinpoint3d_core.inference.graph import NeighbourGraph
from pinpoint3d_core.model.voxelize import voxelize
from pinpoint3d_core.toyscenes import benchmark_room, box_surface
import pytest
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components, dijkstra
import torch

VOXEL = 0.05


@pytest.fixture(scope='module')
def room():
    return benchmark_room(30000, seed=1)


@pytest.fixture(scope='module')
def view_graph(room):
    xyz = voxelize(room['points'], room['colors'], None, voxel_size=VOXEL).xyz
    return NeighbourGraph(xyz, 2 * VOXEL)


def _plain_distance(graph, seeds, limit):
    return dijkstra(graph._links(), directed=False, indices=np.unique(seeds), limit=limit,
                    min_only=True)


def test_bounded_seed_distance_is_the_whole_graph_dijkstra(view_graph):
    rng = np.random.default_rng(0)
    g = view_graph
    assert g._within(np.array([5]), 0.3) is not None     # the ball shortcut is what runs
    for limit in (0.1, 0.3, 1.0, 20.0, np.inf):
        for n in (1, 2, 5):
            seeds = rng.choice(g.size, n, replace=False)
            want = _plain_distance(g, seeds, limit)
            np.testing.assert_array_equal(g.seed_distance(seeds, limit), want)
            np.testing.assert_array_equal(g.seed_distance(seeds[::-1], limit), want)  # kept
    assert len(g._distances) <= graph_module.DISTANCES_KEPT


def test_restricted_to_walks_like_the_restricted_graph(view_graph):
    rng = np.random.default_rng(1)
    g = view_graph.with_link_lengths(view_graph.length * rng.uniform(1, 3, len(view_graph.src)))
    keep = np.zeros(g.size, dtype=bool)
    keep[rng.choice(g.size, 1)[0]:][:g.size // 3] = True
    inside = np.flatnonzero(keep)
    outsider = int(np.flatnonzero(~keep)[0])            # a seed another click took over
    seeds = np.concatenate([rng.choice(inside, 4), [outsider], rng.choice(inside, 1)])
    ok = keep[g.src] & keep[g.dst]           # restricted's links: the mask's, in order
    for mask, links in ((keep, ok), (~keep, ~keep[g.src] & ~keep[g.dst])):
        r = g.restricted(mask)
        for a, b in ((r.src, g.src), (r.dst, g.dst), (r.length, g.length)):
            np.testing.assert_array_equal(a, b[links])
    want = g.restricted(keep).nearest_seed(seeds, np.inf)
    nodes = np.union1d(inside, seeds)
    local = g.restricted_to(nodes, keep).nearest_seed(np.searchsorted(nodes, seeds), np.inf)
    got = np.full(g.size, -1)
    got[nodes] = local
    np.testing.assert_array_equal(got, want)
    assert (want[inside] >= 0).any() and len(np.unique(want[inside])) > 1


def test_clicked_pieces_match_components_of_the_whole_graph(view_graph, room):
    g = view_graph
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 3, g.size)                 # many small pieces per label
    seeds = {1: [int(v) for v in rng.choice(np.flatnonzero(labels == 1), 3)],
             2: [int(np.flatnonzero(labels == 2)[0])]}
    same = (labels[g.src] == labels[g.dst]) & (labels[g.src] > 0)
    m = csr_matrix((np.ones(same.sum()), (g.src[same], g.dst[same])), shape=(g.size, g.size))
    _, piece = connected_components(m, directed=True, connection='weak')
    want = labels.copy()
    for label, rows in seeds.items():
        members = np.flatnonzero(labels == label)
        want[members[~np.isin(piece[members], piece[rows])]] = 0
    got = g.clicked_pieces(labels, seeds)
    np.testing.assert_array_equal(got, want)
    assert (got != labels).any() and (got[labels > 0] > 0).any()


def _part_clicks(room):
    """Clicks of a user: parts of all three objects, a rim click on the floor, a negative."""
    from pinpoint3d_core.session import Click
    obj, part, pts = room['object_ids'], room['part_ids'], room['points']
    rng = np.random.default_rng(3)
    steps = []
    for k in (1, 2, 3):
        for p in np.unique(part[obj == k])[:3]:
            steps.append(Click(index=int(rng.choice(np.flatnonzero(part == p))), object_id=k,
                               part_id=int(p)))
    leg = np.flatnonzero(part == 2)
    foot = leg[np.argmin(pts[leg, 2])]
    floor = np.flatnonzero((obj == 0) & (pts[:, 2] < 0.01))
    near = floor[np.argmin(np.linalg.norm(pts[floor] - pts[foot], axis=1))]
    steps.insert(4, Click(index=int(near), object_id=1, part_id=2))   # on the plane's rim
    wall = np.flatnonzero((obj == 0) & (pts[:, 2] > 1.0))
    steps.insert(6, Click(index=int(wall[0]), object_id=0, positive=False))
    steps.append(Click(index=int(rng.choice(np.flatnonzero(part == 13))), object_id=3,
                       part_id=13))
    return steps


def _plain_geodesic(lab, clicks):
    """Object and part ids per voxel by the rule's definition: whole-graph Dijkstras."""
    on_plane, xyz = lab.surface.on_plane, lab.surface.xyz
    cut = on_plane.copy()
    off_plane = {c.object_id for c in clicks if c.positive and not on_plane[c.voxel]}
    for c in clicks:
        if c.positive and on_plane[c.voxel]:
            if c.object_id not in off_plane:
                cut[:] = False
                break
            cut &= np.linalg.norm(xyz - xyz[c.voxel], axis=1) >= lab.rim_radius
    ids = np.asarray([c.object_id if c.positive else 0 for c in clicks], dtype=np.uint32)
    owner = lab.graph.restricted(~cut).nearest_seed([c.voxel for c in clicks], lab.cutoff)
    obj = np.zeros(lab.surface.size, dtype=np.uint32)
    obj[owner >= 0] = ids[owner[owner >= 0]]
    for c, i in zip(clicks, ids):
        obj[c.voxel] = i
    part = np.zeros_like(obj)
    for k in {c.object_id for c in clicks if c.positive and c.part_id}:
        mine = [c for c in clicks if c.positive and c.object_id == k]
        inside = obj == k
        owner = lab.graph.restricted(inside).nearest_seed([c.voxel for c in mine], np.inf)
        pid = np.asarray([c.part_id for c in mine], dtype=np.uint32)
        sel = inside & (owner >= 0)
        part[sel] = pid[owner[sel]]
    return obj, part, cut


def test_labeller_with_rim_clicks_and_history_gives_the_plain_labels():
    rng = np.random.default_rng(4)
    table = np.column_stack([rng.uniform(-0.4, 0.4, 30000), rng.uniform(-0.4, 0.4, 30000),
                             rng.normal(0, 0.001, 30000)])
    box = box_surface(rng, (0.0, 0.0, 0.05), (0.1, 0.1, 0.1), 6000)
    box = box[box[:, 2] > 0.001]
    cfg = InferenceConfig(graph_voxel=0.01, support_plane_m=0.006, geodesic_cutoff=1.0,
                          rim_radius=0.03)
    surface = cfg.surface_graph(np.concatenate([table, box]))
    lab = GeodesicLabeller(surface, surface.handcrafted_costs(4.0, 0.0), cfg.geodesic_cutoff,
                           cfg.rim_radius)
    on = np.flatnonzero(surface.on_plane)
    off = np.flatnonzero(~surface.on_plane)
    xyz = surface.xyz
    top = int(off[np.argmax(xyz[off, 2])])
    side = int(off[np.argmin(xyz[off, 0])])
    rim = int(on[np.argmin(np.linalg.norm(xyz[on] - (0.055, 0.0, 0.0), axis=1))])
    far = int(on[np.argmin(np.linalg.norm(xyz[on] - (0.3, 0.3, 0.0), axis=1))])
    history = [GraphClick(top, 1, 1, True), GraphClick(rim, 1, 2, True),
               GraphClick(side, 1, 2, True), GraphClick(far, 0, 0, False),
               GraphClick(rim, 2, 0, True)]      # the last takes the rim voxel over
    for n in (1, 2, 3, 4, 5, 3, 2, 5):            # adding and undoing: the kept results follow
        clicks = history[:n]
        want_obj, want_part, cut = _plain_geodesic(lab, clicks)
        obj = lab.objects(clicks)
        np.testing.assert_array_equal(obj, want_obj, err_msg=f'{n} clicks')
        np.testing.assert_array_equal(lab.parts(clicks, obj), want_part, err_msg=f'{n} clicks')
    # the rim click matters here: it lets the table voxels around it into the object
    with_rim, _, cut = _plain_geodesic(lab, history[:2])
    whole_plane = lab.graph.restricted(~surface.on_plane).nearest_seed([top, rim], 1.0)
    assert (cut != surface.on_plane).sum() > 1
    assert (with_rim > 0).sum() > (whole_plane >= 0).sum()


def test_geodesic_session_with_decoder_parts_gives_the_plain_labels(
        minkowski, room, monkeypatch):
    from pinpoint3d_core.session import Segmenter, Session
    seg = Segmenter.load(preset='indoor', device='cpu')
    pts, colors = room['points'].astype(np.float64), room['colors']
    fast = seg.start(pts, colors)
    plain_decoder = Session(seg, pts, colors, fast._parts.inference)
    steps = _part_clicks(room)
    seen = {'rim': False, 'decoder': 0, 'nearest click': 0, 'kept': 0}
    # object -> {its positive clicks: the plain decoder's labels when those clicks were new}
    decoded = {}
    for i, click in enumerate(steps):
        fast.add_clicks([click])
        plain_decoder.add_clicks([click])
        if i == len(steps) - 2:                       # undo and redo: the caches follow
            fast.undo()
            plain_decoder.undo()
            fast.add_clicks([click])
            plain_decoder.add_clicks([click])
        got = fast.predict('both')
        again = fast.predict('object')
        obj_v, part_v, cut = _plain_geodesic(fast.labeller, graph_clicks(fast.clicks))
        obj, part = scatter_to_rows(fast.surface.voxel_of_row, obj_v, part_v)
        with monkeypatch.context() as m:               # and no ball shortcut for the decoder
            m.setattr(graph_module, 'BALL_MIN_NODES', 1 << 62)
            dec = plain_decoder.predict('both')
        agree = np.zeros(len(obj), dtype=bool)
        for k in sorted({c.object_id for c in fast.clicks if c.positive and c.part_id}):
            key = tuple((c.index, c.part_id) for c in fast.clicks
                        if c.positive and c.object_id == k)
            d_obj, d_part = decoded.setdefault(k, {}).setdefault(
                key, (dec.object_ids.copy(), dec.part_ids.copy()))
            mine = (d_obj == k) & (obj == k)
            part[mine] = d_part[mine]
            agree |= mine
            now = (dec.object_ids == k) & (obj == k)
            seen['kept'] += int((mine != now).sum() + (d_part[mine & now] != dec.part_ids[
                mine & now]).sum())
        for c in fast.clicks:
            obj[c.index] = c.object_id if c.positive else 0
            part[c.index] = c.part_id if c.positive else 0
        part[obj == 0] = 0
        np.testing.assert_array_equal(got.object_ids, obj, err_msg=f'objects, step {i}')
        np.testing.assert_array_equal(got.part_ids, part, err_msg=f'parts, step {i}')
        np.testing.assert_array_equal(again.object_ids, obj, err_msg=f'object only, step {i}')
        seen['rim'] |= bool(cut.any() and not cut.all() and (~cut & fast.surface.on_plane).any())
        seen['decoder'] += int((agree & (part != part_v[fast.surface.voxel_of_row]
                                         * (fast.surface.voxel_of_row >= 0))).sum())
        seen['nearest click'] += int(((obj > 0) & ~agree).sum())
    # the case at hand: a rim click cut the plane, both part sources decided some rows, and
    # a click on one object left another's decoder parts as they were (not re-decoded)
    assert seen['rim'] and seen['decoder'] > 0 and seen['nearest click'] > 0, seen
    assert seen['kept'] > 0, seen


def test_part_prior_on_the_mask_equals_the_whole_view_formula(minkowski, room):
    from pinpoint3d_core.inference.pipeline import inference_rules
    from pinpoint3d_core.session import Segmenter
    seg = Segmenter.load(preset='indoor', device='cpu')
    pts, colors = room['points'].astype(np.float64), room['colors']
    session = seg.start(pts, colors)._parts
    session.add_clicks(_part_clicks(room)[:8])
    view, _ = session._focus_view()
    labels, _ = session._decode(view, 'both', None)
    steps = inference_rules(session.inference)
    names = [getattr(s, 'func', s).__name__ for s in steps]
    for step in steps[:names.index('part_prior')]:
        step(labels)
    steps[names.index('part_prior')](labels)
    tau = session.inference.part_prior_voxels
    reach, size, g = rules.PART_PRIOR_REACH_VOXELS, labels.voxel_size, labels.graph
    checked = 0
    for k, logits in labels.part_logits.items():
        columns = {}
        for c, j in zip(labels.clicks, labels.click_part_columns(k)):
            if j >= 0:
                columns.setdefault(j, []).append(c.voxel)
        rows = (labels.object_labels == labels.object_column(k)).numpy()
        if len(columns) < 2:
            want = logits.argmax(dim=1).numpy()
        else:
            cols = sorted(columns)
            dist = np.stack([np.minimum(_plain_distance(g, columns[j], reach * size) / size,
                                        reach) for j in cols])
            prior = np.zeros((logits.shape[1], g.size), dtype=np.float32)
            prior[cols] = -(dist - dist.min(axis=0)) / tau
            want = (torch.log_softmax(logits.float(), dim=1)
                    + torch.as_tensor(prior.T)).argmax(dim=1).numpy()
            checked += int(rows.sum())
        np.testing.assert_array_equal(labels.part_labels[k].numpy()[rows], want[rows])
    assert checked > 0
