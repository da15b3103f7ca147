"""DistributedDataParallel through torchrun: 2 CPU processes with gloo."""

import json
import os
import subprocess
import sys

from pinpoint3d_core.scene import save_scene
from pinpoint3d_core.toyscenes import toy_scene


def test_torchrun_two_processes_gloo(minkowski, tmp_path):
    for i in range(2):
        save_scene(tmp_path / f'toy{i}.npz', toy_scene(i, n_objects=2, density=400.0, room=3.0))
    out = tmp_path / 'run'
    env = dict(os.environ, OMP_NUM_THREADS='1')
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node',
           '2', '-m', 'pinpoint3d_core.cli', 'train', '--scenes', str(tmp_path), '--out',
           str(out), '--steps', '2', '--batch-size', '1', '--workers', '0', '--threads', '1',
           '--max-rounds', '2', '--no-progress', '--warmup', '1']
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    log = [json.loads(x) for x in open(out / 'log.jsonl')]
    assert [r['step'] for r in log] == [1, 2]
    assert all('loss' in r for r in log)
    check = json.loads((out / 'ddp_check.json').read_text())
    assert check['world_size'] == 2 and check['identical'], check
    assert (out / 'checkpoint.pt').exists() and (out / 'model.pt').exists()
