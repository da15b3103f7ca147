"""The object logit bias widens object masks monotonically and leaves clicked voxels alone."""

import numpy as np
from pinpoint3d_core.toyscenes import benchmark_room


def test_bias_grows_masks_from_the_plain_argmax(minkowski):
    from pinpoint3d_core.session import Click, Segmenter
    room = benchmark_room(6000, seed=3)
    pts = room['points'].astype(np.float64)
    obj = room['object_ids']
    target = int(np.unique(obj[obj > 0])[0])
    on = int(np.flatnonzero(obj == target)[0])
    bg = int(np.flatnonzero(obj == 0)[0])
    clicks = [Click(index=on, object_id=1), Click(index=bg, positive=False)]
    masks = {}
    for bias in (0.0, 2.0, 1000.0):
        settings = {'focus_half_extent': 0.0, 'object_logit_bias': bias}
        s = Segmenter.untrained('small', seed=0, device='cpu', inference=settings).start(
            pts, room['colors'])
        s.add_clicks(clicks)
        masks[bias] = np.asarray(s.predict('object').object_ids) == 1
    # plain argmax is a subset of the biased one, which is a subset of "every voxel the
    # connectivity rule lets the click reach"
    assert not (masks[0.0] & ~masks[2.0]).any()
    assert not (masks[2.0] & ~masks[1000.0]).any()
    assert masks[2.0].sum() > masks[0.0].sum()
    # the negative click's point stays background however large the bias
    assert masks[0.0][on] and masks[1000.0][on] and not masks[1000.0][bg]
