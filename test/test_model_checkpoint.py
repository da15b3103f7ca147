"""Checkpoints: official AGILE3D/PinPoint3D key mapping and the project's own format."""

import os

from pinpoint3d_core.errors import CheckpointError
from pinpoint3d_core.model.checkpoint import (
    _map_official_key, default_checkpoint_candidates, load_checkpoint, load_official_checkpoint,
    load_official_state_dict, save_checkpoint)
from pinpoint3d_core.model.decoder import AttentionBlock
import pytest
import torch


def _official_shapes(with_parts=True):
    """Key -> shape of an official checkpoint, written from the notes' tables (§1.2, §5)."""
    planes, layers, init = (32, 64, 128, 256, 256, 128, 96, 96), (2, 3, 4, 6, 2, 2, 2, 2), 32
    shapes = {}

    def bn(name, c):
        for k in ('weight', 'bias', 'running_mean', 'running_var'):
            shapes[f'{name}.bn.{k}'] = (c,)
        shapes[f'{name}.bn.num_batches_tracked'] = ()

    def blocks(i, cin, cout, n):
        for j in range(n):
            c_in = cin if j == 0 else cout
            shapes[f'backbone.block{i}.{j}.conv1.kernel'] = (27, c_in, cout)
            bn(f'backbone.block{i}.{j}.norm1', cout)
            shapes[f'backbone.block{i}.{j}.conv2.kernel'] = (27, cout, cout)
            bn(f'backbone.block{i}.{j}.norm2', cout)
            if j == 0 and c_in != cout:
                shapes[f'backbone.block{i}.0.downsample.0.kernel'] = (c_in, cout)
                bn(f'backbone.block{i}.0.downsample.1', cout)

    shapes['backbone.conv0p1s1.kernel'] = (125, 3, init)
    bn('backbone.bn0', init)
    enc_in = [32, 32, 64, 128]
    for i in range(4):
        c = enc_in[i]
        shapes[f'backbone.conv{i + 1}p{2 ** i}s2.kernel'] = (8, c, c)
        bn(f'backbone.bn{i + 1}', c)
        blocks(i + 1, c, planes[i], layers[i])
    up_in = [256, 256, 128, 96]
    skip = [128, 64, 32, 32]
    for j in range(4):
        shapes[f'backbone.convtr{j + 4}p{2 ** (4 - j)}s2.kernel'] = (8, up_in[j], planes[4 + j])
        bn(f'backbone.bntr{j + 4}', planes[4 + j])
        blocks(j + 5, planes[4 + j] + skip[j], planes[4 + j], layers[4 + j])
    d = 128
    shapes['lin_squeeze_head.kernel'] = (96, d)
    shapes['lin_squeeze_head.bias'] = (1, d)
    shapes['bg_query_feat.weight'] = (10, d)
    shapes['bg_query_pos.weight'] = (10, d)
    shapes['pos_enc.gauss_B'] = (3, 64)
    shapes['decoder_norm.weight'] = (d,)
    shapes['decoder_norm.bias'] = (d,)
    heads = ['mask_embed_head']
    stacks = [('c2s_attention', 'multihead_attn'), ('c2c_attention', 'self_attn'),
              ('ffn_attention', None), ('s2c_attention', 'multihead_attn')]
    if with_parts:
        heads.append('part_mask_embed_head')
        stacks += [('p_c2o_attention', 'multihead_attn'), ('p_c2c_attention', 'self_attn'),
                   ('p_ffn_attention', None), ('p_o2c_attention', 'multihead_attn')]
        for k in (0, 3):
            shapes[f'adapter.net.{k}.kernel'] = (d, d)
            shapes[f'adapter.net.{k}.bias'] = (1, d)
        bn('adapter.net.1', d)
        shapes['decoder_norm_part.weight'] = (d,)
        shapes['decoder_norm_part.bias'] = (d,)
    for h in heads:
        for k in (0, 2):
            shapes[f'{h}.{k}.weight'] = (d, d)
            shapes[f'{h}.{k}.bias'] = (d,)
    for name, attn in stacks:
        for li in range(3):
            base = f'{name}.{li}.0.'
            if attn is None:
                shapes[base + 'linear1.weight'] = (1024, d)
                shapes[base + 'linear1.bias'] = (1024,)
                shapes[base + 'linear2.weight'] = (d, 1024)
                shapes[base + 'linear2.bias'] = (d,)
            else:
                shapes[base + f'{attn}.in_proj_weight'] = (3 * d, d)
                shapes[base + f'{attn}.in_proj_bias'] = (3 * d,)
                shapes[base + f'{attn}.out_proj.weight'] = (d, d)
                shapes[base + f'{attn}.out_proj.bias'] = (d,)
            shapes[base + 'norm.weight'] = (d,)
            shapes[base + 'norm.bias'] = (d,)
    return shapes


def _synthetic_state(with_parts=True, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, shape in _official_shapes(with_parts).items():
        if k.endswith('num_batches_tracked'):
            out[k] = torch.tensor(7)
        else:
            out[k] = torch.rand(shape, generator=g) + 0.1
    return out


def test_notes_key_counts():
    p, a = _official_shapes(True), _official_shapes(False)
    assert len([k for k in p if k.startswith('backbone.')]) == 372
    assert (len(p), len(a)) == (542, 455)
    count = sum(int(torch.Size(s).numel()) for k, s in p.items()
                if not k.endswith(('running_mean', 'running_var', 'num_batches_tracked',
                                   'gauss_B')))
    assert count == 40_743_712


def test_pinpoint3d_state_dict_loads_completely(minkowski):
    sd = _synthetic_state(True)
    sd['backbone.total_params'] = torch.tensor(1)
    sd['model.total_ops'] = torch.tensor(1)
    model, report = load_official_state_dict({'model': sd, 'epoch': 1099})
    assert report.ok, str(report)
    assert report.source == 'pinpoint3d'
    assert report.missing == []
    assert 'backbone.total_params' in report.ignored
    assert 'decoder_norm_part.weight' in report.ignored
    ours = model.state_dict()
    w = sd['c2s_attention.1.0.multihead_attn.in_proj_weight']
    assert torch.equal(ours['object_layers.1.c2s.q_proj.weight'], w[:128])
    assert torch.equal(ours['object_layers.1.c2s.k_proj.weight'], w[128:256])
    assert torch.equal(ours['object_layers.1.c2s.v_proj.weight'], w[256:])
    assert torch.equal(ours['part_layers.2.s2c.out_proj.bias'],
                       sd['p_o2c_attention.2.0.multihead_attn.out_proj.bias'])
    assert torch.equal(ours['part_layers.0.ffn.linear1.weight'],
                       sd['p_ffn_attention.0.0.linear1.weight'])
    assert torch.equal(ours['squeeze.weight'], sd['lin_squeeze_head.kernel'].t())
    assert torch.equal(ours['adapter.net.3.bias'], sd['adapter.net.3.bias'][0])
    assert torch.equal(ours['adapter.net.1.running_var'], sd['adapter.net.1.bn.running_var'])
    assert torch.equal(ours['backbone.block8.1.conv2.kernel'],
                       sd['backbone.block8.1.conv2.kernel'])
    assert torch.equal(ours['pos_enc.gauss_B'], sd['pos_enc.gauss_B'])
    assert torch.equal(ours['part_mask_embed.layers.2.weight'],
                       sd['part_mask_embed_head.2.weight'])


def test_agile3d_state_dict_reports_part_side_missing(minkowski, tmp_path):
    sd = _synthetic_state(False)
    sd['something_else.weight'] = torch.zeros(3)
    sd['decoder_norm.weight'] = torch.zeros(64)            # wrong shape
    path = tmp_path / 'checkpoint1099.pth'
    torch.save({'model': sd, 'optimizer': {}, 'epoch': 1099}, path)
    model, report = load_official_checkpoint(path)
    assert report.source == 'agile3d'
    assert not report.ok
    assert report.unexpected == ['something_else.weight']
    assert report.shape_mismatch[0][0] == 'decoder_norm.weight'
    assert any(k.startswith('part_layers.') for k in report.missing)
    assert any(k.startswith('adapter.') for k in report.missing)
    assert not any(k.startswith(('backbone.', 'object_layers.')) for k in report.missing)
    assert 'unexpected' in str(report)


def test_official_attention_semantics_match_torch_multihead():
    """Weights mapped from nn.MultiheadAttention give the same post-norm block output."""
    torch.manual_seed(0)
    mha = torch.nn.MultiheadAttention(128, 8)
    norm = torch.nn.LayerNorm(128)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
        mha.in_proj_bias.uniform_(-0.1, 0.1)
    block = AttentionBlock(128, 8)
    mapped = {}
    for k, v in mha.state_dict().items():
        for ours, val in _map_official_key(f'c2s_attention.0.0.multihead_attn.{k}', v):
            mapped[ours.split('c2s.')[1]] = val
    for k, v in norm.state_dict().items():
        mapped['norm.' + k] = v
    block.load_state_dict(mapped)
    q, qpos = torch.randn(7, 128), torch.randn(7, 128)
    src, spos = torch.randn(50, 128), torch.randn(50, 128)
    blocked = torch.rand(7, 50) > 0.6
    blocked[:, 0] = False
    with torch.no_grad():
        ref = norm(q + mha(q + qpos, src + spos, src, attn_mask=blocked)[0])
        got = block(q, qpos, src, spos, mask=~blocked)
    assert torch.allclose(ref, got, atol=1e-5)


def _small_model(seed=0):
    from pinpoint3d_core.model.pinpoint3d import PinPoint3D
    torch.manual_seed(seed)
    return PinPoint3D('small').eval()


def test_project_checkpoint_round_trip_and_errors(minkowski, tmp_path):
    model = _small_model()
    path = save_checkpoint(tmp_path / 'm.pt', model, metadata={'epochs': 3})
    loaded, meta, _ = load_checkpoint(path, expected_config='small')
    assert meta == {'epochs': 3}
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k]), k

    with pytest.raises(CheckpointError, match='does not exist'):
        load_checkpoint(tmp_path / 'nope.pt')
    raw = path.read_bytes()
    trunc = tmp_path / 'trunc.pt'
    trunc.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CheckpointError, match='cannot be read'):
        load_checkpoint(trunc)
    with pytest.raises(CheckpointError, match="expected 'reference'"):
        load_checkpoint(path, expected_config='reference')
    data = torch.load(path, weights_only=True)
    data['config']['d_model'] = 32
    bad = tmp_path / 'bad.pt'
    torch.save(data, bad)
    with pytest.raises(CheckpointError, match='does not match'):
        load_checkpoint(bad)
    official = tmp_path / 'official.pth'
    torch.save({'model': {'x': torch.zeros(1)}}, official)
    with pytest.raises(CheckpointError, match='official'):
        load_checkpoint(official)


def test_default_weights_missing_is_a_clear_error(minkowski, monkeypatch, tmp_path):
    from pinpoint3d_core.session import Segmenter
    import pinpoint3d_core.model.checkpoint as ckpt
    monkeypatch.setenv('PINPOINT3D_WEIGHTS', str(tmp_path / 'absent.pt'))
    # Only the overridden place is searched, whether or not this checkout ships weights.
    monkeypatch.setattr(ckpt, 'default_checkpoint_candidates',
                        lambda name=ckpt.DEFAULT_NAME: default_checkpoint_candidates(name)[:1])
    with pytest.raises(CheckpointError, match='no trained weights'):
        Segmenter.load()
    model = _small_model()
    target = tmp_path / 'absent.pt'
    save_checkpoint(target, model)
    seg = Segmenter.load(device='cpu')
    assert not seg.untrained and seg.config.name == 'small'
    assert os.fspath(target) == seg.source
