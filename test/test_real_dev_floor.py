"""
The shipped default inference is never worse than the non-learned baseline on real scans.

For every real development family (``evaluation/realdev.py``) the preset's shipped weights and
their saved inference settings are run against the preset's tuned baseline on the same scans
and the same simulated clicks (object protocol, one click per target: IoU@1). The validation
split of the tabletop family, and every LiDAR scan in shared/ (there are only three).
Skipped only when the shared data folder is not beside the checkout.
"""

import os

from pinpoint3d_core.evaluation import harness, realdev
from pinpoint3d_core.evaluation.cli import load_segmenter
from pinpoint3d_core.scene import named_scenes
import pytest

CASES = [('tabletop', 'val'), ('lidar', 'all')]


def _iou1(segmenter, paths):
    summary, curves, _ = harness.run_evaluation(
        segmenter, named_scenes(paths), 'object', max_clicks=1, seed=0)
    assert curves, 'no targets were evaluated'
    return summary['IoU@1'], summary['targets']


@pytest.mark.parametrize('family,split', CASES)
def test_preset_is_not_worse_than_the_baseline_at_iou1(family, split):
    try:
        paths = realdev.family_paths(family, split)
    except Exception as exc:     # noqa: BLE001 (the data is third-party and lives outside)
        pytest.skip(f'real {family} scans not beside the checkout: {exc}')
    preset = realdev.FAMILIES[family].preset
    _, learned = load_segmenter('preset', device='cpu', preset=preset)
    _, baseline = load_segmenter('baseline', preset=preset)
    got, n = _iou1(learned, paths)
    ref, n_ref = _iou1(baseline, paths)
    assert n == n_ref
    print(f'{family}/{split}: preset IoU@1 {got:.2f} vs baseline {ref:.2f} over {n} targets '
          f'({realdev.ATTRIBUTION[family]})')
    assert got >= ref, (f'{family}/{split}: the {preset} preset ({learned.describe()}) '
                        f'reaches IoU@1 {got:.2f}, below the baseline {ref:.2f}')


def test_shared_dir_is_found_from_the_install_tree():
    """Tests and the CLI import the colcon install tree; the data must still be found."""
    assert os.path.isabs(realdev.shared_dir())
    assert os.path.basename(realdev.shared_dir()) == 'shared'
