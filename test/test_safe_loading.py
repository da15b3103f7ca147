"""
No code runs from a file (issue #16, finding 6): every loader refuses a crafted pickle.

The payload writes a marker file when unpickled; each loader the project has (weights for the
node and CLI, ``train --init``, ``train --resume``, official checkpoints) must refuse the file
with a CheckpointError, leave no marker, and never suggest turning the protection off.
"""

import types

from pinpoint3d_core.errors import CheckpointError
import pytest

torch = pytest.importorskip('torch')


class Payload:
    """Unpickling this calls exec(): what a malicious checkpoint would do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f'open({self.marker!r}, "w").write("ran")',))


@pytest.fixture
def crafted(tmp_path):
    marker = tmp_path / 'payload_ran'
    path = tmp_path / 'crafted.pt'
    torch.save({'format': 'pinpoint3d-checkpoint', 'version': 1, 'state_dict': {},
                'model': {'w': torch.zeros(1)}, 'step': 1, 'rng': Payload(marker)}, path)
    return path, marker


def check_refused(call, marker):
    with pytest.raises(CheckpointError) as info:
        call()
    message = str(info.value)
    assert not marker.exists(), 'the payload ran'
    for advice in ('weights_only', 'arbitrary code', 'safe_globals', 'if you trust'):
        assert advice not in message
    return message


def test_project_checkpoint_reader_refuses(crafted):
    from pinpoint3d_core.model.checkpoint import read_checkpoint
    path, marker = crafted
    message = check_refused(lambda: read_checkpoint(path), marker)
    assert 'never runs code from a file' in message and "would call 'exec'" in message


def test_segmenter_load_refuses(crafted):
    from pinpoint3d_core.session import Segmenter
    path, marker = crafted
    check_refused(lambda: Segmenter.load(str(path), device='cpu'), marker)


def test_train_init_refuses(crafted):
    from pinpoint3d_core.model.config import get_config
    from pinpoint3d_core.model.pinpoint3d import PinPoint3D
    from pinpoint3d_core.training.trainer import load_init
    path, marker = crafted
    model = PinPoint3D(get_config('small'))
    check_refused(lambda: load_init(model, str(path)), marker)


def test_train_resume_refuses(crafted):
    from pinpoint3d_core.training.trainer import Trainer
    path, marker = crafted
    fake = types.SimpleNamespace(ckpt_path=str(path), device='cpu')
    check_refused(lambda: Trainer._resume(fake), marker)


def test_official_loader_refuses(crafted):
    from pinpoint3d_core.model.checkpoint import load_official_checkpoint
    path, marker = crafted
    check_refused(lambda: load_official_checkpoint(path), marker)


def test_training_state_round_trips_with_weights_only(tmp_path):
    """The resume state is tensors and plain containers: it loads with weights_only=True."""
    import random

    import numpy as np
    from pinpoint3d_core.training import trainer
    state = trainer._rng_state()
    torch.save(state, tmp_path / 'rng.pt')
    loaded = torch.load(tmp_path / 'rng.pt', weights_only=True)
    expect = (torch.rand(1), np.random.rand(), random.random())
    trainer._set_rng_state(loaded)
    assert (torch.rand(1), np.random.rand(), random.random()) == expect
