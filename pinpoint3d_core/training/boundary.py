"""
Training the boundary network: per-link "crosses an object boundary" on labelled scans.

No clicks are simulated: a link's label is whether its two voxels carry different objects, so
one step is one backbone pass over one (augmented) scene. Scenes come from the training part
of a real development family and, optionally, from the synthetic generator of the same kind.
Progress prints every ``log_every`` steps; ``model.pt`` (a project checkpoint with the
boundary network and its preset's inference settings) is written every ``checkpoint_minutes``
and at the end, ``log.jsonl`` holds the curve (``curves.png`` is drawn from it).
"""

import dataclasses
import json
import os
import time
from typing import List, Optional, Sequence

import numpy as np
from pinpoint3d_core.inference.config import InferenceConfig
from pinpoint3d_core.scene import load_scene, Scene
import torch
import torch.nn.functional as F


@dataclasses.dataclass
class BoundaryTrainConfig:
    """One boundary-network training run (saved in the checkpoint's metadata)."""

    preset: str = 'tabletop'
    real_scans: Sequence[str] = ()
    synth_kind: Optional[str] = None     # generator kind mixed in ('tabletop', 'lidar', ...)
    synth_share: float = 0.0             # probability that a step uses a synthetic scene
    steps: int = 2000
    lr: float = 2e-3
    weight_decay: float = 1e-4
    seed: int = 0
    rotate: str = 'any'                  # 'any' axis (camera frames), 'up' (z), 'none'
    scale_jitter: float = 0.1
    colour_jitter: float = 0.1
    max_links: int = 300_000
    log_every: int = 25
    checkpoint_minutes: float = 10.0
    max_minutes: float = 0.0             # 0 = no limit
    init: str = ''                       # start from this checkpoint's boundary network
    # The network reads each link's concavity seen from the origin (BoundaryConfig); rotation
    # and scale then pivot on the origin, so a camera-frame cloud keeps its sensor there.
    concavity: bool = False


def voxel_majority(labels_of_rows: np.ndarray, voxel_of_row: np.ndarray, size: int) -> np.ndarray:
    """Return (V,) the most common label of each voxel's rows (rows with voxel -1 ignored)."""
    ok = voxel_of_row >= 0
    pairs = np.stack([voxel_of_row[ok], labels_of_rows[ok].astype(np.int64)], axis=1)
    uniq, counts = np.unique(pairs, axis=0, return_counts=True)
    order = np.lexsort((-counts, uniq[:, 0]))        # per voxel, the largest count first
    uniq = uniq[order]
    first = np.ones(len(uniq), dtype=bool)
    first[1:] = uniq[1:, 0] != uniq[:-1, 0]
    out = np.zeros(size, dtype=np.int64)
    out[uniq[first, 0]] = uniq[first, 1]
    return out


def link_targets(surface, scene: Scene):
    """Return (cut (L,) float32, weight (L,) float32): 1 where the ends' objects differ."""
    objects = voxel_majority(np.asarray(scene.object_ids), surface.voxel_of_row, surface.size)
    a, b = objects[surface.links.src], objects[surface.links.dst]
    cut = (a != b).astype(np.float32)
    weight = np.ones_like(cut)
    weight[(a == 0) & (b == 0)] = 0.0      # unlabelled on both ends: nothing to learn
    return cut, weight


def _rotation(rng, mode: str) -> np.ndarray:
    if mode == 'none':
        return np.eye(3)
    if mode == 'up':
        t = rng.uniform(0, 2 * np.pi)
        return np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1]])
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    return q * np.sign(np.diag(r))


def augment(scene: Scene, rng, cfg: BoundaryTrainConfig) -> Scene:
    """Rotate, scale and recolour a scene (labels unchanged), about its centroid or the origin."""
    pts = np.asarray(scene.coords, dtype=np.float64)
    centre = np.zeros(3) if cfg.concavity else np.nanmean(pts, axis=0)
    scale = 1.0 + rng.uniform(-cfg.scale_jitter, cfg.scale_jitter)
    pts = (pts - centre) @ _rotation(rng, cfg.rotate).T * scale + centre
    colors = scene.colors
    if colors is not None:
        gain = 1.0 + rng.uniform(-cfg.colour_jitter, cfg.colour_jitter, 3)
        shift = rng.uniform(-25 * cfg.colour_jitter, 25 * cfg.colour_jitter, 3)
        colors = np.clip(np.asarray(colors, np.float64) * gain + shift, 0, 255).astype(np.uint8)
    intensity = scene.intensity
    if intensity is not None:
        intensity = np.clip(np.asarray(intensity) * (1.0 + rng.uniform(-0.3, 0.3)), 0, None)
    return dataclasses.replace(scene, coords=pts.astype(np.float32), colors=colors,
                               intensity=intensity)


def widened_state(init: dict, target: dict) -> dict:
    """
    Return ``init``'s weights for a network shaped like ``target``.

    A link MLP that reads more link inputs than ``init``'s (the concavity column) gets zero
    weights on the new inputs, so training starts from exactly the old network's answers.
    """
    out = dict(init)
    for name, value in init.items():
        want = target[name].shape
        if value.shape == want:
            continue
        if value.dim() != 2 or value.shape[0] != want[0] or value.shape[1] > want[1]:
            raise ValueError(f'--init: {name} has shape {tuple(value.shape)}, the network '
                             f'needs {tuple(want)}')
        grown = torch.zeros(want, dtype=value.dtype)
        grown[:, :value.shape[1]] = value
        out[name] = grown
    return out


class BoundaryTrainer:
    """Owns the network, optimiser, data and the run directory."""

    def __init__(self, cfg: BoundaryTrainConfig, out_dir: str, inference: InferenceConfig,
                 boundary_config=None):
        from pinpoint3d_core.model.boundary import BoundaryConfig, BoundaryNet
        self.cfg, self.out, self.inference = cfg, out_dir, inference
        os.makedirs(out_dir, exist_ok=True)
        torch.manual_seed(cfg.seed)
        self.rng = np.random.default_rng(cfg.seed)
        self.net = BoundaryNet(boundary_config or BoundaryConfig(link_concavity=cfg.concavity))
        if cfg.init:
            from pinpoint3d_core.model.checkpoint import load_boundary
            self.net.load_state_dict(widened_state(load_boundary(cfg.init).state_dict(),
                                                   self.net.state_dict()))
        self.opt = torch.optim.AdamW(self.net.parameters(), lr=cfg.lr,
                                     weight_decay=cfg.weight_decay)
        total = max(1, cfg.steps)
        self.sched = torch.optim.lr_scheduler.LambdaLR(
            self.opt, lambda s: min(1.0, (s + 1) / 50) * 0.5 * (1 + np.cos(np.pi * s / total)))
        self.real: List[Scene] = [load_scene(p) for p in cfg.real_scans]
        self.step = 0

    def next_scene(self) -> Scene:
        """Return a real training scan or, with probability ``synth_share``, a synthetic one."""
        cfg = self.cfg
        if cfg.synth_kind and (not self.real or self.rng.random() < cfg.synth_share):
            from pinpoint3d_core.synth import generate_scene
            return generate_scene(kind=cfg.synth_kind, seed=int(self.rng.integers(1 << 30)))
        return self.real[int(self.rng.integers(len(self.real)))]

    def train_step(self) -> dict:
        """One scene: surface graph, link targets, weighted BCE, one optimiser step."""
        scene = augment(self.next_scene(), self.rng, self.cfg)
        surface = self.inference.surface_graph(scene.coords, scene.colors, scene.intensity)
        cut, weight = link_targets(surface, scene)
        logits = self.net(surface)
        pick = np.flatnonzero(weight > 0)
        if len(pick) > self.cfg.max_links:
            pick = self.rng.choice(pick, self.cfg.max_links, replace=False)
        y = torch.as_tensor(cut[pick])
        pos = float(y.sum())
        # Boundary links are rare (0.2 % on a table): each class carries half of the loss.
        each = F.binary_cross_entropy_with_logits(logits[torch.as_tensor(pick)], y,
                                                  reduction='none')
        loss = 0.5 * (each[y > 0].mean() if pos else each.sum() * 0) + 0.5 * each[y == 0].mean()
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        self.sched.step()
        with torch.no_grad():
            hit = (logits[torch.as_tensor(pick)] > 0).float()
            tp = float((hit * y).sum())
        return {'step': self.step, 'loss': float(loss.detach()), 'links': len(pick),
                'cut_share': pos / max(len(pick), 1), 'recall': tp / max(pos, 1.0),
                'precision': tp / max(float(hit.sum()), 1.0)}

    def save(self, name='model.pt') -> str:
        """Write the checkpoint (boundary network + inference settings + run metadata)."""
        from pinpoint3d_core.model.checkpoint import save_boundary_checkpoint
        meta = {'boundary_train_config': json.loads(json.dumps(dataclasses.asdict(self.cfg))),
                'step': self.step}
        return str(save_boundary_checkpoint(os.path.join(self.out, name), self.net,
                                            self.inference, meta))

    def train(self) -> str:
        """Run the schedule; returns the checkpoint path."""
        cfg = self.cfg
        t0 = last_save = time.time()
        log = open(os.path.join(self.out, 'log.jsonl'), 'a')
        window = []
        self.net.train()
        while self.step < cfg.steps:
            row = self.train_step()
            self.step += 1
            window.append(row)
            log.write(json.dumps(row) + '\n')
            if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                mean = {k: float(np.mean([r[k] for r in window])) for k in row if k != 'step'}
                print(f'[boundary] step {self.step}/{cfg.steps} loss {mean["loss"]:.3f} '
                      f'recall {mean["recall"]:.2f} precision {mean["precision"]:.2f} '
                      f'({(time.time() - t0) / 60:.1f} min)', flush=True)
                window = []
                log.flush()
            if time.time() - last_save > 60 * cfg.checkpoint_minutes:
                self.save()
                last_save = time.time()
            if cfg.max_minutes and time.time() - t0 > 60 * cfg.max_minutes:
                print(f'[boundary] stopping at step {self.step}: {cfg.max_minutes} min limit')
                break
        log.close()
        return self.save()


def add_arguments(parser) -> None:
    """Register ``pinpoint3d train-boundary`` options."""
    from pinpoint3d_core.evaluation import realdev
    from pinpoint3d_core.presets import PRESETS
    parser.add_argument('--preset', choices=sorted(PRESETS), required=True,
                        help='whose surface-graph settings the network is trained for')
    parser.add_argument('--out', required=True, help='run directory (model.pt, log.jsonl)')
    parser.add_argument('--real', choices=sorted(realdev.FAMILIES),
                        help="train on this real development family's train split")
    parser.add_argument('--synth', choices=('indoor', 'lidar', 'tabletop'),
                        help='mix in scenes of this generator kind, made on the fly')
    parser.add_argument('--synth-share', type=float, default=0.5,
                        help='share of steps on synthetic scenes when --real is given too')
    parser.add_argument('--steps', type=int, default=2000)
    parser.add_argument('--lr', type=float, default=2e-3)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--rotate', choices=('any', 'up', 'none'), default='any',
                        help="augmentation: rotations about 'any' axis (camera frames) or "
                             "the 'up' (z) axis only (LiDAR, z-up rooms)")
    parser.add_argument('--init', default='', help='start from this checkpoint')
    parser.add_argument('--concavity', action='store_true',
                        help="the link MLP also reads each link's signed concavity seen from "
                             'the origin (camera-frame clouds: the sensor); augmentation then '
                             'rotates about the origin')
    parser.add_argument('--max-minutes', type=float, default=0.0)
    parser.add_argument('--checkpoint-minutes', type=float, default=10.0)
    parser.add_argument('--threads', type=int, default=0, help='torch threads (0 = all)')


def run(args) -> int:
    """Train a boundary network for a preset's surface graph."""
    from pinpoint3d_core.errors import Pinpoint3DError
    from pinpoint3d_core.evaluation import realdev
    from pinpoint3d_core.presets import get_preset
    if not (args.real or args.synth):
        raise Pinpoint3DError('give --real FAMILY and/or --synth KIND: nothing to train on')
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = get_preset(args.preset).baseline
    cfg = BoundaryTrainConfig(
        preset=args.preset,
        real_scans=realdev.family_paths(args.real, 'train') if args.real else (),
        synth_kind=args.synth, synth_share=args.synth_share if args.real else 1.0,
        steps=args.steps, lr=args.lr, seed=args.seed, rotate=args.rotate, init=args.init,
        max_minutes=args.max_minutes, checkpoint_minutes=args.checkpoint_minutes,
        concavity=args.concavity)
    path = BoundaryTrainer(cfg, args.out, settings).train()
    print(f'wrote {path}')
    return 0
