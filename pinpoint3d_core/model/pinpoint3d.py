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
from typing import Dict, List, Optional

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

    def decode(self, enc, clicks, granularity='both', aux=False, part_objects=None,
               full_part_logits=True, object_bias=0.0):
        """
        Decode the whole click history; returns DecodeOutput with per-voxel logits.

        ``part_objects`` limits the part decoder to some object ids (default: every object
        with part clicks, one part-decoder pass each). ``aux`` adds the earlier layers' logits.
        ``full_part_logits=False`` (interactive use) computes part logits only on voxels the
        object logits assign to that object; other rows read (0, -inf, ...) = no part.
        ``object_bias`` (inference calibration, ``biased_object_logits``) is added to the
        object columns wherever the part decoder reads object membership, so parts cover the
        widened masks; ``object_logits`` in the output stay raw.
        """
        self.check_clicks(clicks, enc.num_voxels)
        dev = enc.features.device
        cfg = self.config
        fg = sorted((c for c in clicks if c.positive), key=lambda c: (c.object_id, c.order))
        bg = sorted((c for c in clicks if not c.positive), key=lambda c: c.order)
        object_ids = sorted({c.object_id for c in fg})
        col = {k: i + 1 for i, k in enumerate(object_ids)}
        click_list = fg + bg
        vox = torch.tensor([c.voxel for c in click_list], dtype=torch.long, device=dev)
        order = torch.tensor([c.order for c in click_list], dtype=torch.long, device=dev)
        c_feat = enc.features[vox]
        c_pos = enc.pos[vox] + self.click_order[order].to(enc.pos.dtype)
        nfg, nbg = len(fg), cfg.num_bg_queries
        q0 = torch.cat([c_feat[:nfg], self.bg_query_feat.weight, c_feat[nfg:]])
        qpos = torch.cat([c_pos[:nfg], self.bg_query_pos.weight, c_pos[nfg:]])
        groups = torch.tensor([col[c.object_id] for c in fg] + [0] * (nbg + len(bg)),
                              dtype=torch.long, device=dev)
        ncols = 1 + len(object_ids)

        segs = segments_of(groups)
        steps, _ = self._run_layers(
            self.object_layers, enc, 'obj', q0, qpos, enc.tokens, True, None,
            (groups, segs, ncols, None, None, None))
        queries, scene, emb, tok_logits = steps[-1]
        aux_obj = []
        if aux:
            for _, sc, em, _ in steps[:-1]:
                aux_obj.append(self._voxel_logits(enc, sc, em, groups, ncols, segs))
        object_logits = self._voxel_logits(enc, scene, emb, groups, ncols, segs)
        out = DecodeOutput(object_ids, object_logits, {}, {}, aux_obj, [], tok_logits, {})
        if granularity == 'object':
            return out
        member_logits = biased_object_logits(object_logits, object_bias)

        obj_final_scene = scene
        tok_obj_labels = tok_logits.argmax(dim=1)
        vox_obj_labels = None
        targets = sorted({c.object_id for c in fg if c.part_id > 0})
        if part_objects is not None:
            unknown = sorted(set(part_objects) - set(object_ids))
            if unknown:
                raise ClickError(f'object ids {unknown} have no clicks in this session')
            targets = [k for k in targets if k in set(part_objects)]
        aux_parts = [{} for _ in range(len(self.part_layers) - 1)] if aux else []
        refined_bg = queries[nfg:]
        for k in targets:
            idx_k = [i for i, c in enumerate(fg) if c.object_id == k]
            parts = sorted({fg[i].part_id for i in idx_k if fg[i].part_id > 0})
            pcol = {p: j + 1 for j, p in enumerate(parts)}
            in_part = sorted((i for i in idx_k if fg[i].part_id > 0),
                             key=lambda i: (fg[i].part_id, fg[i].order))
            no_part = [i for i in idx_k if fg[i].part_id == 0]
            src = queries if cfg.part_queries_from_refined else q0
            sel = torch.tensor(in_part, dtype=torch.long, device=dev)
            sel0 = torch.tensor(no_part, dtype=torch.long, device=dev)
            pq = torch.cat([src[sel], refined_bg, src[sel0]])
            ppos = torch.cat([qpos[sel], qpos[nfg:], qpos[sel0]])
            pgroups = torch.tensor([pcol[fg[i].part_id] for i in in_part]
                                   + [0] * (len(refined_bg) + len(no_part)),
                                   dtype=torch.long, device=dev)
            psegs = segments_of(pgroups)
            inside = tok_obj_labels == col[k]
            # The object's own clicked positions are inside it whatever the decoder says.
            own = vox[torch.tensor(idx_k, dtype=torch.long, device=dev)]
            inside[own if enc.voxel_to_token is None else enc.voxel_to_token[own]] = True
            is_part_row = (pgroups > 0).view(-1, 1)
            # Targeted Attention Masking: part rows see the object, background rows the rest.
            region = torch.where(is_part_row, inside.view(1, -1), ~inside.view(1, -1))
            first = mask_from_labels(torch.zeros_like(tok_obj_labels),
                                     torch.zeros_like(pgroups), region=region)
            tam = None
            if cfg.tam_all_layers:
                tam = torch.where(is_part_row, inside.view(1, -1), torch.ones_like(region))
            from_obj = cfg.part_scene_from_object
            pscene0 = obj_final_scene if from_obj else enc.tokens
            scene_rows = None
            if cfg.part_s2c_inside_only:
                scene_rows = torch.nonzero(inside).view(-1)
            steps, _ = self._run_layers(
                self.part_layers, enc, 'part', pq, ppos, pscene0, not from_obj, first,
                (pgroups, psegs, 1 + len(parts), tam, tok_logits, col[k]), scene_rows)
            rows = None
            if not full_part_logits:
                if vox_obj_labels is None:
                    vox_obj_labels = member_logits.argmax(dim=1)
                    # Clicked voxels count as their clicked object (callers override them).
                    vox_obj_labels[vox[:nfg]] = groups[:nfg]
                    vox_obj_labels[vox[nfg:]] = 0
                rows = torch.nonzero(vox_obj_labels == col[k]).view(-1)
            for li, (_, psc, pem, _) in enumerate(steps[:-1]):
                if aux:
                    aux_parts[li][k] = self._part_voxel_logits(
                        enc, psc, pem, pgroups, len(parts), psegs, member_logits, col[k], rows)
            _, psc, pem, ptok = steps[-1]
            out.part_ids[k] = parts
            out.part_logits[k] = self._part_voxel_logits(
                enc, psc, pem, pgroups, len(parts), psegs, member_logits, col[k], rows)
            out.token_part_logits[k] = ptok
        out.aux_part_logits = aux_parts
        return out

    def _run_layers(self, layers, enc, tag, queries, qpos, scene, static, mask, heads,
                    scene_rows=None):
        """
        Run one decoder stack; returns per-layer (queries, scene, emb, token logits).

        ``heads`` = (groups, segments, columns, TAM region, object token logits, object
        column); the last three are None for the object stack.
        """
        cfg = self.config
        steps = []
        first = mask
        obj_lp = None
        for li, layer in enumerate(layers):
            kv = s2c_q = None
            if static:
                kv = self._cached(enc, (tag, 'c2s_kv', li),
                                  lambda: layer.c2s.project_kv(enc.tokens, enc.token_pos))
                if layer.scene_update:
                    s2c_q = self._cached(
                        enc, (tag, 's2c_q', li),
                        lambda: layer.s2c.project_query(enc.tokens, enc.token_pos))
            queries, scene = layer(queries, qpos, scene, enc.token_pos, mask, kv, s2c_q,
                                   scene_rows)
            static = static and not layer.scene_update
            groups, segs, ncols, tam, obj_tok, column = heads
            if obj_tok is not None and cfg.gate_parts_by_object and obj_lp is None:
                obj_lp = object_log_probs(obj_tok, column)
            if obj_tok is None:
                emb = self.object_mask_embed(self.decoder_norm(queries))
                logits = fuse_max(scene @ emb.T, groups, ncols, segs)
                mask = mask_from_labels(logits.argmax(dim=1), groups)
            else:
                emb = self.part_mask_embed(self.decoder_norm(queries))
                logits = fuse_max(scene @ emb.T, groups, ncols, segs)
                if cfg.gate_parts_by_object:
                    logits = gate_by_object(logits, obj_tok, column, obj_lp)
                mask = mask_from_labels(logits.argmax(dim=1), groups, region=tam,
                                        fallback=first if cfg.tam_all_layers else None)
            steps.append((queries, scene, emb, logits))
        return steps, mask

    def _part_voxel_logits(self, enc, pscene, pemb, pgroups, num_parts, psegs, object_logits,
                           column, rows):
        logits = self._voxel_logits(enc, pscene, pemb, pgroups, 1 + num_parts, psegs, rows)
        if self.config.gate_parts_by_object:
            obj = object_logits if rows is None else object_logits[rows]
            logits = gate_by_object(logits, obj, column)
        if rows is None:
            return logits
        full = logits.new_full((enc.num_voxels, 1 + num_parts), float('-inf'))
        full[:, 0] = 0.0
        full[rows] = logits
        return full
