"""The boundary network's optional concavity input: shape, values, old checkpoints, warm start."""

import numpy as np
from pinpoint3d_core.inference.surface import LINK_FEATURES
from pinpoint3d_core.model.boundary import BoundaryConfig, BoundaryNet, link_inputs
from pinpoint3d_core.scene import Scene
from pinpoint3d_core.training.boundary import augment, BoundaryTrainConfig, widened_state
import pytest
from test_concave_links import _settings, _stacked_boxes
import torch


@pytest.fixture(scope='module')
def surface():
    pts, _ = _stacked_boxes()
    return _settings(10.0).surface_graph(pts)


def test_the_concavity_column_is_the_clipped_signed_concavity(surface):
    plain, wide = link_inputs(surface), link_inputs(surface, concavity=True)
    assert plain.shape[1] == len(LINK_FEATURES) and wide.shape[1] == len(LINK_FEATURES) + 1
    np.testing.assert_array_equal(wide[:, :-1], plain)
    expect = np.clip(4.0 * surface.link_concavity(), -1, 1)
    np.testing.assert_allclose(wide[:, -1], expect, atol=1e-6)
    assert (wide[:, -1] > 0.5).any() and (wide[:, -1] < -0.5).any()   # grooves and ridges


def test_a_checkpoint_config_from_before_the_concavity_input_reads_eight_features():
    old = BoundaryConfig().to_dict()
    del old['link_concavity']
    assert BoundaryConfig.from_dict(old).link_concavity is False
    assert BoundaryNet(BoundaryConfig.from_dict(old)).head[0].in_features == 2 * 16 + 8


def test_a_warm_start_from_an_eight_feature_network_gives_its_answers(surface):
    torch.manual_seed(0)
    old = BoundaryNet(BoundaryConfig()).eval()
    new = BoundaryNet(BoundaryConfig(link_concavity=True)).eval()
    new.load_state_dict(widened_state(old.state_dict(), new.state_dict()))
    np.testing.assert_allclose(new.boundary_probability(surface),
                               old.boundary_probability(surface), rtol=1e-5, atol=1e-6)
    # and the new input is live: a weight on it changes the answers
    with torch.no_grad():
        new.head[0].weight[:, -1] = 1.0
    assert not np.allclose(new.boundary_probability(surface), old.boundary_probability(surface))


def test_a_warm_start_refuses_a_network_of_another_shape():
    small = BoundaryNet(BoundaryConfig()).state_dict()
    other = BoundaryNet(BoundaryConfig(hidden=16)).state_dict()
    with pytest.raises(ValueError, match='head'):
        widened_state(small, other)


def test_with_concavity_augmentation_keeps_the_sensor_at_the_origin():
    """Rotating about the origin keeps every point's distance to the camera."""
    rng = np.random.default_rng(3)
    pts = rng.normal(size=(500, 3)) * 0.1 + np.array([0.0, 0.0, 1.0])
    scene = Scene(coords=pts.astype(np.float32), colors=None,
                  object_ids=np.ones(500, dtype=np.int32), part_ids=np.zeros(500, np.int32))
    cfg = BoundaryTrainConfig(concavity=True, scale_jitter=0.0)
    out = augment(scene, np.random.default_rng(1), cfg)
    np.testing.assert_allclose(np.linalg.norm(out.coords, axis=1), np.linalg.norm(pts, axis=1),
                               rtol=1e-5)
    centroid = augment(scene, np.random.default_rng(1), BoundaryTrainConfig(scale_jitter=0.0))
    assert not np.allclose(np.linalg.norm(centroid.coords, axis=1), np.linalg.norm(pts, axis=1),
                           rtol=1e-3)
