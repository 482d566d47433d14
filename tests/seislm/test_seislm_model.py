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
