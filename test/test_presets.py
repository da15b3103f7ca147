"""Presets pick weights and settings together; input_scale makes units not matter."""

import numpy as np
from pinpoint3d_core.errors import Pinpoint3DError
from pinpoint3d_core.evaluation.baseline import GraphBaselineSegmenter
from pinpoint3d_core.interaction import Click
from pinpoint3d_core.presets import get_preset, PRESETS
from pinpoint3d_core.toyscenes import benchmark_room
import pytest


def test_every_preset_names_weights_and_a_geodesic_baseline():
    assert set(PRESETS) == {'indoor', 'tabletop', 'lidar'}
    for name, preset in PRESETS.items():
        assert preset.name == name and preset.weights.endswith('.pt')
        assert preset.baseline.object_masks == 'geodesic'
    assert get_preset('tabletop').baseline.graph_voxel < get_preset('indoor').baseline.graph_voxel
    assert get_preset('lidar').baseline.support_up == (0.0, 0.0, 1.0)
    with pytest.raises(Pinpoint3DError, match='choose one of'):
        get_preset('kitchen')


@pytest.mark.parametrize('name', sorted(PRESETS))
def test_segmenter_load_by_preset_uses_that_presets_weights(name, minkowski):
    from pinpoint3d_core.presets import preset_weights
    from pinpoint3d_core.session import Segmenter
    try:
        path = preset_weights(name)
    except Exception as exc:        # weights of a preset not trained yet
        pytest.skip(str(exc))
    seg = Segmenter.load(preset=name, device='cpu')
    assert seg.source == str(path) and seg.metadata['preset'] == name
    assert name in str(path) or name == 'indoor'
    assert seg.describe().startswith('weights ')


def _scene():
    r = benchmark_room(6000, seed=1)
    return r['points'].astype(np.float64), r['colors'], r['object_ids']


@pytest.mark.parametrize('scale', [0.001, 100.0])
def test_input_scale_gives_the_labels_of_the_metric_cloud(scale):
    pts, colors, obj = _scene()
    metric = GraphBaselineSegmenter(get_preset('indoor').baseline).start(pts, colors)
    on = int(np.flatnonzero(obj == 1)[5])
    metric.add_clicks([Click(index=on, object_id=1)])
    want = metric.predict('object').object_ids
    # the same cloud in other units: kilometres or centimetres
    from pinpoint3d_core.session import Segmenter
    seg = Segmenter.untrained(inference=dict(get_preset('indoor').baseline.to_dict(),
                                             input_scale=1.0 / scale), device='cpu')
    session = seg.start(pts * scale, colors)
    rows = session.add_clicks([Click(position=tuple(pts[on] * scale), object_id=1)],
                              snap_radius=0.01 * scale)
    assert rows == [on]
    got = session.predict('object').object_ids
    np.testing.assert_array_equal(got, want)
    assert session.default_snap_radius() == pytest.approx(0.1 * scale)
    with pytest.raises(Exception, match='snap radius'):
        session.add_clicks([Click(position=tuple(pts[on] * scale + 5 * scale), object_id=1)])


def test_a_preset_without_its_weights_runs_its_baseline_and_says_so(monkeypatch):
    from pinpoint3d_core import presets
    from pinpoint3d_core.errors import CheckpointError
    from pinpoint3d_core.session import Segmenter

    def absent(name):
        raise CheckpointError('not installed')
    monkeypatch.setattr(presets, 'preset_weights', absent)
    seg = Segmenter.load(preset='tabletop', device='cpu')
    assert seg.model is None and seg.boundary is None and not seg.learned_masks
    assert seg.inference == get_preset('tabletop').baseline
    assert seg.metadata['missing_weights'] == 'pinpoint3d_tabletop.pt'
    assert seg.describe().startswith('NO WEIGHTS (pinpoint3d_tabletop.pt not found)')
    pts, colors, obj = _scene()
    session = seg.start(pts, colors)   # the same contract as a learned model's session
    session.add_clicks([Click(index=int(np.flatnonzero(obj == 1)[0]), object_id=1)])
    assert (session.predict('object').object_ids == 1).any()
