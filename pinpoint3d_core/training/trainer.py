"""
Training loop with the iterative click protocol of AGILE3D / PinPoint3D.

Per sample: the backbone runs once (with gradient where it trains); then, without gradient,
the first round places one click per target and 0..max_rounds-1 further rounds each add
clicks at the centres of the largest error regions of the current prediction
(``pinpoint3d_core.clicksim``); finally one differentiable decode on the full click set gets
the loss (final + auxiliary layers, object and/or part level).

Stages: ``object`` trains backbone + object decoder on object-level samples; ``part`` freezes
them (parameters and BatchNorm statistics) and trains adapter, background queries, part decoder
and part mask head on part-level samples (the paper's schedule, run after ``object`` with
``--init``); ``joint`` trains everything on a mix of both sample kinds.

Works unchanged under ``torchrun`` (DistributedDataParallel, gloo on CPU, nccl on GPU).
"""

import ctypes
from dataclasses import asdict, dataclass, field
import json
import math
import os
import random
import time

import numpy as np
from pinpoint3d_core import clicksim
from pinpoint3d_core.errors import CheckpointError, Pinpoint3DError
from pinpoint3d_core.training import losses
from pinpoint3d_core.training.data import Augment, make_loader, TrainingDataset
import torch
from torch import nn

FROZEN_IN_PART_STAGE = ('backbone', 'squeeze', 'object_layers', 'object_mask_embed',
                        'decoder_norm')


@dataclass
class TrainConfig:
    """Everything that defines a run (saved in checkpoints; resume checks it)."""

    model: str = 'small'
    stage: str = 'joint'
    steps: int = 2000
    batch_size: int = 2
    lr: float = 3e-4
    weight_decay: float = 1e-4
    warmup: int = 100
    min_lr_ratio: float = 0.05
    grad_clip: float = 1.0
    max_rounds: int = 5
    max_objects: int = 6
    max_part_objects: int = 2
    # Objects and parts smaller than this (in voxels) are never targets: a distant LiDAR
    # pedestrian of 3 voxels teaches nothing but noise.
    min_target_voxels: int = 3
    part_prob: float = 0.5
    # Crop each sample to its first clicks' box grown by this many metres, as the Session's
    # focus box does at inference (0 = whole scene).
    focus_crop: float = 0.0
    seed: int = 0
    kinds: tuple = ('indoor',)
    scene_size: str = 'small'
    augment: bool = True
    loss: dict = field(default_factory=lambda: asdict(losses.LossConfig()))


def model_levels(stage):
    """Which output levels get a loss in a stage."""
    return {'object': ('object',), 'part': ('part',), 'joint': ('object', 'part')}[stage]


def freeze_for_stage(model, stage):
    """Freeze the object branch for the part stage; returns the trainable parameter names."""
    frozen = FROZEN_IN_PART_STAGE if stage == 'part' else ()
    names = []
    for name, p in model.named_parameters():
        p.requires_grad_(not name.startswith(frozen))
        if p.requires_grad:
            names.append(name)
    return names


def set_train_mode(model, stage):
    """Train mode, except frozen modules keep fixed BatchNorm statistics (eval mode)."""
    model.train()
    if stage == 'part':
        for name in FROZEN_IN_PART_STAGE:
            mod = getattr(model, name, None)
            if mod is not None:
                mod.eval()


def _label_table(sample):
    return {t: i for i, t in enumerate(sample.targets, 1)}


def predicted_labels(out, sample):
    """Map a DecodeOutput to the sample's label space (0 = background, -1 = other error)."""
    table = _label_table(sample)
    col = out.object_logits.argmax(dim=1).cpu().numpy()
    ids = np.array([0] + list(out.object_ids), dtype=np.int64)
    obj = ids[col]
    if sample.level == 'object':
        lut = {o: table.get((o, 0), -1) for o in out.object_ids}
        lut[0] = 0
        return np.array([lut[o] for o in obj], dtype=np.int64) if len(obj) else obj
    labels = np.where(obj == 0, 0, -1).astype(np.int64)
    for o, logits in out.part_logits.items():
        pid = np.array([0] + list(out.part_ids[o]), dtype=np.int64)
        part = pid[logits.argmax(dim=1).cpu().numpy()]
        for p in out.part_ids[o]:
            lab = table.get((o, p))
            if lab is not None:
                labels[(obj == o) & (part == p)] = lab
    return labels


def _to_clicks(sim, sample, start_order, rng):
    from pinpoint3d_core.model.pinpoint3d import VoxelClick
    sim = list(sim)
    rng.shuffle(sim)  # the order within a round carries no information (reference: shuffled)
    out = []
    for i, c in enumerate(sim):
        if c.positive:
            o, p = sample.targets[c.label - 1]
            out.append(VoxelClick(c.index, o, p, start_order + i, True))
        else:
            out.append(VoxelClick(c.index, 0, 0, start_order + i, False))
    return out


def simulate_clicks(model, enc, sample, max_rounds, granularity):
    """Run the no-gradient click rounds; returns the final click list (VoxelClick)."""
    rng = np.random.default_rng(sample.seed)
    xyz = np.asarray(sample.cloud.xyz, dtype=np.float64)
    gt = sample.gt
    first = sample.first_clicks
    if first is None:
        first = clicksim.first_clicks(xyz, gt)
    clicks = _to_clicks(first, sample, 0, rng)
    extra = int(rng.integers(0, max(1, max_rounds)))
    limit = model.config.max_clicks
    with torch.no_grad():
        for _ in range(extra):
            out = model.decode(enc, clicks, granularity=granularity, full_part_logits=False)
            pred = predicted_labels(out, sample)
            sim = clicksim.next_clicks(xyz, gt, pred, max_clicks=len(sample.targets),
                                       exclude=[c.voxel for c in clicks])
            if not sim or len(clicks) + len(sim) > limit:
                break
            clicks += _to_clicks(sim, sample, len(clicks), rng)
    return clicks


def sample_loss(model, enc, sample, clicks, levels, loss_cfg):
    """Differentiable loss of one sample on its final click set."""
    granularity = 'object' if levels == ('object',) else 'both'
    out = model.decode(enc, clicks, granularity=granularity, aux=True)
    dev = out.object_logits.device
    gt = torch.as_tensor(sample.gt, device=dev)
    table = sample.targets
    cxyz = enc.xyz[torch.tensor([c.voxel for c in clicks], device=dev)]
    weight = losses.click_weights(enc.xyz, cxyz, loss_cfg.near, loss_cfg.w_near,
                                  loss_cfg.w_far)
    total = out.object_logits.sum() * 0.0
    log = {}
    if 'object' in levels:
        col = {o: i + 1 for i, o in enumerate(out.object_ids)}
        lut = torch.tensor([0] + [col.get(o, 0) for o, _ in table], device=dev)
        target = lut[gt]
        loss, parts = losses.level_loss(out.object_logits, out.aux_object_logits, target,
                                        weight, loss_cfg)
        total = total + loss_cfg.object_weight * loss
        log.update(object_ce=parts['ce'], object_dice=parts['dice'])
    if 'part' in levels and sample.level == 'part' and out.part_logits:
        acc, ce, dice = 0.0, [], []
        for o, logits in out.part_logits.items():
            col = {p: i + 1 for i, p in enumerate(out.part_ids[o])}
            lut = torch.tensor([0] + [col.get(p, 0) if oo == o else 0 for oo, p in table],
                               device=dev)
            aux = [a[o] for a in out.aux_part_logits if o in a]
            loss, parts = losses.level_loss(logits, aux, lut[gt], weight, loss_cfg)
            acc = acc + loss
            ce.append(parts['ce'])
            dice.append(parts['dice'])
        total = total + loss_cfg.part_weight * acc / len(out.part_logits)
        log.update(part_ce=float(np.mean(ce)), part_dice=float(np.mean(dice)))
    log['clicks'] = len(clicks)
    return total, log


class TrainStep(nn.Module):
    """One batch -> mean loss; a module so DistributedDataParallel can wrap it."""

    def __init__(self, model, stage, max_rounds, loss_cfg):
        super().__init__()
        self.model = model
        self.stage = stage
        self.max_rounds = max_rounds
        self.loss_cfg = loss_cfg

    def forward(self, samples):
        """Encode the batch once, simulate clicks per sample, return (loss, log)."""
        levels = model_levels(self.stage)
        samples = [s for s in samples if s.targets]
        if not samples:
            return None, {}
        encs = self.model.encode([s.cloud for s in samples])
        granularity = 'object' if levels == ('object',) else 'both'
        total, logs = 0.0, []
        for s, enc in zip(samples, encs):
            clicks = simulate_clicks(self.model, enc, s, self.max_rounds, granularity)
            loss, log = sample_loss(self.model, enc, s, clicks, levels, self.loss_cfg)
            log['voxels'] = enc.num_voxels
            total = total + loss
            logs.append(log)
        merged = {k: float(np.mean([g[k] for g in logs if k in g]))
                  for k in sorted({k for g in logs for k in g})}
        return total / len(samples), merged


def lr_lambda(cfg):
    """Linear warm-up then cosine decay to ``min_lr_ratio`` at ``steps``."""
    def fn(step):
        if step < cfg.warmup:
            return (step + 1) / max(1, cfg.warmup)
        t = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
        t = min(1.0, t)
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t))
    return fn


def set_threads(n):
    """
    Set torch's and OpenBLAS's thread counts (MinkowskiEngine uses OpenBLAS).

    Bit-exact runs also need OMP_NUM_THREADS=1 in the environment at start-up:
    MinkowskiEngine's OpenMP loops do not follow ``torch.set_num_threads``.
    """
    torch.set_num_threads(int(n))
    for name in ('libopenblas.so.0', 'libopenblas.so'):
        try:
            ctypes.CDLL(name).openblas_set_num_threads(int(n))
            break
        except (OSError, AttributeError):
            continue


def _rng_state():
    """Every generator's state as tensors and plain containers (loadable weights_only)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    return {'torch': torch.get_rng_state(),
            'numpy': {'kind': str(kind), 'keys': torch.from_numpy(keys.astype(np.int64)),
                      'pos': int(pos), 'has_gauss': int(has_gauss), 'cached': float(cached)},
            'python': {'version': int(version), 'internal': [int(v) for v in internal],
                       'gauss': gauss}}


def _set_rng_state(state):
    torch.set_rng_state(state['torch'])
    n = state['numpy']
    np.random.set_state((n['kind'], n['keys'].numpy().astype(np.uint32), n['pos'],
                         n['has_gauss'], n['cached']))
    p = state['python']
    random.setstate((p['version'], tuple(p['internal']), p['gauss']))


def save_training_checkpoint(path, model, optimizer, scheduler, step, cfg):
    """Atomically write everything needed for an exact resume."""
    state = {'format': 'pinpoint3d-train', 'version': 1, 'model': model.state_dict(),
             'model_config': model.config.to_dict(), 'optimizer': optimizer.state_dict(),
             'scheduler': scheduler.state_dict(), 'step': step, 'train_config': asdict(cfg),
             'rng': _rng_state()}
    tmp = path + '.tmp'
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def export_model(path, model, cfg, step):
    """Write the model-only project checkpoint that ``Segmenter.load`` reads."""
    from pinpoint3d_core.model.checkpoint import save_checkpoint
    from pinpoint3d_core.inference.config import default_inference
    meta = {'train_config': json.loads(json.dumps(asdict(cfg))), 'step': int(step)}
    # The checkpoint records the crop it was trained with: sessions then use that box.
    inference = default_inference(model.config.name).replace(
        focus_half_extent=float(cfg.focus_crop))
    return save_checkpoint(path, model, metadata=meta, inference=inference)


def load_init(model, path):
    """Load model weights for ``--init``: a project checkpoint or a training checkpoint."""
    from pinpoint3d_core.model.checkpoint import safe_torch_load
    state = safe_torch_load(path, what='--init checkpoint')
    weights = None
    if isinstance(state, dict):
        weights = state.get('state_dict', state.get('model'))
    if not isinstance(weights, dict):
        raise CheckpointError(f'{path}: no model weights in this file')
    result = model.load_state_dict(weights, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise CheckpointError(
            f'{path} does not fit the {model.config.name!r} model (missing '
            f'{result.missing_keys[:3]}, unexpected {result.unexpected_keys[:3]}); use the '
            'same --config as the run that wrote it')
    return result


def truncate_log(path, step):
    """
    Drop the log lines of steps after ``step``.

    A run that died after its last checkpoint logged steps that the resumed run does again;
    each step must appear once.
    """
    if not os.path.isfile(path):
        return
    with open(path) as f:
        lines = [line for line in f if line.strip()]
    keep = [line for line in lines if json.loads(line).get('step', 0) <= step]
    if len(keep) != len(lines):
        tmp = path + '.tmp'
        with open(tmp, 'w') as f:
            f.writelines(keep)
        os.replace(tmp, path)


def plot_curves(log_path, png_path):
    """Loss curves from the JSONL log (matplotlib Agg)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    rows = []
    with open(log_path) as f:
        for line in f:
            rows.append(json.loads(line))
    if not rows:
        return None
    steps = np.array([r['step'] for r in rows])
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for key in ('loss', 'object_ce', 'object_dice', 'part_ce', 'part_dice'):
        vals = np.array([r.get(key, np.nan) for r in rows], dtype=float)
        if np.all(np.isnan(vals)):
            continue
        ax = axes[0] if key == 'loss' else axes[1]
        ok = ~np.isnan(vals)
        raw = ax.plot(steps[ok], vals[ok], alpha=0.25, lw=0.8)[0]
        win = max(1, len(vals) // 50)
        if ok.sum() >= win:
            smooth = np.convolve(vals[ok], np.ones(win) / win, mode='valid')
            ax.plot(steps[ok][win - 1:], smooth, lw=1.5, label=key, color=raw.get_color())
    for ax, title in zip(axes, ('total loss', 'terms')):
        ax.set_xlabel('step')
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
    return png_path


class Trainer:
    """Owns model, optimiser, schedule, data and the run directory."""

    def __init__(self, cfg, out_dir, scenes=None, resume=False, init=None, workers=1,
                 threads=0, checkpoint_minutes=10.0, device='cpu', progress=True):
        from pinpoint3d_core.model.config import get_config
        from pinpoint3d_core.model.pinpoint3d import PinPoint3D
        self.cfg = cfg
        self.out = out_dir
        self.dist = int(os.environ.get('WORLD_SIZE', '1')) > 1
        if self.dist and not torch.distributed.is_initialized():
            backend = 'nccl' if device.startswith('cuda') else 'gloo'
            torch.distributed.init_process_group(backend)
        self.rank = torch.distributed.get_rank() if self.dist else 0
        self.world = torch.distributed.get_world_size() if self.dist else 1
        if device.startswith('cuda') and self.dist:
            device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
        self.device = torch.device(device)
        set_threads(threads or max(1, (os.cpu_count() or 1) // self.world))
        self.workers = workers
        self.checkpoint_s = checkpoint_minutes * 60.0
        self.progress = progress and self.rank == 0
        torch.manual_seed(cfg.seed)
        np.random.seed(cfg.seed)
        random.seed(cfg.seed)
        self.model = PinPoint3D(get_config(cfg.model)).to(self.device)
        self.ckpt_path = os.path.join(out_dir, 'checkpoint.pt')
        self.step = 0
        if self.rank == 0:
            os.makedirs(out_dir, exist_ok=True)
        if init and not resume:
            load_init(self.model, init)
        self.trainable = freeze_for_stage(self.model, cfg.stage)
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_lambda(cfg))
        if resume:
            self._resume()
        self.loss_cfg = losses.LossConfig(**cfg.loss)
        self.step_module = TrainStep(self.model, cfg.stage, cfg.max_rounds, self.loss_cfg)
        self.runner = self.step_module
        if self.dist:
            self.runner = nn.parallel.DistributedDataParallel(
                self.step_module, find_unused_parameters=True,
                device_ids=[self.device.index] if self.device.type == 'cuda' else None)
        self.dataset = TrainingDataset(
            scenes, cfg.kinds, self.model.config.voxel_size, cfg.stage, cfg.seed,
            Augment() if cfg.augment else Augment.none(), cfg.max_objects,
            cfg.max_part_objects, cfg.part_prob, cfg.scene_size, cfg.min_target_voxels,
            cfg.focus_crop)

    def _resume(self):
        if not os.path.isfile(self.ckpt_path):
            raise CheckpointError(f'{self.ckpt_path}: nothing to resume (run without --resume)')
        from pinpoint3d_core.model.checkpoint import safe_torch_load
        state = safe_torch_load(self.ckpt_path, map_location=self.device,
                                what='training checkpoint')
        if not isinstance(state, dict) or not isinstance(state.get('rng', {}).get('numpy'), dict):
            raise CheckpointError(f'{self.ckpt_path} was written by an older pinpoint3d whose '
                                  'resume state cannot be loaded safely; start the run again')
        saved = state.get('train_config', {})
        for key in ('model', 'stage', 'batch_size', 'seed'):
            if key in saved and saved[key] != getattr(self.cfg, key):
                raise CheckpointError(
                    f'{self.ckpt_path} was trained with {key}={saved[key]!r}, this run has '
                    f'{getattr(self.cfg, key)!r}; resume with the same settings')
        self.model.load_state_dict(state['model'])
        self.optimizer.load_state_dict(state['optimizer'])
        self.scheduler.load_state_dict(state['scheduler'])
        self.step = int(state['step'])
        _set_rng_state(state['rng'])
        if self.rank == 0:
            truncate_log(os.path.join(self.out, 'log.jsonl'), self.step)

    def save(self):
        """Write checkpoint.pt (exact resume) and model.pt (for evaluation/inference)."""
        if self.rank != 0:
            return
        save_training_checkpoint(self.ckpt_path, self.model, self.optimizer, self.scheduler,
                                 self.step, self.cfg)
        export_model(os.path.join(self.out, 'model.pt'), self.model, self.cfg, self.step)
        log = os.path.join(self.out, 'log.jsonl')
        if os.path.isfile(log):
            plot_curves(log, os.path.join(self.out, 'curves.png'))

    def train(self, stop_at=None, max_minutes=None):
        """
        Run until ``cfg.steps``; returns the per-step log records.

        ``stop_at`` (a step) or ``max_minutes`` (wall time) end the run early, as an
        interruption would, with a checkpoint and the full run's schedule: ``--resume`` continues.
        """
        cfg = self.cfg
        end = cfg.steps if stop_at is None else min(cfg.steps, int(stop_at))
        loader = make_loader(self.dataset, cfg.batch_size, end, self.step, self.rank,
                             self.world, self.workers)
        bar = None
        if self.progress:
            from tqdm import tqdm
            bar = tqdm(total=cfg.steps, initial=self.step, unit='step', dynamic_ncols=True)
        log_f = open(os.path.join(self.out, 'log.jsonl'), 'a') if self.rank == 0 else None
        records = []
        last_ckpt = time.monotonic()
        t_prev = time.perf_counter()
        ema = None
        t_start = time.monotonic()
        try:
            for batch in loader:
                set_train_mode(self.model, cfg.stage)
                loss, log = self.runner(batch)
                self.optimizer.zero_grad(set_to_none=True)
                if loss is not None:
                    loss.backward()
                    if cfg.grad_clip:
                        torch.nn.utils.clip_grad_norm_(
                            [p for p in self.model.parameters() if p.requires_grad],
                            cfg.grad_clip)
                    self.optimizer.step()
                self.scheduler.step()
                self.step += 1
                now = time.perf_counter()
                dt, t_prev = now - t_prev, now
                rec = {'step': self.step, 'lr': self.scheduler.get_last_lr()[0],
                       'sec_per_step': dt,
                       'samples_per_s': cfg.batch_size * self.world / max(dt, 1e-9)}
                rec.update(log)
                if loss is not None:
                    rec['loss'] = float(loss.detach())
                    ema = rec['loss'] if ema is None else 0.95 * ema + 0.05 * rec['loss']
                records.append(rec)
                if log_f is not None:
                    log_f.write(json.dumps(rec) + '\n')
                    log_f.flush()
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f'{ema if ema is not None else float("nan"):.4f}',
                                    s_step=f'{dt:.2f}', smp_s=f"{rec['samples_per_s']:.2f}")
                if time.monotonic() - last_ckpt >= self.checkpoint_s:
                    self.save()
                    last_ckpt = time.monotonic()
                if max_minutes is not None and self._out_of_time(t_start, max_minutes):
                    break
        finally:
            if bar is not None:
                bar.close()
            if log_f is not None:
                log_f.close()
        self.save()
        if self.dist:
            self._check_replicas()
        return records

    def _out_of_time(self, t_start, max_minutes):
        out = torch.tensor([float(time.monotonic() - t_start >= 60.0 * max_minutes)],
                           device=self.device)
        if self.dist:  # every process must stop at the same step
            torch.distributed.all_reduce(out, torch.distributed.ReduceOp.MAX)
        return bool(out.item())

    def _check_replicas(self):
        """Record whether all processes ended with the same weights (DDP keeps them equal)."""
        total = torch.zeros(1, dtype=torch.float64, device=self.device)
        for p in self.model.parameters():
            total += p.detach().double().abs().sum()
        sums = [torch.zeros_like(total) for _ in range(self.world)]
        torch.distributed.all_gather(sums, total)
        if self.rank == 0:
            vals = [float(v) for v in sums]
            with open(os.path.join(self.out, 'ddp_check.json'), 'w') as f:
                json.dump({'world_size': self.world, 'param_abs_sums': vals,
                           'identical': len(set(vals)) == 1}, f)
        torch.distributed.barrier()

    def close(self):
        """Tear down the process group if this trainer created one."""
        if self.dist and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def check_stage(stage):
    """Validate a stage name with a helpful error."""
    if stage not in ('object', 'part', 'joint'):
        raise Pinpoint3DError(f'unknown stage {stage!r}; use object, part or joint')
