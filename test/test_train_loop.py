"""Training loop on a tiny scene: loss goes down, resume is exact, stages freeze correctly."""

import json
import os
import subprocess
import sys

from pinpoint3d_core.scene import save_scene
from pinpoint3d_core.toyscenes import toy_scene
from pinpoint3d_core.training.trainer import freeze_for_stage, TrainConfig, Trainer
import pytest
import torch


@pytest.fixture(scope='module')
def scene_file(tmp_path_factory):
    path = tmp_path_factory.mktemp('scenes') / 'toy.npz'
    save_scene(path, toy_scene(2, n_objects=2, density=500.0, room=3.0))
    return str(path)


@pytest.fixture(autouse=True)
def _restore_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def _cfg(**kw):
    base = {'stage': 'joint', 'steps': 4, 'batch_size': 1, 'lr': 2e-3, 'warmup': 1,
            'max_rounds': 2, 'augment': False, 'seed': 3}
    base.update(kw)
    return TrainConfig(**base)


def test_a_few_steps_reduce_the_loss(minkowski, tmp_path):
    # One object, one click, no augmentation: every step sees the same sample.
    one = str(tmp_path / 'one.npz')
    save_scene(one, toy_scene(4, n_objects=1, density=500.0, room=3.0))
    cfg = _cfg(stage='object', steps=16, max_rounds=1, max_objects=1, lr=3e-3)
    tr = Trainer(cfg, str(tmp_path / 'run'), [one], workers=0, threads=1,
                 progress=False)
    recs = tr.train()
    loss = [r['loss'] for r in recs]
    assert len(loss) == 16
    first, last = sum(loss[:4]) / 4, sum(loss[-4:]) / 4
    assert last < 0.8 * first, loss
    log = [json.loads(x) for x in open(tmp_path / 'run' / 'log.jsonl')]
    assert [r['step'] for r in log] == list(range(1, 17))
    assert (tmp_path / 'run' / 'model.pt').exists()
    assert (tmp_path / 'run' / 'curves.png').exists()


def _train_cli(tmp_path, name, scene_file, *extra):
    # OMP_NUM_THREADS must be set before start-up: MinkowskiEngine's OpenMP loops ignore
    # torch.set_num_threads, and multi-threaded CPU kernels accumulate in a varying order.
    env = dict(os.environ, OMP_NUM_THREADS='1')
    cmd = [sys.executable, '-m', 'pinpoint3d_core.cli', 'train', '--scenes', scene_file,
           '--out', str(tmp_path / name), '--steps', '4', '--batch-size', '1', '--lr', '2e-3',
           '--warmup', '1', '--max-rounds', '2', '--no-augment', '--seed', '3',
           '--threads', '1', '--no-progress', *extra]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    return torch.load(tmp_path / name / 'checkpoint.pt', weights_only=True)


def test_resume_is_exact(minkowski, scene_file, tmp_path):
    full = _train_cli(tmp_path, 'full', scene_file)
    half = _train_cli(tmp_path, 'half', scene_file, '--stop-at', '2', '--workers', '1')
    assert half['step'] == 2
    # As if the process had logged step 3 and died before its next checkpoint.
    with open(tmp_path / 'half' / 'log.jsonl', 'a') as f:
        f.write(json.dumps({'step': 3, 'loss': -1.0}) + '\n')
    resumed = _train_cli(tmp_path, 'half', scene_file, '--resume', '--workers', '1')
    assert full['step'] == resumed['step'] == 4
    a, b = full['model'], resumed['model']
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert full['scheduler'] == resumed['scheduler']
    sa, sb = full['optimizer']['state'], resumed['optimizer']['state']
    for k in sa:
        assert torch.equal(sa[k]['exp_avg'], sb[k]['exp_avg'])
    log = [json.loads(x) for x in open(tmp_path / 'half' / 'log.jsonl')]
    assert [r['step'] for r in log] == [1, 2, 3, 4]
    assert all(r['loss'] > 0 for r in log)     # the dead run's step 3 is gone


def test_part_stage_freezes_the_object_branch(minkowski):
    from pinpoint3d_core.model.pinpoint3d import PinPoint3D
    model = PinPoint3D('small')
    names = freeze_for_stage(model, 'part')
    assert names and all(n.startswith(('adapter', 'bg_query', 'part_')) for n in names)
    assert not any(p.requires_grad for p in model.backbone.parameters())
    assert len(freeze_for_stage(model, 'joint')) == len(list(model.parameters()))


def test_checkpoint_records_the_training_focus_crop(minkowski, tmp_path):
    from pinpoint3d_core.model.checkpoint import read_checkpoint
    from pinpoint3d_core.training.trainer import TrainConfig, Trainer
    cfg = TrainConfig(model='small', steps=1, batch_size=1, kinds=('toy',), focus_crop=0.7,
                      max_rounds=1, warmup=1)
    Trainer(cfg, str(tmp_path), workers=0, threads=1, progress=False).train()
    assert read_checkpoint(str(tmp_path / 'model.pt'))['inference']['focus_half_extent'] == 0.7
