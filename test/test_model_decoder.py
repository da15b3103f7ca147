"""Dense parts of the model: encodings, decoder, fusion, TAM, gating, caching (no backbone)."""

import numpy as np
from pinpoint3d_core.errors import ClickError
from pinpoint3d_core.model.config import get_config
from pinpoint3d_core.model.decoder import fuse_max, mask_from_labels, segments_of
from pinpoint3d_core.model.pinpoint3d import gate_by_object, PinPoint3D, VoxelClick
from pinpoint3d_core.model.position_encoding import click_order_table, FourierPositionEncoding
from pinpoint3d_core.model.voxelize import voxelize
import pytest
import torch


def _scene(model, n=3000, seed=0):
    rng = np.random.default_rng(seed)
    pts = rng.uniform(0, [3.0, 2.0, 1.0], (n, 3))
    vox = voxelize(pts, voxel_size=model.config.voxel_size)
    g = torch.Generator().manual_seed(seed)
    feats = torch.randn(vox.num_voxels, model.config.planes[7], generator=g)
    with torch.no_grad():
        enc = model.encode_features(model.adapter(model.squeeze(feats)), vox.xyz, vox.coords)
    return vox, enc


def _model(config='small', seed=0, **changes):
    torch.manual_seed(seed)
    cfg = get_config(config).replace(**changes) if changes else get_config(config)
    return PinPoint3D(cfg, build_backbone=False).eval()


CLICKS = [VoxelClick(10, 1, 1, 0), VoxelClick(20, 1, 2, 1), VoxelClick(30, 2, 0, 2),
          VoxelClick(40, 0, 0, 3, positive=False), VoxelClick(50, 2, 5, 4),
          VoxelClick(60, 1, 1, 5)]


@pytest.mark.parametrize('config', ['small', 'reference'])
def test_decode_shapes_and_column_order(config):
    model = _model(config)
    vox, enc = _scene(model, 1500)
    with torch.no_grad():
        out = model.decode(enc, CLICKS, aux=True)
    v = vox.num_voxels
    assert out.object_ids == [1, 2]
    assert out.object_logits.shape == (v, 3)
    assert out.part_ids == {1: [1, 2], 2: [5]}
    assert out.part_logits[1].shape == (v, 3) and out.part_logits[2].shape == (v, 2)
    assert len(out.aux_object_logits) == model.config.num_object_layers - 1
    assert len(out.aux_part_logits) == model.config.num_part_layers - 1
    assert set(out.aux_part_logits[0]) == {1, 2}
    assert torch.isfinite(out.object_logits).all()


def test_object_only_decode_skips_parts():
    model = _model()
    _, enc = _scene(model)
    with torch.no_grad():
        out = model.decode(enc, CLICKS, granularity='object')
    assert out.part_logits == {}


def test_fuse_max_equals_per_group_max():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(50, 7, generator=g)
    groups = torch.tensor([1, 1, 2, 0, 0, 0, 2])
    expect = torch.stack([logits[:, groups == c].max(dim=1).values for c in range(3)], 1)
    assert torch.equal(fuse_max(logits, groups, 3), expect)
    contiguous = torch.tensor([1, 1, 2, 2, 0, 0, 0])
    assert segments_of(groups) is None
    segs = segments_of(contiguous)
    expect2 = torch.stack([logits[:, contiguous == c].max(dim=1).values for c in range(3)], 1)
    assert torch.equal(fuse_max(logits, contiguous, 3, segs), expect2)


def test_voxel_logits_equal_token_logits_without_pooling():
    model = _model('reference')          # tokens are the voxels themselves
    _, enc = _scene(model, 1000)
    clicks = [VoxelClick(5, 1, 0, 0), VoxelClick(6, 1, 0, 1), VoxelClick(7, 2, 0, 2)]
    with torch.no_grad():
        out = model.decode(enc, clicks, granularity='object')
    assert enc.voxel_to_token is None
    assert torch.allclose(out.object_logits, out.token_object_logits, atol=1e-5)


def test_mask_from_labels_semantics():
    labels = torch.tensor([0, 1, 1, 2, 0])
    groups = torch.tensor([1, 2, 0, 3])        # group 3 owns no position
    m = mask_from_labels(labels, groups)
    assert m[0].tolist() == [False, True, True, False, False]
    assert m[1].tolist() == [False, False, False, True, False]
    assert m[2].tolist() == [True, False, False, False, True]
    assert m[3].all()                          # empty row opened completely
    region = torch.tensor([[True, True, False, True, True]] * 4)
    fb = torch.tensor([[False, True, True, False, False]] * 4)
    m2 = mask_from_labels(labels, groups, region=region, fallback=fb)
    assert m2[0].tolist() == [False, True, False, False, False]
    assert m2[3].tolist() == fb[3].tolist()


def _record_part_masks(model):
    records = []

    def hook(module, args, kwargs):
        records.append({'args': args, 'kwargs': dict(kwargs)})
    handles = [layer.c2s.register_forward_pre_hook(hook, with_kwargs=True)
               for layer in model.part_layers]
    return records, handles


@pytest.mark.parametrize('tam_all', [True, False])
def test_tam_part_queries_only_see_the_object(tam_all):
    model = _model(tam_all_layers=tam_all)
    _, enc = _scene(model, 4000)
    clicks = [VoxelClick(10, 1, 1, 0), VoxelClick(11, 1, 2, 1), VoxelClick(500, 0, 0, 2, False)]
    records, handles = _record_part_masks(model)
    with torch.no_grad():
        out = model.decode(enc, clicks)
        obj_labels = out.token_object_logits.argmax(dim=1)
    for h in handles:
        h.remove()
    inside = obj_labels == 1
    inside[enc.voxel_to_token[[10, 11]]] = True          # the object's clicks are inside it
    assert 0 < int(inside.sum()) < enc.num_tokens
    n_part_rows = 2
    checked = records if tam_all else records[:1]
    for rec in checked:
        mask = rec['kwargs']['mask']
        assert not mask[:n_part_rows][:, ~inside].any(), 'part query attends outside the object'
    first = records[0]['kwargs']['mask']
    assert not first[n_part_rows:][:, inside].any(), 'background query attends inside'

    # Perturbing scene features outside the object leaves the part rows' cross-attention
    # output unchanged; perturbing inside changes it.
    rec = records[0]
    layer = model.part_layers[0].c2s
    x, pos, src, src_pos = rec['args']
    mask = rec['kwargs']['mask']
    with torch.no_grad():
        base = layer(x, pos, src, src_pos, mask=mask)[:n_part_rows]
        noisy_out = src.clone()
        noisy_out[~inside] += 5.0 * torch.randn_like(noisy_out[~inside])
        same = layer(x, pos, noisy_out, src_pos, mask=mask)[:n_part_rows]
        noisy_in = src.clone()
        noisy_in[inside] += 5.0 * torch.randn_like(noisy_in[inside])
        diff = layer(x, pos, noisy_in, src_pos, mask=mask)[:n_part_rows]
    assert torch.allclose(base, same, atol=1e-5)
    assert not torch.allclose(base, diff, atol=1e-3)


def test_gating_gives_normalised_log_probs_and_blocks_outside():
    g = torch.Generator().manual_seed(0)
    part = torch.randn(6, 4, generator=g)
    obj = torch.randn(6, 3, generator=g)
    obj[0] = torch.tensor([30.0, -30.0, -30.0])      # row 0 surely background
    part[0] = torch.tensor([-20.0, 20.0, 0.0, 0.0])    # though the part head says part 1
    gated = gate_by_object(part, obj, column=1)
    assert torch.allclose(gated.logsumexp(dim=1), torch.zeros(6), atol=1e-5)
    assert int(gated[0].argmax()) == 0


def test_cached_projections_match_uncached():
    model = _model()
    _, enc = _scene(model)
    with torch.no_grad():
        first = model.decode(enc, CLICKS)
        cached = model.decode(enc, CLICKS)
    assert enc.cache, 'no-grad decoding should cache click-free projections'
    fresh = model.decode(enc, CLICKS)                  # grad enabled: no cache used
    assert torch.equal(first.object_logits, cached.object_logits)
    assert torch.allclose(first.object_logits, fresh.object_logits, atol=1e-5)
    assert torch.allclose(first.part_logits[1], fresh.part_logits[1], atol=1e-5)


def test_decode_is_differentiable():
    model = _model()
    model.train()
    _, enc = _scene(model)
    out = model.decode(enc, CLICKS, aux=True)
    loss = out.object_logits.logsumexp(1).mean() + sum(
        v.logsumexp(1).mean() for v in out.part_logits.values())
    loss.backward()
    assert model.part_layers[0].c2s.q_proj.weight.grad is not None
    assert model.bg_query_feat.weight.grad is not None


def test_token_pooling_and_voxel_logits_match_explicit_features():
    model = _model()
    vox, enc = _scene(model, 6000)
    assert enc.voxel_to_token is not None and enc.num_tokens < vox.num_voxels
    # Tokens are the mean of their voxels' features.
    t = int(enc.voxel_to_token[0])
    members = enc.voxel_to_token == t
    assert torch.allclose(enc.tokens[t], enc.features[members].mean(0), atol=1e-5)
    g = torch.Generator().manual_seed(3)
    scene = enc.tokens + torch.randn(enc.tokens.shape, generator=g)
    emb = torch.randn(5, enc.tokens.shape[1], generator=g)
    groups = torch.tensor([1, 1, 0, 0, 0])
    with torch.no_grad():
        got = model._voxel_logits(enc, scene, emb, groups, 2, segments_of(groups))
    explicit = enc.features + (scene - enc.tokens)[enc.voxel_to_token]
    assert torch.allclose(got, fuse_max(explicit @ emb.T, groups, 2), atol=1e-4)


def test_determinism_same_seed_same_output():
    outs = []
    for _ in range(2):
        model = _model(seed=7)
        _, enc = _scene(model)
        with torch.no_grad():
            outs.append(model.decode(enc, CLICKS))
    assert torch.equal(outs[0].object_logits, outs[1].object_logits)
    assert torch.equal(outs[0].part_logits[2], outs[1].part_logits[2])


def test_click_validation_at_model_level():
    model = _model()
    vox, enc = _scene(model, 500)
    limit = model.config.max_clicks
    with pytest.raises(ClickError, match='click-order'):
        model.decode(enc, [VoxelClick(1, 1, 0, limit)])
    with pytest.raises(ClickError, match='outside'):
        model.decode(enc, [VoxelClick(vox.num_voxels, 1, 0, 0)])
    with pytest.raises(ClickError, match='object_id'):
        model.decode(enc, [VoxelClick(1, 0, 0, 0, True)])
    with pytest.raises(ClickError, match='no clicks'):
        model.decode(enc, [VoxelClick(1, 1, 1, 0)], part_objects=[9])


def test_encodings():
    pe = FourierPositionEncoding(64)
    assert pe.gauss_B.shape == (3, 32)
    xyz = torch.rand(100, 3) * 5
    out = pe(xyz, xyz.min(0).values, xyz.max(0).values)
    assert out.shape == (100, 64) and out.abs().max() <= 1.0 + 1e-6
    # Normalisation per scene: translating and scaling the scene changes nothing.
    moved = xyz * 2 + 7
    out2 = pe(moved, moved.min(0).values, moved.max(0).values)
    assert torch.allclose(out, out2, atol=1e-4)
    table = click_order_table(200, 128)
    assert table.shape == (200, 128)
    assert torch.allclose(table[3, 0], torch.sin(torch.tensor(3.0)))
    assert torch.allclose(table[3, 1], torch.cos(torch.tensor(3.0)))
    model = _model()
    assert 'pos_enc.gauss_B' in model.state_dict()
    assert 'click_order' not in model.state_dict()
