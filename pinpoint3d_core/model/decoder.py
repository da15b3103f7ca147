"""
Click-attention decoder blocks, mask head and max-fusion (dense PyTorch).

Attention uses ``scaled_dot_product_attention`` on batch-first (heads, length, head_dim)
tensors with separate q/k/v projections; official ``nn.MultiheadAttention`` weights map onto
them (``in_proj_weight`` split in three, see checkpoint.py). Boolean masks use SDPA's meaning:
True = may attend.
"""

import torch
from torch import nn
import torch.nn.functional as F


class AttentionBlock(nn.Module):
    """Post-norm residual attention: ``LN(x + out(attn(q(x+pos), k(src+src_pos), v(src))))``."""

    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)
        self.norm = nn.LayerNorm(dim)
        for lin in (self.q_proj, self.k_proj, self.v_proj, self.out_proj):
            nn.init.xavier_uniform_(lin.weight)
            nn.init.zeros_(lin.bias)

    def project_query(self, x, pos):
        """Query projection; cacheable when x and pos do not depend on the clicks."""
        return self.q_proj(x + pos)

    def project_kv(self, src, src_pos):
        """Key and value projections; cacheable when src does not depend on the clicks."""
        return self.k_proj(src + src_pos), self.v_proj(src)

    def forward(self, x, pos, src, src_pos, mask=None, q=None, kv=None):
        """Attend from x (L, d) to src (S, d); mask (L, S) bool, True = allowed."""
        if q is None:
            q = self.project_query(x, pos)
        k, v = kv if kv is not None else self.project_kv(src, src_pos)
        h = self.heads
        d = q.shape[-1] // h
        # 4-D (1, heads, length, dim) inputs and an additive float mask take SDPA's fused CPU
        # kernel; 3-D inputs or boolean masks fall back to a slower path.
        qh = q.view(1, q.shape[0], h, d).transpose(1, 2)
        kh = k.view(1, k.shape[0], h, d).transpose(1, 2)
        vh = v.view(1, v.shape[0], h, d).transpose(1, 2)
        attn_mask = None
        if mask is not None:
            attn_mask = torch.zeros(mask.shape, dtype=q.dtype, device=q.device)
            attn_mask.masked_fill_(~mask, float('-inf'))
            attn_mask = attn_mask.view(1, 1, *mask.shape)
        out = F.scaled_dot_product_attention(qh, kh, vh, attn_mask=attn_mask)
        out = out.transpose(1, 2).reshape(q.shape[0], h * d)
        return self.norm(x + self.out_proj(out))


class FeedForward(nn.Module):
    """Post-norm residual MLP on the queries."""

    def __init__(self, dim, hidden):
        super().__init__()
        self.linear1 = nn.Linear(dim, hidden)
        self.linear2 = nn.Linear(hidden, dim)
        self.norm = nn.LayerNorm(dim)
        for lin in (self.linear1, self.linear2):
            nn.init.xavier_uniform_(lin.weight)
            nn.init.zeros_(lin.bias)

    def forward(self, x):
        """Apply the residual MLP."""
        return self.norm(x + self.linear2(F.relu(self.linear1(x))))


class DecoderLayer(nn.Module):
    """C2S (queries read the scene) -> C2C -> FFN -> optional S2C (scene reads the queries)."""

    def __init__(self, dim, heads, ffn_dim, scene_update):
        super().__init__()
        self.c2s = AttentionBlock(dim, heads)
        self.c2c = AttentionBlock(dim, heads)
        self.ffn = FeedForward(dim, ffn_dim)
        self.s2c = AttentionBlock(dim, heads)
        # The S2C weights always exist (official checkpoints have them) but only run here.
        self.scene_update = scene_update

    def forward(self, queries, query_pos, scene, scene_pos, mask, c2s_kv=None, s2c_q=None,
                scene_rows=None):
        """
        Return updated (queries, scene); the caches apply only to a click-free scene.

        ``scene_rows`` (long indices) limits the scene update to those rows.
        """
        queries = self.c2s(queries, query_pos, scene, scene_pos, mask=mask, kv=c2s_kv)
        queries = self.c2c(queries, query_pos, queries, query_pos)
        queries = self.ffn(queries)
        if self.scene_update:
            if scene_rows is None:
                scene = self.s2c(scene, scene_pos, queries, query_pos, q=s2c_q)
            else:
                sub_q = None if s2c_q is None else s2c_q[scene_rows]
                updated = self.s2c(scene[scene_rows], scene_pos[scene_rows], queries, query_pos,
                                   q=sub_q)
                scene = scene.index_copy(0, scene_rows, updated)
        return queries, scene


class MaskEmbed(nn.Module):
    """Two-layer MLP turning normalised queries into mask embeddings."""

    def __init__(self, dim):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim))

    def forward(self, x):
        """Return (Q, d) mask embeddings."""
        return self.layers(x)


def segments_of(groups):
    """Return [(start, end)] per column when each group's queries are contiguous, else None."""
    g = groups.tolist()
    segs = {}
    for i, col in enumerate(g):
        if col in segs:
            if segs[col][1] != i:
                return None
            segs[col][1] = i + 1
        else:
            segs[col] = [i, i + 1]
    return segs


def fuse_max(logits, groups, num_groups, segments=None):
    """
    Max-fuse (S, Q) per-query logits into (S, num_groups) per-group logits.

    ``groups`` (Q,) long gives each query's column; every column must own a query. With
    contiguous ``segments`` (from ``segments_of``) slices replace the slower scatter.
    """
    if segments is not None and len(segments) == num_groups:
        cols = [logits[:, segments[c][0]:segments[c][1]].amax(dim=1)
                for c in range(num_groups)]
        return torch.stack(cols, dim=1)
    s = logits.shape[0]
    out = logits.new_full((s, num_groups), float('-inf'))
    index = groups.view(1, -1).expand(s, -1)
    return out.scatter_reduce(1, index, logits, reduce='amax', include_self=False)


def mask_from_labels(labels, query_groups, region=None, fallback=None):
    """
    Attention mask (Q, S): a query may attend where the label equals its group.

    ``region`` (Q, S) optionally restricts it further (AND). A row left with nothing allowed
    takes its ``fallback`` row, and if that is empty too it is opened completely, as in the
    reference, so that attention stays defined.
    """
    mask = query_groups.view(-1, 1) == labels.view(1, -1)
    if region is not None:
        mask = mask & region
    empty = ~mask.any(dim=1)
    if empty.any():
        if fallback is not None:
            mask[empty] = fallback[empty]
            empty = ~mask.any(dim=1)
        mask[empty] = True
    return mask
