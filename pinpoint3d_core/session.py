"""
Interactive segmentation session: encode a cloud once, then decode after every click.

The backbone runs once in ``Segmenter.start``; ``add_clicks``/``predict`` only re-run the
click decoders on the cached scene encoding (docs/architecture.md, "Session API").
"""

import dataclasses
import time
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from pinpoint3d_core.errors import CheckpointError, ClickError, Pinpoint3DError
from pinpoint3d_core.model.checkpoint import (
    default_checkpoint_path, load_checkpoint, load_official_checkpoint)
from pinpoint3d_core.model.config import get_config
from pinpoint3d_core.model.connectivity import NeighbourGraph
from pinpoint3d_core.model.pinpoint3d import biased_object_logits, PinPoint3D, VoxelClick
from pinpoint3d_core.model.voxelize import crop_voxels, focus_box, in_box, voxelize
import torch

GRANULARITIES = ('object', 'part', 'both')


@dataclasses.dataclass(frozen=True)
class Click:
    """
    A user click at a 3-D ``position`` (snapped to the nearest point) or a point ``index``.

    ``positive=True`` with ``part_id=0`` marks object ``object_id``; with ``part_id>0`` it
    marks that part of the object (and counts for the object too, so an object may be defined
    by its part clicks alone). ``positive=False`` marks background (ids must stay 0 for parts).
    """

    position: Optional[Tuple[float, float, float]] = None
    index: Optional[int] = None
    object_id: int = 1
    part_id: int = 0
    positive: bool = True


@dataclasses.dataclass(frozen=True)
class ResolvedClick:
    """A click after snapping: caller's point index and the voxel it falls in."""

    index: int
    voxel: int
    object_id: int
    part_id: int
    positive: bool
    snap_distance: float


@dataclasses.dataclass
class Prediction:
    """Labels for every input row (caller's indexing); dropped rows read 0."""

    object_ids: np.ndarray                       # (N,) uint32, 0 = background
    part_ids: np.ndarray                         # (N,) uint32, 0 = no part
    object_scores: Dict[int, float]
    part_scores: Dict[Tuple[int, int], float]
    decode_ms: float
    granularity: str
    encode_ms: float = 0.0      # backbone time spent in this call (focus box moved)


def _pick_device(device):
    if device != 'auto':
        return torch.device(device)
    if torch.cuda.is_available():
        try:
            from pinpoint3d_core.me_shim import import_minkowski
            if getattr(import_minkowski(), 'is_cuda_available', lambda: False)():
                return torch.device('cuda')
        except ImportError:
            pass
    return torch.device('cpu')


def _scores(logits, columns):
    """Mean softmax probability of each column over the rows whose argmax it is (0 if none)."""
    probs = logits.float().softmax(dim=1)
    best = probs.argmax(dim=1)
    out = {}
    for key, col in columns.items():
        sel = best == col
        out[key] = float(probs[sel, col].mean()) if bool(sel.any()) else 0.0
    return out


# Geodesic distances beyond this many voxel sizes all read as "far": the part prior then
# leaves the choice between two far parts to the decoder, and each Dijkstra stays local.
PART_PRIOR_REACH_VOXELS = 20.0


def _part_choice(logits, graph, click_columns, cfg):
    """
    Per voxel, the part column: decoder log-probabilities plus a geodesic click prior.

    ``click_columns`` maps a part column to the view voxels of its positive clicks. Every
    ``part_prior_voxels`` voxel sizes a voxel lies farther (along the graph's links) from a
    column's nearest click than from the nearest click of any part costs that column one
    unit of log-probability, so one click per part already splits an object where the
    decoder is unsure, without overriding it where it is confident (docs/model.md, "Part
    prior"). Columns without clicks are not penalised; with fewer than two clicked columns
    the prior changes nothing.
    """
    tau = cfg.part_prior_voxels
    if tau <= 0 or not graph.enabled or len(click_columns) < 2:
        return logits.argmax(dim=1)
    reach = PART_PRIOR_REACH_VOXELS
    cols = sorted(click_columns)
    dist = np.stack([np.minimum(graph.seed_distance(click_columns[j], reach * cfg.voxel_size)
                                / cfg.voxel_size, reach) for j in cols])
    prior = np.zeros((logits.shape[1], graph.size), dtype=np.float32)
    prior[cols] = -(dist - dist.min(axis=0)) / tau
    prior = torch.as_tensor(prior.T, device=logits.device)
    return (torch.log_softmax(logits.float(), dim=1) + prior).argmax(dim=1)


class Segmenter:
    """A loaded model; ``start`` opens one Session per point cloud."""

    def __init__(self, model, device='cpu', metadata=None, untrained=False, source=''):
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.metadata = dict(metadata or {})
        self.untrained = bool(untrained)
        self.source = source
        if self.device.type == 'cpu':
            # Same input, same labels: CPU kernels are deterministic with this switch.
            torch.use_deterministic_algorithms(True, warn_only=True)

    @property
    def config(self):
        """Return the model's ModelConfig."""
        return self.model.config

    @classmethod
    def load(cls, checkpoint=None, device='auto', config=None):
        """Load a project checkpoint (None = the shipped ``weights/pinpoint3d_small.pt``)."""
        path = default_checkpoint_path() if checkpoint is None else checkpoint
        dev = _pick_device(device)
        model, meta = load_checkpoint(path, expected_config=config, device=dev)
        return cls(model, dev, meta, untrained=False, source=str(path))

    @classmethod
    def untrained(cls, config='small', seed=0, device='auto'):
        """
        Build a randomly initialised model (tests, and the node until weights ship).

        Its labels are meaningless; ``untrained`` is True so callers can say so.
        """
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = PinPoint3D(get_config(config))
        return cls(model, _pick_device(device), {'untrained': True, 'seed': seed},
                   untrained=True, source=f'untrained:{model.config.name}:seed{seed}')

    @classmethod
    def from_official(cls, path, device='auto'):
        """Load an official AGILE3D/PinPoint3D ``.pth`` onto the reference configuration."""
        model, report = load_official_checkpoint(path)
        if not report.ok:
            raise CheckpointError(f'{path} does not fit the reference model:\n{report}')
        seg = cls(model, _pick_device(device), {'official_report': str(report)},
                  source=str(path))
        return seg

    def start(self, points, colors=None, intensity=None):
        """Voxelise the cloud and run the backbone once; returns a Session."""
        return Session(self, points, colors, intensity)


class _EncodedView:
    """The encoding of the whole cloud or of the voxels inside a focus box."""

    def __init__(self, model, voxels, box=None, clicks_at_build=0):
        self.voxels = voxels
        self.box = box                         # (lo, hi) arrays, None = whole cloud
        self.clicks_at_build = clicks_at_build
        with torch.inference_mode():
            self.enc = model.encode(voxels)
        self.voxel_of_row = voxels.voxel_of_row()   # -1 outside the box
        cfg = model.config
        # The click claim and the part prior walk the same links; without the connectivity
        # rule they need only be as long as the claim radius (3 voxel sizes at least).
        gap = cfg.component_gap_voxels
        if gap <= 0 and (cfg.click_claim_voxels > 0 or cfg.part_prior_voxels > 0):
            gap = max(cfg.click_claim_voxels, 3.0)
        self.graph = NeighbourGraph(voxels.xyz, gap * cfg.voxel_size)


class Session:
    """
    Click history plus the cached encoding of one cloud.

    With ``focus_half_extent`` > 0 (model config) the backbone runs on the points within that
    distance of the positive clicks, on the first prediction and again whenever a positive
    click lands near the edge of the encoded box: the network then sees a room-sized piece of
    a large scan, as in training, and every point outside the box reads background.
    """

    def __init__(self, segmenter, points, colors=None, intensity=None):
        cfg = segmenter.config
        self._seg = segmenter
        self._model = segmenter.model
        t0 = time.perf_counter()
        self.voxels = voxelize(points, colors, intensity, voxel_size=cfg.voxel_size,
                               max_points=cfg.max_points, max_voxels=cfg.max_voxels)
        self._points = np.asarray(points, dtype=np.float64)
        self.focus = float(cfg.focus_half_extent or 0.0)
        self._view = None
        if self.focus <= 0:
            with self._autocast():
                self._view = _EncodedView(self._model, self.voxels)
        self.encode_ms = (time.perf_counter() - t0) * 1000.0
        self.num_points = self.voxels.num_input_points
        self._voxel_of_row = self.voxels.voxel_of_row()
        self._tree = None
        self._clicks: List[ResolvedClick] = []
        self._batches: List[int] = []

    @property
    def encoding(self):
        """Return the current EncodedScene (None before the first focused prediction)."""
        return None if self._view is None else self._view.enc

    def _focus_view(self):
        """Return the view for the current clicks, re-encoding when they left the box."""
        view = self._view
        if self.focus <= 0:
            return view, 0.0
        pos = self._points[[c.index for c in self._clicks if c.positive]]
        if view is not None and view.clicks_at_build <= len(self._clicks):
            lo, hi = view.box
            margin = 0.5 * self.focus
            if np.all(pos >= lo + margin) and np.all(pos <= hi - margin):
                return view, 0.0
        t0 = time.perf_counter()
        lo, hi = focus_box(pos, self.focus, self.voxels.xyz)
        with self._autocast():
            keep = in_box(self.voxels.xyz, lo, hi)
            self._view = _EncodedView(self._model, crop_voxels(self.voxels, keep),
                                      (lo, hi), len(self._clicks))
        return self._view, (time.perf_counter() - t0) * 1000.0

    def _autocast(self):
        dev = self._seg.device
        return torch.autocast(dev.type, dtype=torch.float16, enabled=dev.type == 'cuda')

    @property
    def clicks(self):
        """Return the click history (resolved), oldest first."""
        return list(self._clicks)

    def default_snap_radius(self):
        """Snap radius used when add_clicks gets none: two voxels, at least 5 cm."""
        return max(0.05, 2.0 * self._seg.config.voxel_size)

    def _nearest(self, position):
        if self._tree is None:
            from scipy.spatial import cKDTree
            self._tree = cKDTree(self._points[self.voxels.valid_rows])
        dist, i = self._tree.query(position)
        return float(dist), int(self.voxels.valid_rows[i])

    def add_clicks(self, clicks: Sequence[Click], snap_radius=None):
        """Validate and append clicks (all or none); returns their snapped point indices."""
        if isinstance(clicks, Click):
            clicks = [clicks]
        radius = self.default_snap_radius() if snap_radius is None else float(snap_radius)
        limit = self._seg.config.max_clicks
        if len(self._clicks) + len(clicks) > limit:
            raise ClickError(
                f'a session supports at most {limit} clicks (the click-order encoding has '
                f'{limit} entries); it has {len(self._clicks)} and {len(clicks)} were added; '
                'reset() or undo() first')
        resolved = []
        for i, c in enumerate(clicks):
            resolved.append(self._resolve(i, c, radius))
        self._clicks.extend(resolved)
        self._batches.append(len(resolved))
        return [r.index for r in resolved]

    def _resolve(self, i, c, radius):
        if not isinstance(c, Click):
            raise ClickError(f'click {i}: expected a Click, got {type(c).__name__}')
        for name in ('object_id', 'part_id'):
            v = getattr(c, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not (
                    0 <= int(v) < 2 ** 32):
                raise ClickError(f'click {i}: {name} must be an integer in 0..2^32-1, got {v!r}')
        if c.positive and c.object_id == 0:
            what = 'part click' if c.part_id else 'positive click'
            raise ClickError(
                f'click {i}: a {what} needs the object it belongs to (object_id >= 1); '
                'use positive=False for background')
        if not c.positive and c.part_id:
            raise ClickError(
                f'click {i}: a negative click cannot name a part; to mark a point of object '
                f'{c.object_id} outside every part use Click(object_id={c.object_id}, '
                'part_id=0), or positive=False for background')
        if (c.position is None) == (c.index is None):
            raise ClickError(f'click {i}: give exactly one of position or index')
        if c.index is not None:
            idx = c.index
            if isinstance(idx, bool) or not isinstance(idx, (int, np.integer)) or not (
                    0 <= int(idx) < self.num_points):
                raise ClickError(
                    f'click {i}: index {idx!r} is outside the cloud (0..{self.num_points - 1})')
            idx = int(idx)
            if self._voxel_of_row[idx] < 0:
                raise ClickError(f'click {i}: point {idx} has NaN/inf coordinates')
            dist = 0.0
        else:
            pos = np.asarray(c.position, dtype=np.float64).reshape(-1)
            if pos.shape != (3,) or not np.all(np.isfinite(pos)):
                raise ClickError(f'click {i}: position must be 3 finite numbers, got '
                                 f'{c.position!r}')
            dist, idx = self._nearest(pos)
            if dist > radius:
                raise ClickError(
                    f'click {i} at {tuple(np.round(pos, 3))}: the nearest point is {dist:.3f} m '
                    f'away, beyond the snap radius of {radius:.3f} m')
        return ResolvedClick(idx, int(self._voxel_of_row[idx]), int(c.object_id),
                             int(c.part_id), bool(c.positive), dist)

    def undo(self):
        """Remove the clicks of the last add_clicks call; returns how many were removed."""
        if not self._batches:
            return 0
        n = self._batches.pop()
        del self._clicks[len(self._clicks) - n:]
        self._forget_focus()
        return n

    def reset(self):
        """Forget every click (the whole-cloud encoding stays; a focus box is dropped)."""
        self._clicks.clear()
        self._batches.clear()
        self._forget_focus()

    def _forget_focus(self):
        # Labels must depend on the clicks only, not on which box an earlier history left.
        if self.focus > 0 and self._view is not None and \
                self._view.clicks_at_build > len(self._clicks):
            self._view = None

    def predict(self, granularity='both', target_objects=None):
        """Decode the click history into per-point object and part labels."""
        if granularity not in GRANULARITIES:
            raise Pinpoint3DError(
                f'granularity must be one of {GRANULARITIES}, got {granularity!r}')
        t0 = time.perf_counter()
        n = self.num_points
        obj_out = np.zeros(n, dtype=np.uint32)
        part_out = np.zeros(n, dtype=np.uint32)
        clicked = {c.object_id for c in self._clicks if c.positive}
        if target_objects is not None:
            unknown = sorted({int(k) for k in target_objects} - clicked)
            if unknown:
                raise ClickError(
                    f'unknown object id(s) {unknown}: no click in this session names them '
                    f'(known: {sorted(clicked)})')
        if not clicked:
            return Prediction(obj_out, part_out, {}, {},
                              (time.perf_counter() - t0) * 1000.0, granularity)
        view, encode_ms = self._focus_view()
        # Clicks in view-voxel terms; a negative click outside the focus box is already
        # satisfied (everything outside reads background) and is not decoded.
        in_view = [(order, c, int(view.voxel_of_row[c.index]))
                   for order, c in enumerate(self._clicks)]
        in_view = [(order, c, v) for order, c, v in in_view if v >= 0]
        vclicks = [VoxelClick(v, c.object_id if c.positive else 0, c.part_id, order,
                              c.positive) for order, c, v in in_view]
        cfg = self._seg.config
        t0 = time.perf_counter()
        with torch.inference_mode(), self._autocast():
            out = self._model.decode(
                view.enc, vclicks, granularity='object' if granularity == 'object' else 'both',
                part_objects=target_objects, full_part_logits=False,
                object_bias=cfg.object_logit_bias)
        ids = np.asarray([0] + out.object_ids, dtype=np.uint32)
        # docs/model.md, "Object logit bias" (off by default).
        vcol = biased_object_logits(out.object_logits, cfg.object_logit_bias).argmax(dim=1)
        # Clicked voxels take their clicked label, as in the reference.
        col_of = {k: i + 1 for i, k in enumerate(out.object_ids)}
        for _, c, v in in_view:
            vcol[v] = col_of[c.object_id] if c.positive else 0
        graph = view.graph
        if graph.enabled and cfg.component_gap_voxels > 0:
            seeds = {}
            for _, c, v in in_view:
                if c.positive:
                    seeds.setdefault(col_of[c.object_id], []).append(v)
            vcol = torch.as_tensor(graph.clicked_pieces(vcol.cpu().numpy(), seeds),
                                   device=vcol.device)
        # Scores = mean probability over the decoder tokens given that label (cheap: T rows).
        object_scores = _scores(out.token_object_logits, col_of)
        vox_parts = torch.zeros_like(vcol)
        part_scores = {}
        # Part clicks may claim their neighbourhood inside the object's mask (docs/model.md,
        # "Click claim"; off by default); every click takes part in the nearest-click contest.
        owner = None
        if out.part_logits and cfg.click_claim_voxels > 0:
            owner = torch.as_tensor(graph.nearest_seed(
                [v for _, _, v in in_view], cfg.click_claim_voxels * cfg.voxel_size),
                device=vcol.device)
        for k, logits in out.part_logits.items():
            inside = vcol == col_of[k]
            click_part = []       # per click: its part column in object k, -1 = not k's
            click_columns = {}    # part column -> its clicked voxels
            for _, c, v in in_view:
                j = -1
                if c.positive and c.object_id == k:
                    j = out.part_ids[k].index(c.part_id) + 1 if c.part_id else 0
                    click_columns.setdefault(j, []).append(v)
                click_part.append(j)
            pcol = _part_choice(logits, graph, click_columns, cfg)
            for j, (_, _, v) in zip(click_part, in_view):
                if j >= 0:
                    pcol[v] = j
            pids = torch.as_tensor([0] + out.part_ids[k], dtype=torch.long, device=pcol.device)
            if owner is not None:
                own = torch.as_tensor(click_part, device=pcol.device)[owner.clamp(min=0)]
                pcol = torch.where((owner >= 0) & (own >= 0), own, pcol)
            vox_parts = torch.where(inside, pids[pcol], vox_parts)
            pscores = _scores(out.token_part_logits[k],
                              {p: j for j, p in enumerate(out.part_ids[k], start=1)})
            part_scores.update({(k, p): v for p, v in pscores.items()})
        vox_obj = ids[vcol.cpu().numpy()]
        rows, inv = view.voxels.valid_rows, view.voxels.inverse
        obj_out[rows] = vox_obj[inv]
        if granularity != 'object':
            part_out[rows] = vox_parts.cpu().numpy().astype(np.uint32)[inv]
        return Prediction(obj_out, part_out, object_scores, part_scores,
                          (time.perf_counter() - t0) * 1000.0, granularity, encode_ms)
