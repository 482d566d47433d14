import math

import pytest
import torch

from inversa.core.errors import InputError
from inversa.core.training import (
    EarlyStopping,
    TrainConfig,
    TrainingDiverged,
    init_distributed,
    load_checkpoint,
    load_weights,
    save_weights,
    train,
)


def _problem(seed: int = 0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=5, gamma=0.5)
    w = torch.tensor([[1.0], [-2.0], [0.5]])

    def loss_fn(step: int):
        g = torch.Generator().manual_seed(100 + step)
        x = torch.randn(16, 3, generator=g)
        # dropout-like noise from the global RNG: resume must restore it too
        noise = 0.01 * torch.randn(16, 1)
        loss = ((model(x) - x @ w - noise) ** 2).mean()
        return loss, {"scale": 2.0 * loss}

    return model, opt, sched, loss_fn


def test_train_decreases_loss_and_logs():
    model, opt, sched, loss_fn = _problem()
    first = float(loss_fn(0)[0].detach())
    res = train(
        model=model,
        optimizer=opt,
        scheduler=sched,
        loss_fn=loss_fn,
        config=TrainConfig(steps=40, log_every=10, progress=False),
    )
    assert res.steps_run == 40 and res.resumed_from == 0
    assert [h["step"] for h in res.history] == [10, 20, 30, 40]
    assert res.history[-1]["scale"] == pytest.approx(2 * res.history[-1]["loss"])
    assert res.final_loss < first


def test_resume_is_identical_to_uninterrupted(tmp_path):
    model_a, opt_a, sched_a, loss_a = _problem()
    torch.manual_seed(7)
    full = train(
        model=model_a,
        optimizer=opt_a,
        scheduler=sched_a,
        loss_fn=loss_a,
        config=TrainConfig(steps=12, log_every=1, progress=False),
    )

    ckpt = tmp_path / "run.pt"
    model_b, opt_b, sched_b, loss_b = _problem()
    torch.manual_seed(7)
    part = train(
        model=model_b,
        optimizer=opt_b,
        scheduler=sched_b,
        loss_fn=loss_b,
        config=TrainConfig(steps=5, log_every=1, checkpoint=ckpt, progress=False),
    )
    assert part.steps_run == 5
    # a fresh process: new objects, different global RNG; the checkpoint restores everything
    model_c, opt_c, sched_c, loss_c = _problem(seed=3)
    torch.manual_seed(999)
    rest = train(
        model=model_c,
        optimizer=opt_c,
        scheduler=sched_c,
        loss_fn=loss_c,
        config=TrainConfig(steps=12, log_every=1, checkpoint=ckpt, progress=False),
    )
    assert rest.resumed_from == 5 and rest.steps_run == 7
    assert [h["loss"] for h in rest.history] == pytest.approx([h["loss"] for h in full.history])
    for p, q in zip(model_a.parameters(), model_c.parameters(), strict=True):
        torch.testing.assert_close(p, q)
    assert load_checkpoint(ckpt)["step"] == 12


def test_divergence_names_step():
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)

    def loss_fn(step: int):
        out = model(torch.ones(1, 2)).sum()
        return out * (math.nan if step == 3 else 1.0)

    with pytest.raises(TrainingDiverged, match="step 4"):
        cfg = TrainConfig(steps=10, progress=False)
        train(model=model, optimizer=opt, loss_fn=loss_fn, config=cfg)


def test_weights_round_trip_and_metadata(tmp_path):
    state = {"a.weight": torch.randn(3, 4), "b": torch.arange(5)}
    path = tmp_path / "m.safetensors"
    save_weights(path, state, metadata={"width": 64, "name": "tiny"})
    loaded, meta = load_weights(path)
    assert meta == {"width": 64, "name": "tiny"}
    assert set(loaded) == set(state)
    for k in state:
        assert torch.equal(loaded[k], state[k])
    with pytest.raises(InputError, match="exists"):
        save_weights(path, state, force=False)


def test_bad_files_are_input_errors(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match=r"bad\.pt"):
        load_checkpoint(bad)
    with pytest.raises(InputError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    with pytest.raises(InputError, match=r"bad\.pt"):
        load_weights(bad)
    # pickled objects beyond tensors and plain values are refused by weights_only loading
    evil = tmp_path / "evil.pt"
    torch.save({"fn": _problem}, evil)
    with pytest.raises(InputError, match=r"evil\.pt"):
        load_checkpoint(evil)


def test_mismatched_checkpoint_is_input_error(tmp_path):
    ckpt = tmp_path / "run.pt"
    model, opt, _, loss_fn = _problem()
    cfg = TrainConfig(steps=2, checkpoint=ckpt, progress=False)
    train(model=model, optimizer=opt, loss_fn=loss_fn, config=cfg)
    other = torch.nn.Linear(5, 5)
    with pytest.raises(InputError, match="does not match"):
        train(
            model=other,
            optimizer=torch.optim.Adam(other.parameters()),
            loss_fn=loss_fn,
            config=TrainConfig(steps=4, checkpoint=ckpt, progress=False),
        )


def test_config_validation_and_single_process():
    with pytest.raises(InputError):
        TrainConfig(steps=-1)
    with pytest.raises(InputError):
        TrainConfig(steps=1, grad_clip=0.0)
    assert init_distributed() == (0, 1)


def _scripted(values: list[float]):
    """A model whose step ``s`` reports ``values[s]`` as its validation loss."""
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    seen: list[int] = []

    def loss_fn(step: int):
        seen.append(step)
        return model(torch.ones(1, 2)).sum() ** 2, {"val": values[step]}

    return model, opt, loss_fn, seen


@pytest.mark.parametrize(
    ("rule", "values", "steps_run"),
    [
        # mean: step 5's 2.0 exceeds the mean of the 3 previous values (1.0, 0.9, 0.95)
        ("mean", [3.0, 2.0, 1.0, 0.9, 0.95, 2.0, 0.1, 0.1], 5),
        # best: 0.5 at step 1 is never beaten; at step 4 it is 3 steps old
        ("best", [1.0, 0.5, 0.6, 0.7, 0.5, 0.1, 0.1, 0.1], 4),
        # steadily improving: never stops
        ("best", [8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0], 8),
    ],
)
def test_early_stopping_rules(rule, values, steps_run):
    model, opt, loss_fn, seen = _scripted(values)
    stop = EarlyStopping(metric="val", patience=3, rule=rule)
    cfg = TrainConfig(steps=8, log_every=1, progress=False, early_stopping=stop)
    before = [p.detach().clone() for p in model.parameters()]
    res = train(model=model, optimizer=opt, loss_fn=loss_fn, config=cfg)
    assert res.steps_run == steps_run and res.stopped_early == (steps_run < 8)
    # the stopping step is evaluated but makes no update
    assert seen == list(range(min(steps_run + 1, 8)))
    assert [h["step"] for h in res.history] == list(range(1, steps_run + 1))
    assert any(not torch.equal(p, q) for p, q in zip(before, model.parameters(), strict=True))


def test_early_stopping_resumes_and_validates(tmp_path):
    values = [3.0, 2.0, 1.0, 0.9, 0.95, 2.0, 0.1, 0.1]
    stop = EarlyStopping(metric="val", patience=3, rule="mean")
    ckpt = tmp_path / "run.pt"
    model, opt, loss_fn, _ = _scripted(values)
    part = TrainConfig(steps=3, progress=False, checkpoint=ckpt, early_stopping=stop)
    train(model=model, optimizer=opt, loss_fn=loss_fn, config=part)
    # the monitored values travel in the checkpoint: the resumed run stops at step 5 too
    model, opt, loss_fn, _ = _scripted(values)
    full = TrainConfig(steps=8, progress=False, checkpoint=ckpt, early_stopping=stop)
    res = train(model=model, optimizer=opt, loss_fn=loss_fn, config=full)
    assert (res.resumed_from, res.steps_run, res.stopped_early) == (3, 2, True)
    assert load_checkpoint(ckpt)["stopped"] is True
    # a finished run stays finished
    model, opt, loss_fn, seen = _scripted(values)
    again = train(model=model, optimizer=opt, loss_fn=loss_fn, config=full)
    assert again.steps_run == 0 and again.stopped_early and seen == []
    with pytest.raises(InputError, match="patience"):
        EarlyStopping(metric="val", patience=0)
    with pytest.raises(InputError, match="no metric 'other'"):
        cfg = TrainConfig(
            steps=2, progress=False, early_stopping=EarlyStopping(metric="other", patience=1)
        )
        train(model=model, optimizer=opt, loss_fn=loss_fn, config=cfg)
