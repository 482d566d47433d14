import dataclasses

import pytest
import torch
import torch.nn.functional as F

from inversa.core.errors import InputError
from inversa.seislm import (
    CONFIGS,
    FinetuneConfig,
    PretrainConfig,
    SeisLM,
    SeisLMPicker,
    SyntheticConfig,
    compute_mask,
    finetune,
    grouped_conv_fft,
    load_picker,
    pretrain,
    pretraining_loss,
    sample_negatives,
    save_picker,
    synthetic_events,
)

# smaller than "tiny" so that tests stay fast: 1 layer, 8 negatives
MICRO = dataclasses.replace(
    CONFIGS["tiny"],
    conv_channels=16,
    hidden=16,
    layers=1,
    heads=2,
    ffn=32,
    pos_kernel=8,
    pos_groups=4,
    entries=16,
    codevector_dim=16,
    proj_dim=16,
    negatives=8,
    mask_span=4,
)


def test_base_has_about_12m_parameters():
    n = sum(p.numel() for p in SeisLM(CONFIGS["base"]).parameters())
    assert 11.0e6 < n < 12.5e6
    assert CONFIGS["base"].frames(3001) == 749


@pytest.mark.parametrize(
    "k,groups,ch,t", [(128, 16, 32, 75), (8, 4, 16, 33), (5, 1, 4, 9), (4, 2, 6, 3)]
)
def test_fft_grouped_conv_matches_conv1d(k, groups, ch, t):
    g = torch.Generator().manual_seed(k)
    x = torch.randn(2, ch, t, generator=g, dtype=torch.float64)
    w = torch.randn(ch, ch // groups, k, generator=g, dtype=torch.float64)
    b = torch.randn(ch, generator=g, dtype=torch.float64)
    ref = F.conv1d(x, w, b, padding=k // 2, groups=groups)[..., :t]
    assert torch.allclose(grouped_conv_fft(x, w, b, groups=groups), ref, atol=1e-10)


def test_mask_spans_and_negatives():
    g = torch.Generator().manual_seed(0)
    mask = compute_mask(4, 200, prob=0.65, span=10, generator=g)
    frac = mask.float().mean()
    assert 0.35 < frac < 0.65  # 1 - exp(-0.65) ~ 0.48 with overlapping spans
    # every run of masked frames is at least one span long
    d = torch.diff(
        mask.int(),
        dim=1,
        prepend=torch.zeros(4, 1, dtype=torch.int),
        append=torch.zeros(4, 1, dtype=torch.int),
    )
    for r in range(4):
        starts, ends = (d[r] == 1).nonzero()[:, 0], (d[r] == -1).nonzero()[:, 0]
        assert ((ends - starts) >= 10).all()
    neg = sample_negatives(mask, negatives=30, generator=g)
    rank = (mask.cumsum(1) - 1)[mask]
    counts = mask.sum(1)[mask.nonzero()[:, 0]]
    assert neg.shape == (int(mask.sum()), 30)
    assert (neg != rank[:, None]).all() and (neg >= 0).all() and (neg < counts[:, None]).all()


def test_pretraining_loss_is_finite_and_reaches_every_parameter():
    torch.manual_seed(0)
    model = SeisLM(MICRO)
    x = torch.randn(3, 3, 401)
    loss, metrics = pretraining_loss(model, x, step=0, generator=torch.Generator().manual_seed(0))
    loss.backward()
    assert torch.isfinite(loss) and 0 <= metrics["accuracy"] <= 1
    assert 1 <= metrics["perplexity"] <= MICRO.groups * MICRO.entries
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    # with K negatives and random features the loss starts near log(1 + K)
    assert abs(metrics["contrastive"] - torch.log(torch.tensor(9.0))) < 1.0


def _reference_loss(model, x, *, step, generator):
    """The pretraining loss written plainly: every frame through every block, dense
    one-hot straight-through codes, each frame's candidates gathered and dotted."""
    c, q = model.config, model.quantizer
    b, t = x.shape[0], c.frames(x.shape[-1])
    mask = compute_mask(b, t, prob=c.mask_prob, span=c.mask_span, generator=generator)
    neg = sample_negatives(mask, negatives=c.negatives, generator=generator)
    hidden, feats = model(x, mask, with_features=True)
    f = feats[mask]
    n = f.shape[0]
    logits = q.weight_proj(f).view(n * q.groups, q.entries)
    u = torch.rand(logits.shape, generator=generator).to(logits.dtype)
    gumbel = -torch.log(-torch.log(u.clamp(1e-10, 1.0 - 1e-7)))
    soft = F.softmax((logits + gumbel) / c.gumbel_temperature(step), dim=-1)
    hard = F.one_hot(soft.argmax(-1), q.entries).to(soft.dtype)
    probs = (hard - soft.detach() + soft).view(n, q.groups, q.entries)
    book = q.codevectors.view(q.groups, q.entries, -1)
    codes = torch.einsum("ngv,gvd->ngd", probs, book).reshape(n, -1)
    avg = F.softmax(logits.float(), dim=-1).view(n, q.groups, q.entries).mean(0)
    perplexity = torch.exp(-(avg * torch.log(avg + 1e-7)).sum(-1)).sum()
    idx = soft.argmax(-1).view(n, q.groups)
    targets = F.normalize(model.project_q(codes), dim=-1)
    preds = F.normalize(model.project_hid(hidden[mask]), dim=-1)
    row, rank = mask.nonzero()[:, 0], (mask.cumsum(1) - 1)[mask]
    first = mask.sum(1).cumsum(0) - mask.sum(1)  # each window's first masked frame
    cand = first[row][:, None] + torch.cat([rank[:, None], neg], dim=1)  # (n, 1 + K)
    scores = (preds[:, None] * targets[cand]).sum(-1) / c.temperature
    same = (idx[cand] == idx[:, None]).all(-1)
    same[:, 0] = False
    scores = scores.masked_fill(same, float("-inf"))
    contrastive = F.cross_entropy(scores, torch.zeros(n, dtype=torch.long))
    n_codes = c.groups * c.entries
    return contrastive + c.diversity_weight * (n_codes - perplexity) / n_codes


def test_pretraining_loss_equals_the_plain_formulation():
    # the fast loss (last block on masked frames only, hand-written quantiser backward,
    # similarities gathered from one batched product) is the same function
    cfg = dataclasses.replace(MICRO, dropout=0.0, layers=2)
    torch.manual_seed(0)
    model = SeisLM(cfg).double().train()
    x = torch.randn(3, 3, 401, dtype=torch.float64)
    losses, grads = [], []
    for fn in (pretraining_loss, _reference_loss):
        model.zero_grad()
        out = fn(model, x, step=5, generator=torch.Generator().manual_seed(3))
        loss = out[0] if isinstance(out, tuple) else out
        loss.backward()
        losses.append(loss.item())
        grads.append([p.grad.clone() for p in model.parameters()])
    assert abs(losses[0] - losses[1]) <= 1e-5 * abs(losses[1])
    for fast, ref in zip(*grads, strict=True):
        # the perplexity is taken in float32 (as wav2vec2) in both
        assert torch.allclose(fast, ref, rtol=1e-4, atol=1e-6)


def test_selected_frames_equal_the_full_output():
    torch.manual_seed(1)
    model = SeisLM(dataclasses.replace(MICRO, layers=2)).eval()
    x = torch.randn(2, 3, 401)
    mask = compute_mask(2, MICRO.frames(401), prob=0.5, span=4, generator=torch.Generator())
    select = torch.tensor([[0, 5, 7, 40], [3, 3, 45, 1]])
    full = model(x, mask)
    part = model(x, mask, select=select)
    assert part.shape == (2, 4, MICRO.hidden)
    assert torch.allclose(
        part, full.gather(1, select[..., None].expand(-1, -1, MICRO.hidden)), atol=1e-5
    )


def test_dropout_rate_scale_and_eval_identity():
    drop = SeisLM(MICRO).dropout.train()
    x = torch.rand(200, 1000) + 1.0
    y = drop(x)
    kept = y != 0
    assert abs(1 - kept.float().mean().item() - MICRO.dropout) < 0.005
    assert torch.allclose(y[kept], x[kept] / (1 - MICRO.dropout))
    assert torch.equal(drop.eval()(x), x)


def test_quantizer_codes_come_from_codebooks():
    q = SeisLM(MICRO).quantizer.eval()
    codes, _, idx = q(torch.randn(7, MICRO.conv_channels), tau=1.0)
    book = q.codevectors.view(MICRO.groups, MICRO.entries, -1)
    expect = torch.cat([book[g, idx[:, g]] for g in range(MICRO.groups)], dim=1)
    assert torch.equal(codes, expect) and idx.shape == (7, MICRO.groups)


def test_pretrain_resumes_identically_and_picker_round_trip(tmp_path, monkeypatch):
    import inversa.seislm._train as tr

    data = synthetic_events(8, config=SyntheticConfig(samples=401), seed=0)
    cfg = PretrainConfig(steps=4, batch_size=2, samples=301, warmup=1, checkpoint_every=2)
    full, _ = pretrain(data, model_config=MICRO, config=cfg)
    ck = tmp_path / "ck.pt"
    real = tr.pretraining_loss

    def crash_at_3(model, x, *, step, generator):
        if step == 3:
            raise KeyboardInterrupt
        return real(model, x, step=step, generator=generator)

    monkeypatch.setattr(tr, "pretraining_loss", crash_at_3)
    with pytest.raises(KeyboardInterrupt):
        pretrain(data, model_config=MICRO, config=cfg, checkpoint=ck)
    monkeypatch.setattr(tr, "pretraining_loss", real)
    resumed, res = pretrain(data, model_config=MICRO, config=cfg, checkpoint=ck)
    assert res.resumed_from == 2
    for a, b in zip(full.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.allclose(a, b, atol=1e-6)
    picker, result = finetune(
        data,
        model_config=MICRO,
        encoder=full.state_dict(),
        config=FinetuneConfig(steps=2, batch_size=2, samples=301, warmup=1),
    )
    assert result.steps_run == 2
    # fine-tuning started from the pretrained encoder, not from a fresh one
    assert not torch.equal(
        picker.encoder.feature_projection.weight, SeisLM(MICRO).feature_projection.weight
    )
    out = tmp_path / "p.safetensors"
    save_picker(out, picker)
    back = load_picker(out)
    x = torch.randn(2, 3, 301)
    assert torch.allclose(back(x), picker(x)) and back(x).shape == (2, 4, 301)
    with pytest.raises(InputError):
        load_picker(tmp_path / "missing.safetensors")
    with pytest.raises(InputError, match="pretrained weights do not match"):
        finetune(
            data,
            model_config=CONFIGS["tiny"],
            encoder=full.state_dict(),
            config=FinetuneConfig(steps=1),
        )


def test_picker_rejects_wrong_shape():
    with pytest.raises(InputError, match="batch, 3, samples"):
        SeisLMPicker(MICRO)(torch.randn(2, 2, 100))
