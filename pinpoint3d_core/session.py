"""
Interactive segmentation session: encode a cloud once, then decode after every click.

``Segmenter`` holds a network and its ``InferenceConfig``; ``Segmenter.start`` opens a
``Session`` per cloud. A prediction is: check the request, pick the encoded view (the focus box
around the positive clicks), ``PinPoint3D.decode``, apply the configured inference rules
(``inference/pipeline.py``), scatter the voxel labels back to the caller's rows
(docs/architecture.md, "Session API").
"""

import logging
import time
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from pinpoint3d_core.errors import CheckpointError
from pinpoint3d_core.inference.config import (
    default_inference, InferenceConfig, resolve_inference)
from pinpoint3d_core.inference.geodesic import (
    GeodesicSession, handcrafted_costs, learned_link_costs)
from pinpoint3d_core.inference.graph import NeighbourGraph
from pinpoint3d_core.inference.pipeline import apply_rules, inference_rules
from pinpoint3d_core.inference.view import ViewClick, ViewLabels
from pinpoint3d_core.interaction import (
    check_granularity, check_targets, Click, ClickBook, GRANULARITIES, MIN_DEFAULT_SNAP_RADIUS,
    Prediction, ResolvedClick, snap_radius_or_default, start_in_sensor_frame)
from pinpoint3d_core.model.checkpoint import (
    checkpoint_inference, default_checkpoint_path, load_checkpoint, load_official_checkpoint)
from pinpoint3d_core.model.config import get_config, ModelConfig
from pinpoint3d_core.model.pinpoint3d import DecodeOutput, PinPoint3D, VoxelClick
from pinpoint3d_core.model.voxelize import (
    crop_voxels, focus_box, in_box, voxelize, VoxelizedCloud)
import torch

__all__ = ['Click', 'GRANULARITIES', 'Prediction', 'ResolvedClick', 'Segmenter', 'Session']

InferenceLike = Union[None, dict, InferenceConfig]


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


def column_scores(logits: torch.Tensor, columns: Dict) -> Dict:
    """Mean softmax probability of each column over the rows whose argmax it is (0 if none)."""
    probs = logits.float().softmax(dim=1)
    best = probs.argmax(dim=1)
    out = {}
    for key, col in columns.items():
        sel = best == col
        out[key] = float(probs[sel, col].mean()) if bool(sel.any()) else 0.0
    return out


def decoder_scores(out: DecodeOutput) -> Tuple[Dict[int, float], Dict[Tuple[int, int], float]]:
    """Object and part scores: mean probability over the decoder tokens carrying the label."""
    objects = column_scores(out.token_object_logits,
                            {k: i + 1 for i, k in enumerate(out.object_ids)})
    parts = {}
    for k in out.part_logits:
        pscores = column_scores(out.token_part_logits[k],
                                {p: j for j, p in enumerate(out.part_ids[k], start=1)})
        parts.update({(k, p): v for p, v in pscores.items()})
    return objects, parts


class Segmenter:
    """
    A loaded model and its inference settings; ``start`` opens one session per cloud.

    ``model`` is the PinPoint3D network (click decoders; None in a checkpoint that holds only a
    boundary network), ``boundary`` the BoundaryNet that prices the surface graph's links for
    geodesic object masks (None: handcrafted costs, i.e. the baseline's rule).
    """

    def __init__(self, model: Optional[PinPoint3D], device='cpu', metadata: Optional[dict] = None,
                 untrained: bool = False, source: str = '',
                 inference: Optional[InferenceConfig] = None, boundary=None):
        self.device = torch.device(device)
        self.model = None if model is None else model.to(self.device).eval()
        self.boundary = None if boundary is None else boundary.to(self.device).eval()
        self.metadata = dict(metadata or {})
        self.untrained = bool(untrained)
        self.source = source
        name = model.config.name if model is not None else ''
        self.inference = inference or default_inference(name)
        if model is None and self.inference.object_masks != 'geodesic':
            raise CheckpointError(f'{source}: no click decoder in this checkpoint, so its '
                                  "inference must use object_masks='geodesic'")
        if self.device.type == 'cpu':
            # Same input, same labels: CPU kernels are deterministic with this switch.
            torch.use_deterministic_algorithms(True, warn_only=True)

    @property
    def config(self) -> Optional[ModelConfig]:
        """Return the click decoder's ModelConfig (None without a decoder)."""
        return None if self.model is None else self.model.config

    @property
    def learned_masks(self) -> bool:
        """Return whether object masks come from learned weights (not the baseline's rule)."""
        if self.inference.object_masks == 'geodesic':
            return self.boundary is not None
        return self.model is not None

    def describe(self) -> str:
        """One line for logs: where the weights came from and how masks are made."""
        how = {('geodesic', True): 'geodesic masks priced by the learned boundary network',
               ('geodesic', False): 'geodesic masks with handcrafted costs (no boundary net)',
               ('decoder', True): 'object decoder masks', ('decoder', False): '?'}
        masks = how[(self.inference.object_masks, self.learned_masks)]
        missing = self.metadata.get('missing_weights')
        if missing:
            return (f"NO WEIGHTS ({missing} not found): the {self.metadata.get('preset')} "
                    f"preset's non-learned baseline on {self.device.type}: {masks}")
        state = 'UNTRAINED ' if self.untrained else ''
        parts = ''
        if self.inference.object_masks == 'geodesic':
            parts = (', parts from the click decoder' if self.inference.geodesic_parts ==
                     'decoder' else ', parts from the nearest part click')
        return f'{state}weights {self.source} on {self.device.type}: {masks}{parts}'

    @classmethod
    def load(cls, checkpoint=None, device='auto', config=None,
             inference: InferenceLike = None, preset: Optional[str] = None) -> 'Segmenter':
        """
        Load a project checkpoint, a preset's weights, or the shipped indoor weights.

        ``checkpoint`` (a path) wins over ``preset``; with neither, the shipped
        ``weights/pinpoint3d_small.pt``. A preset whose weights file is not there (not trained
        yet, or not installed) runs its non-learned baseline instead, logged as a warning and
        said by ``describe()`` (``preset_baseline``).

        ``inference`` changes the checkpoint's inference settings (dict of fields, or a whole
        InferenceConfig).
        """
        from pinpoint3d_core.model.checkpoint import boundary_from_data, read_checkpoint
        from pinpoint3d_core.presets import preset_weights
        if checkpoint is not None:
            path = checkpoint
        elif preset is not None:
            try:
                path = preset_weights(preset)
            except CheckpointError as exc:
                return cls.preset_baseline(preset, device=device, inference=inference,
                                           reason=str(exc))
        else:
            path = default_checkpoint_path()
        dev = _pick_device(device)
        data = read_checkpoint(path)
        model = meta = None
        saved = checkpoint_inference(data)
        if 'state_dict' in data:
            model, meta, saved = load_checkpoint(path, expected_config=config, device=dev)
        boundary = boundary_from_data(data, path)
        meta = meta if meta is not None else dict(data.get('metadata', {}))
        if preset is not None:
            meta['preset'] = preset
        return cls(model, dev, meta, untrained=False, source=str(path),
                   inference=resolve_inference(inference, saved), boundary=boundary)

    @classmethod
    def preset_baseline(cls, preset: str, device='auto', inference: InferenceLike = None,
                        reason: str = '') -> 'Segmenter':
        """
        Return a preset's non-learned baseline (no weights), for when its weights are absent.

        Its masks are honest geodesic nearest-click masks with the preset's tuned settings,
        not a learned model's: ``describe()`` and ``metadata['missing_weights']`` say so.
        """
        from pinpoint3d_core.presets import get_preset
        chosen = get_preset(preset)
        logging.getLogger('pinpoint3d').warning(
            "preset '%s': weights %s not found, running its non-learned baseline instead (%s)",
            preset, chosen.weights, reason or 'no file')
        meta = {'preset': preset, 'missing_weights': chosen.weights, 'reason': reason}
        return cls(None, _pick_device(device), meta, source=f'{preset} preset baseline',
                   inference=resolve_inference(inference, chosen.baseline))

    @classmethod
    def untrained(cls, config='small', seed: int = 0, device='auto',
                  inference: InferenceLike = None) -> 'Segmenter':
        """
        Build a randomly initialised model (tests, and the node until weights ship).

        Its labels are meaningless; ``untrained`` is True so callers can say so.
        """
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = PinPoint3D(get_config(config))
        base = default_inference(model.config.name)
        return cls(model, _pick_device(device), {'untrained': True, 'seed': seed},
                   untrained=True, source=f'untrained:{model.config.name}:seed{seed}',
                   inference=resolve_inference(inference, base))

    @classmethod
    def from_official(cls, path, device='auto') -> 'Segmenter':
        """Load an official AGILE3D/PinPoint3D ``.pth`` onto the reference configuration."""
        model, report = load_official_checkpoint(path)
        if not report.ok:
            raise CheckpointError(f'{path} does not fit the reference model:\n{report}')
        return cls(model, _pick_device(device), {'official_report': str(report)},
                   source=str(path))

    def start(self, points: np.ndarray, colors: Optional[np.ndarray] = None,
              intensity: Optional[np.ndarray] = None, inference: InferenceLike = None):
        """
        Prepare one cloud (N, 3) for clicks; returns a session.

        Decoder object masks: voxelise and encode (or wait for the focus box), a ``Session``.
        Geodesic object masks: build the surface graph and price its links, a
        ``GeodesicSession``.
        """
        settings = resolve_inference(inference, self.inference)
        framed = start_in_sensor_frame(settings, points, colors, intensity, self.start)
        if framed is not None:
            return framed
        if settings.object_masks == 'geodesic':
            parts = None
            if settings.geodesic_parts == 'decoder':
                if self.model is None:
                    raise CheckpointError(f"{self.source}: geodesic_parts='decoder' needs a "
                                          'checkpoint with a click decoder')
                parts = Session(self, points, colors, intensity,
                                settings.replace(object_masks='decoder'))
            max_clicks = self.model.config.max_clicks if self.model is not None else 200
            return GeodesicSession(settings, points, colors, intensity,
                                   costs=self._link_costs(settings), max_clicks=max_clicks,
                                   part_session=parts)
        if self.model is None:
            raise CheckpointError(f'{self.source} has no click decoder for '
                                  "object_masks='decoder'")
        return Session(self, points, colors, intensity, settings)

    def _link_costs(self, settings: InferenceConfig):
        if self.boundary is None:
            return handcrafted_costs(settings)
        net = self.boundary

        def learned(surface):
            with torch.inference_mode():
                probability = net.boundary_probability(surface)
            return learned_link_costs(settings, surface, probability), probability
        return learned


class _EncodedView:
    """The encoding of the whole cloud or of the voxels inside a focus box."""

    def __init__(self, model, voxels, graph_gap_voxels, box=None, clicks_at_build=0):
        self.voxels = voxels
        self.box = box                         # (lo, hi) arrays, None = whole cloud
        self.clicks_at_build = clicks_at_build
        with torch.inference_mode():
            self.enc = model.encode(voxels)
        self.voxel_of_row = voxels.voxel_of_row()   # -1 outside the box
        self.graph = NeighbourGraph(voxels.xyz, graph_gap_voxels * voxels.voxel_size)


class Session:
    """
    Click history plus the cached encoding of one cloud.

    With ``focus_half_extent`` > 0 the backbone runs on the points within that distance of the
    positive clicks, on the first prediction and again whenever a positive click lands near
    the edge of the encoded box: the network then sees a room-sized piece of a large scan, as
    in training, and every point outside the box reads background.
    """

    def __init__(self, segmenter: Segmenter, points, colors=None, intensity=None,
                 inference: Optional[InferenceConfig] = None):
        self._seg = segmenter
        self._model = segmenter.model
        self.inference = inference or segmenter.inference
        self.rules = inference_rules(self.inference)
        cfg, inf = segmenter.config, self.inference
        t0 = time.perf_counter()
        self.voxels: VoxelizedCloud = voxelize(
            points, colors, intensity, voxel_size=cfg.voxel_size, max_points=inf.max_points,
            max_voxels=inf.max_voxels)
        self._points = np.asarray(points, dtype=np.float64)
        self.focus = float(inf.focus_half_extent or 0.0)
        self._view = None
        if self.focus <= 0:
            self._view = self._encode_view(self.voxels)
        self.encode_ms = (time.perf_counter() - t0) * 1000.0
        self.num_points = self.voxels.num_input_points
        self._book = ClickBook(
            self._points, self.voxels.voxel_of_row(), cfg.max_clicks,
            f' (the click-order encoding has {cfg.max_clicks} entries)')

    @property
    def encoding(self):
        """Return the current EncodedScene (None before the first focused prediction)."""
        return None if self._view is None else self._view.enc

    @property
    def graph(self) -> Optional[NeighbourGraph]:
        """Return the neighbour graph of the current view's voxels (None before one exists)."""
        return None if self._view is None else self._view.graph

    @property
    def view_voxel_of_row(self) -> Optional[np.ndarray]:
        """Return (N,) the current view's voxel of every row, -1 outside it (None: no view)."""
        return None if self._view is None else self._view.voxel_of_row

    @property
    def clicks(self) -> List[ResolvedClick]:
        """Return the click history (resolved), oldest first."""
        return list(self._book.clicks)

    def default_snap_radius(self) -> float:
        """Snap radius used when add_clicks gets none: the inference setting, else 2 voxels."""
        if self.inference.snap_radius is not None:
            return float(self.inference.snap_radius)
        return max(MIN_DEFAULT_SNAP_RADIUS, 2.0 * self._seg.config.voxel_size)

    def add_clicks(self, clicks: Sequence[Click],
                   snap_radius: Optional[float] = None) -> List[int]:
        """Validate and append clicks (all or none); returns their snapped point indices."""
        radius = snap_radius_or_default(snap_radius, self.default_snap_radius())
        return [r.index for r in self._book.add(clicks, radius)]

    def undo(self) -> int:
        """Remove the clicks of the last add_clicks call; returns how many were removed."""
        n = self._book.undo()
        self._forget_focus()
        return n

    def reset(self) -> None:
        """Forget every click (the whole-cloud encoding stays; a focus box is dropped)."""
        self._book.reset()
        self._forget_focus()

    def predict(self, granularity: str = 'both',
                target_objects: Optional[Sequence[int]] = None) -> Prediction:
        """Decode the click history into per-point object and part labels."""
        check_granularity(granularity)
        check_targets(target_objects, self._book.clicks)
        t0 = time.perf_counter()
        if not any(c.positive for c in self._book.clicks):
            n = self.num_points
            return Prediction(np.zeros(n, np.uint32), np.zeros(n, np.uint32), {}, {},
                              (time.perf_counter() - t0) * 1000.0, granularity)
        view, encode_ms = self._focus_view()
        t0 = time.perf_counter()
        labels, out = self._decode(view, granularity, target_objects)
        apply_rules(labels, self.rules)
        return self._scatter(view, labels, out, granularity, encode_ms, t0)

    def voxel_labels(self, target_objects: Optional[Sequence[int]] = None
                     ) -> Optional[Tuple[_EncodedView, np.ndarray, np.ndarray, float]]:
        """
        Return (view, object ids, part ids, encode ms): ``predict('both')`` per view voxel.

        The same labels as ``predict`` before they are scattered to every row, and without the
        scores: what a caller that combines them with its own labels (GeodesicSession) needs.
        None without a positive click (every row reads background then).
        """
        check_targets(target_objects, self._book.clicks)
        if not any(c.positive for c in self._book.clicks):
            return None
        view, encode_ms = self._focus_view()
        labels, _ = self._decode(view, 'both', target_objects)
        apply_rules(labels, self.rules)
        vox_obj, vox_parts = labels.labels()
        return view, vox_obj, vox_parts, encode_ms

    # ------------------------------------------------------------------ the steps of predict
    def _encode_view(self, voxels, box=None):
        with self._autocast():
            return _EncodedView(self._model, voxels, self.inference.graph_gap_voxels(), box,
                                len(self._book.clicks) if box is not None else 0)

    def _focus_view(self):
        """Return (view, encode ms) for the current clicks, re-encoding when they left it."""
        view = self._view
        if self.focus <= 0:
            return view, 0.0
        clicks = self._book.clicks
        pos = self._points[[c.index for c in clicks if c.positive]]
        if view is not None and view.clicks_at_build <= len(clicks):
            lo, hi = view.box
            margin = 0.5 * self.focus
            if np.all(pos >= lo + margin) and np.all(pos <= hi - margin):
                return view, 0.0
        t0 = time.perf_counter()
        lo, hi = focus_box(pos, self.focus, self.voxels.xyz)
        keep = in_box(self.voxels.xyz, lo, hi)
        self._view = self._encode_view(crop_voxels(self.voxels, keep), (lo, hi))
        return self._view, (time.perf_counter() - t0) * 1000.0

    def _decode(self, view, granularity, target_objects) -> Tuple[ViewLabels, DecodeOutput]:
        """Run the decoders on the clicks inside the view; returns the rules' input."""
        # A negative click outside the focus box is already satisfied (everything outside
        # reads background) and is not decoded.
        in_view = [(order, c, int(view.voxel_of_row[c.index]))
                   for order, c in enumerate(self._book.clicks)]
        in_view = [(order, c, v) for order, c, v in in_view if v >= 0]
        vclicks = [VoxelClick(v, c.object_id if c.positive else 0, c.part_id, order,
                              c.positive) for order, c, v in in_view]
        with torch.inference_mode(), self._autocast():
            out = self._model.decode(
                view.enc, vclicks, granularity='object' if granularity == 'object' else 'both',
                part_objects=target_objects, full_part_logits=False,
                object_bias=self.inference.object_logit_bias)
        clicks = [ViewClick(v, c.object_id, c.part_id, c.positive) for _, c, v in in_view]
        labels = ViewLabels(clicks, view.graph, self._seg.config.voxel_size, out.object_ids,
                            out.object_logits, out.part_ids, out.part_logits)
        return labels, out

    def _scatter(self, view, labels, out, granularity, encode_ms, t0) -> Prediction:
        """Voxel labels back to every caller row (rows outside the view read 0)."""
        n = self.num_points
        obj_out = np.zeros(n, dtype=np.uint32)
        part_out = np.zeros(n, dtype=np.uint32)
        vox_obj, vox_parts = labels.labels()
        object_scores, part_scores = decoder_scores(out)
        rows, inv = view.voxels.valid_rows, view.voxels.inverse
        obj_out[rows] = vox_obj[inv]
        if granularity != 'object':
            part_out[rows] = vox_parts[inv]
        return Prediction(obj_out, part_out, object_scores, part_scores,
                          (time.perf_counter() - t0) * 1000.0, granularity, encode_ms)

    def _autocast(self):
        dev = self._seg.device
        return torch.autocast(dev.type, dtype=torch.float16, enabled=dev.type == 'cuda')

    def _forget_focus(self):
        # Labels must depend on the clicks only, not on which box an earlier history left.
        if self.focus > 0 and self._view is not None and \
                self._view.clicks_at_build > len(self._book.clicks):
            self._view = None
