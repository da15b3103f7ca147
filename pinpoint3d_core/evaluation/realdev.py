"""
The real development set: which real scans each family holds, split into train and validation.

Every ship/no-ship decision is taken on the ``val`` split of these families (docs/model.md,
"Real development set"); ``train`` is the only real data training, fine-tuning and the tuning
of any setting may see. The scans live in ``../shared/data`` and ``../shared/devdata`` beside
the checkout (third-party, non-commercial licences: never copied into the repository; figures
computed on them carry the attribution in ``ATTRIBUTION``).

- ``tabletop``: mOSD learn scans (Kinect/Xtion, camera optical frame). Validation = the last
  scans of every group (boxes 12-16, stacked 22-24, occluded 30-32, cylinders 41-44), the
  other 30 train: neighbouring scans share objects, so blocks, not alternate scans, are held
  out (scans 11/12 still share one box position).
- ``lidar``: validation = SemanticKITTI 07/000964 (per-point instance labels, the best labels
  we have); train = KITTI 000008 and the nuScenes sweep (labels from 3D boxes).
"""

import dataclasses
import os
from typing import Dict, List, Tuple

from pinpoint3d_core.errors import Pinpoint3DError

MOSD_VAL = tuple(range(12, 17)) + (22, 23, 24) + (30, 31, 32) + (41, 42, 43, 44)
MOSD_GROUPS = (('boxes', range(0, 17)), ('stacked boxes', range(17, 25)),
               ('occluded objects', range(25, 33)), ('cylindric objects', range(33, 45)))

ATTRIBUTION = {
    'tabletop': 'mOSD (Richtsfeld et al., IROS 2012; modified by S. Alexandrov; via '
                'PointCloudLibrary/data), research use with attribution',
    'lidar': 'SemanticKITTI (Behley et al., ICCV 2019; CC BY-NC-SA 4.0) on KITTI (Geiger et '
             'al., CVPR 2012; CC BY-NC-SA 3.0); nuScenes (Caesar et al., CVPR 2020; '
             'CC BY-NC-SA 4.0)',
}


@dataclasses.dataclass(frozen=True)
class Family:
    """One real development family: its scans per split and the preset that serves it."""

    name: str
    preset: str
    splits: Dict[str, Tuple[str, ...]]     # split -> paths relative to the shared folder


def _mosd(indices) -> Tuple[str, ...]:
    return tuple(f'devdata/mosd/mosd_learn{i}.npz' for i in indices)


FAMILIES = {
    'tabletop': Family('tabletop', 'tabletop', {
        'train': _mosd(i for i in range(45) if i not in MOSD_VAL), 'val': _mosd(MOSD_VAL)}),
    'lidar': Family('lidar', 'lidar', {
        'train': ('data/kitti_000008.npz', 'data/nuscenes_sweep.npz'),
        'val': ('devdata/lidar/semantickitti_000964.npz',)}),
}
SPLITS = ('train', 'val', 'all')


def shared_dir() -> str:
    """Return the shared folder beside the checkout (``$PINPOINT3D_SHARED`` overrides)."""
    env = os.environ.get('PINPOINT3D_SHARED')
    if env:
        return env
    # realpath: the install tree (colcon --symlink-install) links back to the source tree.
    here = os.path.dirname(os.path.realpath(__file__))
    return os.path.normpath(os.path.join(here, '..', '..', '..', 'shared'))


def family_paths(name: str, split: str = 'val') -> List[str]:
    """Return the scan files of one family and split; a Pinpoint3DError says what is missing."""
    if name not in FAMILIES:
        raise Pinpoint3DError(f'unknown real family {name!r}; choose one of {sorted(FAMILIES)}')
    if split not in SPLITS:
        raise Pinpoint3DError(f'unknown split {split!r}; choose one of {SPLITS}')
    fam = FAMILIES[name]
    rel = fam.splits['train'] + fam.splits['val'] if split == 'all' else fam.splits[split]
    paths = [os.path.join(shared_dir(), r) for r in rel]
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise Pinpoint3DError(
            f'real {name} scans not found ({missing[0]} and {len(missing) - 1} more): the '
            'shared data folder must sit beside the checkout (or set PINPOINT3D_SHARED)')
    return paths


def mosd_group(scene_name: str) -> str:
    """Return the mOSD group of ``mosd_learnN`` (used for per-group tables)."""
    index = int(scene_name.rsplit('learn', 1)[1])
    return next(g for g, r in MOSD_GROUPS if index in r)
