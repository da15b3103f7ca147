"""
The PinPoint3D network: ``encode`` once per scene, ``decode`` after every click.

Speed design (docs/model.md): the decoders attend to *tokens*, voxel features mean-pooled on a
coarser grid (capped in number), so per-click work does not grow with the full voxel count
except for one dot product per query at the end; click-independent projections of the tokens
are cached per scene; only the configured layers update scene features, and those updates
reach every voxel through its parent token. With ``token_stride=1`` and no cap (``reference``)
the tokens are the voxels and the computation is the reference one.
"""

import dataclasses
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from pinpoint3d_core.errors import ClickError
from pinpoint3d_core.model.config import get_config
from pinpoint3d_core.model.decoder import (
    DecoderLayer, fuse_max, mask_from_labels, MaskEmbed, segments_of)
from pinpoint3d_core.model.position_encoding import click_order_table, FourierPositionEncoding
import torch
from torch import nn
import torch.nn.functional as F


@dataclasses.dataclass(frozen=True)
class VoxelClick:
    """
    A click at the model level: a voxel index of one encoded scene.

    ``order`` is the click's global position in the session (0-based, < config.max_clicks).
    Positive clicks with ``part_id`` 0 are object-level clicks; with ``part_id`` > 0 they mark
    that part and count for the object too. Negative clicks are background (ids ignored).
    """

    voxel: int
    object_id: int
    part_id: int = 0
    order: int = 0
    positive: bool = True


@dataclasses.dataclass
class EncodedScene:
    """Everything the decoders need from one scene; computed once per scene."""

    features: torch.Tensor            # (V, d) adapted voxel features
    pos: torch.Tensor                 # (V, d) Fourier encoding of voxel positions
    xyz: torch.Tensor                 # (V, 3) representative positions
    lo: torch.Tensor                  # (3,) scene box used for normalisation
    hi: torch.Tensor
    tokens: torch.Tensor              # (T, d) decoder memory (pooled voxels, or the voxels)
    token_pos: torch.Tensor           # (T, d)
    voxel_to_token: Optional[torch.Tensor]  # (V,) long; None when tokens are the voxels
    cache: dict = dataclasses.field(default_factory=dict)

    @property
    def num_voxels(self):
        """Return the number of voxels V."""
        return int(self.features.shape[0])

    @property
    def num_tokens(self):
        """Return the number of decoder memory tokens T."""
        return int(self.tokens.shape[0])


@dataclasses.dataclass
class DecodeOutput:
    """Per-voxel logits of one decode; columns: 0 = background, then ids in the given order."""

    object_ids: List[int]                          # object id of columns 1..K
    object_logits: torch.Tensor                    # (V, 1+K)
    part_ids: Dict[int, List[int]]                 # object id -> part id of columns 1..P
    part_logits: Dict[int, torch.Tensor]           # object id -> (V, 1+P)
    aux_object_logits: List[torch.Tensor]          # earlier object layers, (V, 1+K) each
    aux_part_logits: List[Dict[int, torch.Tensor]]  # earlier part layers
    token_object_logits: torch.Tensor              # (T, 1+K) on decoder tokens (cheap scores)
    token_part_logits: Dict[int, torch.Tensor]     # object id -> (T, 1+P)


class Adapter(nn.Module):
    """Residual bottleneck on the squeezed features: x + s * lin(relu(bn(lin(x))))."""

    def __init__(self, dim, scale):
        super().__init__()
        self.scale = scale
        self.net = nn.Sequential(
            nn.Linear(dim, dim), nn.BatchNorm1d(dim), nn.ReLU(), nn.Linear(dim, dim))
        for idx in (0, 3):
            nn.init.kaiming_uniform_(self.net[idx].weight, a=1)

    def forward(self, x):
        """Apply the adapter."""
        return x + self.scale * self.net(x)


def biased_object_logits(object_logits, bias):
    """
    Return the object logits with ``bias`` added to every object column (not background).

    Inference calibration (``ModelConfig.object_logit_bias``, off by default): on synthetic
    scenes the decoders' masks after few clicks come out tight, and a head start over the
    background queries widens them without retraining; on real LiDAR it over-widens them.
    """
    if not bias:
        return object_logits
    out = object_logits.float().clone()
    out[:, 1:] += bias
    return out


def object_log_probs(object_logits, column):
    """Return (log p(object), log p(not object)) per row for ``gate_by_object``."""
    x = object_logits.float()
    lo = x[:, column] - x.logsumexp(dim=1)
    return lo, torch.log(torch.clamp(-torch.expm1(lo), min=1e-12))


def gate_by_object(part_logits, object_logits, column, obj_lp=None):
    """
    Factor part probabilities through the object: p(part j) = p(object) p(j | object).

    Returns log-probabilities (argmax and cross-entropy work on them as on logits); a point
    the object decoder puts outside the object gets part 0 unless the part is very sure.
    ``obj_lp`` may carry ``object_log_probs(object_logits, column)`` computed once.
    """
    lo, lno = obj_lp if obj_lp is not None else object_log_probs(object_logits, column)
    x = part_logits.float()
    lp = x - x.logsumexp(dim=1, keepdim=True)   # faster than log_softmax for few columns
    bg = torch.logaddexp(lno, lo + lp[:, 0])
    return torch.cat([bg[:, None], lo[:, None] + lp[:, 1:]], dim=1)


def _normalise_by_scene(module, inputs, output):
    """Forward hook: in eval mode, batch-normalise with the scene's own statistics."""
    x = inputs[0]
    if module.training or x.shape[0] < 2:
        return None   # training already uses them; one row has no variance to use
    return F.batch_norm(x, None, None, module.weight, module.bias, True, 0.0, module.eps)


class PinPoint3D(nn.Module):
    """Backbone + adapter + object decoder + part decoder with Targeted Attention Masking."""

    def __init__(self, config='small', build_backbone=True):
        super().__init__()
        cfg = get_config(config)
        self.config = cfg
        d = cfg.d_model
        if build_backbone:
            from pinpoint3d_core.model.backbone import Res16UNet
            self.backbone = Res16UNet(cfg)
        else:
            self.backbone = None
        self.squeeze = nn.Linear(cfg.planes[7], d)
        self.adapter = Adapter(d, cfg.adapter_scale)
        self.pos_enc = FourierPositionEncoding(d, cfg.gauss_scale)
        self.register_buffer('click_order', click_order_table(cfg.max_clicks, d),
                             persistent=False)
        self.bg_query_feat = nn.Embedding(cfg.num_bg_queries, d)
        self.bg_query_pos = nn.Embedding(cfg.num_bg_queries, d)
        self.object_layers = nn.ModuleList(
            DecoderLayer(d, cfg.n_heads, cfg.ffn_dim, i in cfg.s2c_object_layers)
            for i in range(cfg.num_object_layers))
        self.part_layers = nn.ModuleList(
            DecoderLayer(d, cfg.n_heads, cfg.ffn_dim, i in cfg.s2c_part_layers)
            for i in range(cfg.num_part_layers))
        self.decoder_norm = nn.LayerNorm(d)   # shared by both mask heads, as in the reference
        self.object_mask_embed = MaskEmbed(d)
        self.part_mask_embed = MaskEmbed(d)
        self.backbone_calls = 0               # lets tests check the backbone runs once a scene
        if cfg.scene_norm_stats:
            for module in self.modules():
                if isinstance(module, nn.BatchNorm1d):
                    module.register_forward_hook(_normalise_by_scene)

    @property
    def device(self):
        """Device of the parameters."""
        return self.squeeze.weight.device

    # ------------------------------------------------------------------ encode (once a scene)
    def encode(self, clouds):
        """Run backbone, squeeze and adapter on one VoxelizedCloud or a list (one batch)."""
        from pinpoint3d_core.model.backbone import backbone_features
        single = not isinstance(clouds, (list, tuple))
        clouds = [clouds] if single else list(clouds)
        if self.backbone is None:
            raise RuntimeError('this PinPoint3D was built without a backbone')
        self.backbone_calls += 1
        feats = backbone_features(
            self.backbone, [c.coords for c in clouds], [c.features for c in clouds],
            self.device)
        squeezed = self.adapter(self.squeeze(torch.cat(feats)))
        parts = torch.split(squeezed, [c.num_voxels for c in clouds])
        out = [self.encode_features(p, c.xyz, c.coords) for p, c in zip(parts, clouds)]
        return out[0] if single else out

    def encode_features(self, features, xyz, coords):
        """Build an EncodedScene from (V, d) adapted features, (V, 3) xyz and int coords."""
        dev = features.device
        xyz = torch.as_tensor(np.asarray(xyz), dtype=torch.float32, device=dev)
        lo, hi = xyz.min(dim=0).values, xyz.max(dim=0).values
        pos = self.pos_enc(xyz, lo, hi).to(features.dtype)
        cfg = self.config
        if cfg.token_stride <= 1 and cfg.max_tokens is None:
            return EncodedScene(features, pos, xyz, lo, hi, features, pos, None)
        grid = torch.as_tensor(np.asarray(coords), dtype=torch.int64, device=dev)
        grid = grid - grid.min(dim=0).values
        stride = max(1, cfg.token_stride)
        while True:
            cell = torch.div(grid, stride, rounding_mode='floor')
            key = (cell[:, 0] * (int(cell[:, 1].max()) + 1) + cell[:, 1]) * (
                int(cell[:, 2].max()) + 1) + cell[:, 2]
            uniq, v2t = torch.unique(key, return_inverse=True)
            if cfg.max_tokens is None or len(uniq) <= cfg.max_tokens:
                break
            stride += 1
        t = len(uniq)
        counts = torch.zeros(t, device=dev).index_add_(
            0, v2t, torch.ones_like(v2t, dtype=torch.float32))
        tokens = torch.zeros(t, features.shape[1], device=dev, dtype=features.dtype)
        tokens = tokens.index_add(0, v2t, features) / counts[:, None].to(features.dtype)
        txyz = torch.zeros(t, 3, device=dev).index_add_(0, v2t, xyz) / counts[:, None]
        tpos = self.pos_enc(txyz, lo, hi).to(features.dtype)
        return EncodedScene(features, pos, xyz, lo, hi, tokens, tpos, v2t)

    # ------------------------------------------------------------------ decode (every click)
    def _cached(self, enc, key, fn):
        # Only under no_grad: a cached tensor must never carry a graph into another step.
        if torch.is_grad_enabled():
            return fn()
        if key not in enc.cache:
            enc.cache[key] = fn()
        return enc.cache[key]

    def _voxel_logits(self, enc, scene, emb, groups, num_groups, segments, rows=None):
        """
        Fused per-voxel logits; updates of pooled tokens reach voxels via their token.

        features @ emb + ((scene - tokens) @ emb)[token of voxel] equals using updated voxel
        features, with a (T, Q) instead of a (V, d) intermediate. Without gradients the voxels
        are processed in chunks so memory stays bounded for very large scenes.
        """
        v2t = enc.voxel_to_token
        src = enc.features if v2t is not None else scene
        delta = None if v2t is None else (scene - enc.tokens) @ emb.T
        n = enc.num_voxels if rows is None else int(rows.shape[0])
        if n == 0:
            return emb.new_zeros((0, num_groups))
        chunk = n if torch.is_grad_enabled() else 1 << 17
        outs = []
        for s in range(0, n, chunk):
            if rows is None:
                x = src[s:s + chunk] @ emb.T
                tok = None if v2t is None else v2t[s:s + chunk]
            else:
                idx = rows[s:s + chunk]
                x = src.index_select(0, idx) @ emb.T
                tok = None if v2t is None else v2t.index_select(0, idx)
            if delta is not None:
                x = x + delta.index_select(0, tok)
            outs.append(fuse_max(x, groups, num_groups, segments))
        return outs[0] if len(outs) == 1 else torch.cat(outs)

    def check_clicks(self, clicks, num_voxels):
        """Raise ClickError for clicks the decoder cannot use."""
        limit = self.config.max_clicks
        for i, c in enumerate(clicks):
            if not 0 <= c.voxel < num_voxels:
                raise ClickError(f'click {i}: voxel {c.voxel} is outside 0..{num_voxels - 1}')
            if not 0 <= c.order < limit:
                raise ClickError(
                    f'click {i}: click order {c.order} exceeds what the click-order encoding '
                    f'supports ({limit} clicks per scene); reset the session')
            if c.positive and c.object_id <= 0:
                raise ClickError(
                    f'click {i}: a positive click needs an object_id >= 1 (got {c.object_id}); '
                    'use positive=False for background')
            if c.part_id < 0:
                raise ClickError(f'click {i}: part_id must be >= 0, got {c.part_id}')

    def decode(self, enc: EncodedScene, clicks: Sequence[VoxelClick], granularity: str = 'both',
               aux: bool = False, part_objects: Optional[Sequence[int]] = None,
               full_part_logits: bool = True, object_bias: float = 0.0) -> DecodeOutput:
        """
        Decode the whole click history; returns DecodeOutput with per-voxel logits.

        Three stages: the object layers, then per target object the part layers (Targeted
        Attention Masking), each closed by its mask head. ``part_objects`` limits the part
        decoder to some object ids (default: every object with part clicks). ``aux`` adds the
        earlier layers' logits. ``full_part_logits=False`` (interactive use) computes part
        logits only on voxels the object logits assign to that object; other rows read
        (0, -inf, ...) = no part. ``object_bias`` (inference calibration,
        ``biased_object_logits``) is added to the object columns once, before the part decoder
        reads object membership; ``object_logits`` in the output carry it.
        """
        self.check_clicks(clicks, enc.num_voxels)
        q = self._click_queries(enc, clicks)
        obj = self._object_stage(enc, q, aux)
        member = biased_object_logits(obj.voxel_logits, object_bias)
        out = DecodeOutput(q.object_ids, member, {}, {}, obj.aux_logits, [],
                           obj.final.token_logits, {})
        if granularity == 'object':
            return out
        if aux:
            out.aux_part_logits = [{} for _ in range(len(self.part_layers) - 1)]
        targets = self._part_targets(q, part_objects)
        rows = None
        if targets and not full_part_logits:
            rows = self._clicked_object_labels(q, member)
        for k in targets:
            part_rows = None if rows is None else torch.nonzero(rows == q.columns[k]).view(-1)
            self._part_stage(enc, q, obj, k, member, part_rows, aux, out)
        return out

    def _click_queries(self, enc: EncodedScene, clicks: Sequence[VoxelClick]) -> 'ClickQueries':
        """Order the clicks (objects' positive clicks, then negatives) and build the queries."""
        fg = sorted((c for c in clicks if c.positive), key=lambda c: (c.object_id, c.order))
        bg = sorted((c for c in clicks if not c.positive), key=lambda c: c.order)
        object_ids = sorted({c.object_id for c in fg})
        col = {k: i + 1 for i, k in enumerate(object_ids)}
        dev = enc.features.device
        click_list = fg + bg
        vox = torch.tensor([c.voxel for c in click_list], dtype=torch.long, device=dev)
        order = torch.tensor([c.order for c in click_list], dtype=torch.long, device=dev)
        c_feat = enc.features[vox]
        c_pos = enc.pos[vox] + self.click_order[order].to(enc.pos.dtype)
        nfg, nbg = len(fg), self.config.num_bg_queries
        features = torch.cat([c_feat[:nfg], self.bg_query_feat.weight, c_feat[nfg:]])
        pos = torch.cat([c_pos[:nfg], self.bg_query_pos.weight, c_pos[nfg:]])
        groups = torch.tensor([col[c.object_id] for c in fg] + [0] * (nbg + len(bg)),
                              dtype=torch.long, device=dev)
        return ClickQueries(fg, bg, object_ids, col, vox, features, pos, groups,
                            segments_of(groups))

    def _object_stage(self, enc: EncodedScene, q: 'ClickQueries', aux: bool) -> 'ObjectStage':
        """Run the object layers from the click queries; per-voxel logits of the last one."""
        head = MaskHead(self.object_mask_embed, self.decoder_norm, q.groups, q.segments,
                        q.num_columns)
        layers = self._run_layers(self.object_layers, enc, 'obj', q.features, q.pos,
                                  enc.tokens, True, None, head)
        final = layers[-1]
        aux_logits = []
        if aux:
            aux_logits = [self._voxel_logits(enc, st.scene, st.embeddings, q.groups,
                                             q.num_columns, q.segments) for st in layers[:-1]]
        logits = self._voxel_logits(enc, final.scene, final.embeddings, q.groups,
                                    q.num_columns, q.segments)
        return ObjectStage(layers, logits, aux_logits)

    def _clicked_object_labels(self, q: 'ClickQueries', member: torch.Tensor) -> torch.Tensor:
        """Per-voxel object column; clicked voxels count as their clicked object."""
        labels = member.argmax(dim=1)
        labels[q.voxels[:q.num_fg]] = q.groups[:q.num_fg]
        labels[q.voxels[q.num_fg:]] = 0
        return labels

    def _part_targets(self, q: 'ClickQueries', part_objects) -> List[int]:
        """Objects the part decoder runs for: those with part clicks (within ``part_objects``)."""
        targets = sorted({c.object_id for c in q.fg if c.part_id > 0})
        if part_objects is None:
            return targets
        unknown = sorted(set(part_objects) - set(q.object_ids))
        if unknown:
            raise ClickError(f'object ids {unknown} have no clicks in this session')
        return [k for k in targets if k in set(part_objects)]

    def _part_queries(self, q: 'ClickQueries', obj: 'ObjectStage', k: int) -> 'PartQueries':
        """Object k's part-decoder queries: its part clicks, refined background, the rest."""
        fg, nfg = q.fg, q.num_fg
        idx_k = [i for i, c in enumerate(fg) if c.object_id == k]
        parts = sorted({fg[i].part_id for i in idx_k if fg[i].part_id > 0})
        pcol = {p: j + 1 for j, p in enumerate(parts)}
        in_part = sorted((i for i in idx_k if fg[i].part_id > 0),
                         key=lambda i: (fg[i].part_id, fg[i].order))
        no_part = [i for i in idx_k if fg[i].part_id == 0]
        dev = q.features.device
        src = obj.final.queries if self.config.part_queries_from_refined else q.features
        sel = torch.tensor(in_part, dtype=torch.long, device=dev)
        sel0 = torch.tensor(no_part, dtype=torch.long, device=dev)
        refined_bg = obj.final.queries[nfg:]
        features = torch.cat([src[sel], refined_bg, src[sel0]])
        pos = torch.cat([q.pos[sel], q.pos[nfg:], q.pos[sel0]])
        groups = torch.tensor([pcol[fg[i].part_id] for i in in_part]
                              + [0] * (len(refined_bg) + len(no_part)),
                              dtype=torch.long, device=dev)
        own = q.voxels[torch.tensor(idx_k, dtype=torch.long, device=dev)]
        return PartQueries(parts, features, pos, groups, segments_of(groups), own)

    def _target_region(self, enc: EncodedScene, q: 'ClickQueries', obj: 'ObjectStage', k: int,
                       pq: 'PartQueries') -> Tuple[torch.Tensor, torch.Tensor,
                                                   Optional[torch.Tensor]]:
        """
        Targeted Attention Masking: (object tokens, first mask, later-layer region).

        Part rows see the object, background rows the rest; the object's own clicked
        positions are inside it whatever the object decoder says.
        """
        tok_labels = obj.final.token_logits.argmax(dim=1)
        inside = tok_labels == q.columns[k]
        v2t = enc.voxel_to_token
        inside[pq.own_voxels if v2t is None else v2t[pq.own_voxels]] = True
        is_part_row = (pq.groups > 0).view(-1, 1)
        region = torch.where(is_part_row, inside.view(1, -1), ~inside.view(1, -1))
        first = mask_from_labels(torch.zeros_like(tok_labels), torch.zeros_like(pq.groups),
                                 region=region)
        later = None
        if self.config.tam_all_layers:
            later = torch.where(is_part_row, inside.view(1, -1), torch.ones_like(region))
        return inside, first, later

    def _part_stage(self, enc: EncodedScene, q: 'ClickQueries', obj: 'ObjectStage', k: int,
                    member: torch.Tensor, rows: Optional[torch.Tensor], aux: bool,
                    out: DecodeOutput) -> None:
        """Run object k's part layers; writes its part logits (and aux) into ``out``."""
        cfg = self.config
        pq = self._part_queries(q, obj, k)
        inside, first, later = self._target_region(enc, q, obj, k, pq)
        column = q.columns[k]
        gate = None
        if cfg.gate_parts_by_object:
            gate = (obj.final.token_logits, column,
                    object_log_probs(obj.final.token_logits, column))
        head = MaskHead(self.part_mask_embed, self.decoder_norm, pq.groups, pq.segments,
                        1 + len(pq.parts), later, first if cfg.tam_all_layers else None, gate)
        from_obj = cfg.part_scene_from_object
        scene0 = obj.final.scene if from_obj else enc.tokens
        scene_rows = torch.nonzero(inside).view(-1) if cfg.part_s2c_inside_only else None
        layers = self._run_layers(self.part_layers, enc, 'part', pq.features, pq.pos, scene0,
                                  not from_obj, first, head, scene_rows)
        if aux:
            for li, st in enumerate(layers[:-1]):
                out.aux_part_logits[li][k] = self._part_voxel_logits(
                    enc, st, pq, member, column, rows)
        out.part_ids[k] = pq.parts
        out.part_logits[k] = self._part_voxel_logits(enc, layers[-1], pq, member, column, rows)
        out.token_part_logits[k] = layers[-1].token_logits

    def _static_projections(self, enc: EncodedScene, tag: str, li: int, layer: DecoderLayer):
        """Return the (cached) click-free projections of the encoder's tokens for layer ``li``."""
        kv = self._cached(enc, (tag, 'c2s_kv', li),
                          lambda: layer.c2s.project_kv(enc.tokens, enc.token_pos))
        s2c_q = None
        if layer.scene_update:
            s2c_q = self._cached(enc, (tag, 's2c_q', li),
                                 lambda: layer.s2c.project_query(enc.tokens, enc.token_pos))
        return kv, s2c_q

    def _run_layers(self, layers, enc: EncodedScene, tag: str, queries: torch.Tensor,
                    qpos: torch.Tensor, scene: torch.Tensor, static: bool,
                    mask: Optional[torch.Tensor], head: 'MaskHead',
                    scene_rows: Optional[torch.Tensor] = None) -> List['LayerOutput']:
        """
        Run one decoder stack; returns every layer's output.

        ``static``: the scene is still the encoder's tokens, so their projections come from
        the per-scene cache until a layer updates the scene.
        """
        outputs = []
        for li, layer in enumerate(layers):
            kv = s2c_q = None
            if static:
                kv, s2c_q = self._static_projections(enc, tag, li, layer)
            queries, scene = layer(queries, qpos, scene, enc.token_pos, mask, kv, s2c_q,
                                   scene_rows)
            static = static and not layer.scene_update
            emb, logits, mask = head(queries, scene, li + 1 < len(layers))
            outputs.append(LayerOutput(queries, scene, emb, logits))
        return outputs

    def _part_voxel_logits(self, enc: EncodedScene, layer: 'LayerOutput', pq: 'PartQueries',
                           object_logits: torch.Tensor, column: int,
                           rows: Optional[torch.Tensor]) -> torch.Tensor:
        """Per-voxel part logits of one layer; rows outside ``rows`` read 'no part'."""
        num_parts = len(pq.parts)
        logits = self._voxel_logits(enc, layer.scene, layer.embeddings, pq.groups,
                                    1 + num_parts, pq.segments, rows)
        if self.config.gate_parts_by_object:
            obj = object_logits if rows is None else object_logits[rows]
            logits = gate_by_object(logits, obj, column)
        if rows is None:
            return logits
        full = logits.new_full((enc.num_voxels, 1 + num_parts), float('-inf'))
        full[:, 0] = 0.0
        full[rows] = logits
        return full


@dataclasses.dataclass
class ClickQueries:
    """Decoder input built from the clicks: objects' positive clicks first, then negatives."""

    fg: List[VoxelClick]              # positive clicks, by (object id, order)
    bg: List[VoxelClick]              # negative clicks, by order
    object_ids: List[int]             # object of columns 1..K
    columns: Dict[int, int]           # object id -> column
    voxels: torch.Tensor              # (C,) voxel of each click, fg then bg
    features: torch.Tensor            # (Q, d) initial queries: fg, background queries, bg
    pos: torch.Tensor                 # (Q, d)
    groups: torch.Tensor              # (Q,) column of each query (0 = background)
    segments: Optional[dict]          # contiguous query ranges per column (segments_of)

    @property
    def num_fg(self) -> int:
        """Return the number of positive clicks."""
        return len(self.fg)

    @property
    def num_columns(self) -> int:
        """Return 1 + K (background and one column per object)."""
        return 1 + len(self.object_ids)


@dataclasses.dataclass
class PartQueries:
    """Decoder input of one object's part stage."""

    parts: List[int]                  # part id of columns 1..P
    features: torch.Tensor            # (Q, d): part clicks, refined background, no-part clicks
    pos: torch.Tensor                 # (Q, d)
    groups: torch.Tensor              # (Q,) part column of each query (0 = not a part)
    segments: Optional[dict]
    own_voxels: torch.Tensor          # voxels of the object's positive clicks


@dataclasses.dataclass
class LayerOutput:
    """One decoder layer's result."""

    queries: torch.Tensor             # (Q, d) refined queries
    scene: torch.Tensor               # (T, d) scene tokens after this layer
    embeddings: torch.Tensor          # (Q, d) mask embeddings
    token_logits: torch.Tensor        # (T, columns) fused per-token logits


@dataclasses.dataclass
class ObjectStage:
    """The object layers' outputs and the per-voxel logits of the last one."""

    layers: List[LayerOutput]
    voxel_logits: torch.Tensor        # (V, 1+K) raw
    aux_logits: List[torch.Tensor]    # earlier layers (only with aux)

    @property
    def final(self) -> LayerOutput:
        """Return the last layer's output."""
        return self.layers[-1]


@dataclasses.dataclass
class MaskHead:
    """
    Turns a layer's queries into token logits and the next layer's attention mask.

    ``region``/``fallback`` restrict the part stage's mask (Targeted Attention Masking);
    ``gate`` = (object token logits, column, their log-probs) factors parts through the object.
    """

    embed: nn.Module
    norm: nn.Module
    groups: torch.Tensor
    segments: Optional[dict]
    num_columns: int
    region: Optional[torch.Tensor] = None
    fallback: Optional[torch.Tensor] = None
    gate: Optional[tuple] = None

    def __call__(self, queries: torch.Tensor, scene: torch.Tensor, next_layer: bool = True):
        """Return (mask embeddings (Q, d), token logits (T, C), next mask (Q, T) or None)."""
        emb = self.embed(self.norm(queries))
        logits = fuse_max(scene @ emb.T, self.groups, self.num_columns, self.segments)
        if self.gate is not None:
            logits = gate_by_object(logits, *self.gate)
        if not next_layer:               # the last layer's mask would have no reader
            return emb, logits, None
        mask = mask_from_labels(logits.argmax(dim=1), self.groups, region=self.region,
                                fallback=self.fallback)
        return emb, logits, mask
