"""The 2D mode-collapse benchmarks: metrics on samples with known answers, each remedy's term
against a hand-computed value, the batched ensemble trainer against the unbatched reference,
the unrolled-GAN gradient against a functional_call reference, and the `ganforge modes` command."""

import copy
import json
import math
from dataclasses import replace

import pytest
import torch

from ganforge.cli import main
from ganforge.modes.bench import mean_se
from ganforge.modes.metrics import mode_stats, reverse_kl
from ganforge.modes.ensemble import (
    adam_lookahead,
    d_apply,
    g_apply,
    generate_ensemble,
    mbstd_batched,
    stack_discriminators,
    stack_generators,
    train_ensemble,
    unrolled_d_params,
)
from ganforge.modes.methods import METHODS, parse_sets
from ganforge.modes.toy import (
    GRID25,
    RING8,
    ToyConfig,
    ToyDiscriminator,
    generate,
    lr_factor,
    mode_seeking_loss,
    pack_samples,
    toy_generator,
    train_toy,
)
from ganforge.nn.layers import MinibatchStdDev

# ----------------------------------------------------------------------------- data


def test_benchmarks_match_pacgan():
    assert len(RING8.means) == 8 and RING8.sigma == 0.01
    assert torch.allclose(RING8.means_tensor().norm(dim=1), torch.ones(8))
    assert len(GRID25.means) == 25 and GRID25.sigma == 0.05
    assert sorted({x for x, _ in GRID25.means}) == [-4.0, -2.0, 0.0, 2.0, 4.0]
    # real data scores as a perfect generator would (3σ holds 98.9% of a 2D Gaussian)
    s = mode_stats(GRID25.sample(2500, torch.Generator().manual_seed(0)), GRID25)
    assert s.modes == 25 and 0.97 < s.hq < 1.0 and s.kl < 0.02


# ----------------------------------------------------------------------------- metrics


@pytest.mark.parametrize("bench", [RING8, GRID25])
def test_samples_at_every_mode(bench):
    x = bench.means_tensor().repeat(100, 1)  # balanced, exactly at the modes
    s = mode_stats(x, bench)
    assert s.modes == len(bench.means) and s.hq == 1.0 and s.kl == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("bench", [RING8, GRID25])
def test_samples_far_away(bench):
    s = mode_stats(torch.full((50, 2), 10.0), bench)
    assert s.modes == 0 and s.hq == 0.0 and s.kl == pytest.approx(math.log(len(bench.means)))


@pytest.mark.parametrize("bench", [RING8, GRID25])
def test_one_mode_only(bench):
    x = bench.means_tensor()[3].repeat(40, 1)
    s = mode_stats(x, bench)
    assert s.modes == 1 and s.hq == 1.0 and s.kl == pytest.approx(math.log(len(bench.means)))


def test_hq_threshold_is_three_sigma():
    m = RING8.means_tensor()[0]
    x = torch.stack([m + torch.tensor([0.0, 2.9 * RING8.sigma]), m + torch.tensor([0.0, 3.1 * RING8.sigma])])
    s = mode_stats(x, RING8)
    assert s.modes == 1 and s.hq == 0.5


def test_reverse_kl_hand_computed():
    # p = (3/4, 1/4, 0) over K = 3 modes: Σ p log(pK), the empty mode contributes 0
    want = 0.75 * math.log(0.75 * 3) + 0.25 * math.log(0.25 * 3)
    assert reverse_kl(torch.tensor([3, 1, 0])) == pytest.approx(want, rel=1e-12)
    # fractional weights (a mean softmax) are normalised the same way; none at all is log K
    assert reverse_kl(torch.tensor([0.75, 0.25, 0.0])) == pytest.approx(want, rel=1e-12)
    assert reverse_kl(torch.tensor([0.3, 0.1, 0.0], dtype=torch.float64)) == pytest.approx(want, rel=1e-12)
    assert reverse_kl(torch.zeros(3)) == pytest.approx(math.log(3))


def test_mean_se():
    m, se = mean_se([1.0, 2.0, 3.0, 4.0])
    assert m == 2.5 and se == pytest.approx(math.sqrt(5 / 3 / 4))
    assert mean_se([7.0]) == (7.0, 0.0)


# ----------------------------------------------------------------------------- remedies


def test_mode_seeking_term_hand_computed():
    x1 = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    x2 = torch.tensor([[1.0, 0.0], [1.0, 3.0]])  # mean |Δx| = (1 + 0 + 0 + 2) / 4 = 0.75
    z1 = torch.zeros(2, 2)
    z2 = torch.tensor([[1.0, 1.0], [0.5, 0.5]])  # mean |Δz| = 0.75
    assert mode_seeking_loss(x1, x2, z1, z2).item() == pytest.approx(1 / (1 + 1e-5))
    # minimising it pushes the two outputs apart
    x2 = x2.clone().requires_grad_(True)
    mode_seeking_loss(x1, x2, z1, z2).backward()
    assert x2.grad[1, 1] < 0  # x2[1,1] = 3 > x1[1,1] = 1: increasing it lowers the loss


def test_packing_reshape():
    x = torch.arange(12.0).view(6, 2)
    assert torch.equal(pack_samples(x, 3), torch.tensor([[0.0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]]))
    D = ToyDiscriminator(width=8, depth=1, pieces=2, pack=3)
    assert D(x).shape == (2,)
    with pytest.raises(ValueError):
        pack_samples(torch.zeros(5, 2), 2)


def test_mbstd_feature_hand_computed():
    # group size 2 over N = 4: sample n is grouped with n ± 2
    x = torch.tensor([[0.0, 0.0], [1.0, 2.0], [2.0, 4.0], [3.0, 2.0]])
    out = MinibatchStdDev(2)(x)
    # rows 0,2: std(0,2)=1, std(0,4)=2 → 1.5;  rows 1,3: std(1,3)=1, std(2,2)=√1e-8 → 0.50005
    assert torch.allclose(out[:, 2], torch.tensor([1.5, 0.50005, 1.5, 0.50005]), atol=1e-6)
    D = ToyDiscriminator(width=8, depth=1, pieces=2, mbstd_group=2)
    assert D.out.in_features == 9 and D(x).shape == (4,)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_trains_a_few_steps(name):
    cfg = METHODS[name].config(steps=3, benchmark="grid25")
    tiny = dict(batch_size=8, g_width=8, g_depth=1, d_width=8, d_depth=1, d_pieces=2)
    x = generate_ensemble(train_ensemble(GRID25, replace(cfg, **tiny), [0, 1]), 16, [1, 2])
    assert x.shape == (2, 16, 2) and torch.isfinite(x).all()


def test_training_is_seeded():
    cfg = ToyConfig(steps=3, batch_size=8, g_width=8, g_depth=1, d_width=8, d_depth=1, d_pieces=2)
    a = generate(train_toy(RING8, cfg, seed=5), 16, seed=0)
    b = generate(train_toy(RING8, cfg, seed=5), 16, seed=0)
    assert torch.equal(a, b)


# ----------------------------------------------------------------------------- CLI


def test_cli_short_run_json(capsys, tmp_path):
    code = main(["modes", "--benchmark", "ring8", "--method", "vanilla", "--trials", "1", "--steps", "50", "--out", str(tmp_path), "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("modes_mean", "modes_se", "hq_mean", "hq_se", "kl_mean", "kl_se", "trials", "method", "benchmark"):
        assert key in out
    assert out["trials"] == 1 and out["method"] == "vanilla" and out["benchmark"] == "ring8"
    assert 0 <= out["modes_mean"] <= 8 and 0.0 <= out["hq_mean"] <= 1.0 and out["kl_mean"] >= 0.0
    assert (tmp_path / "ring8-vanilla.png").stat().st_size > 0


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--benchmark", "ring9"], "unknown benchmark"),
        (["--method", "magic"], "unknown method"),
        (["--trials", "0"], "--trials"),
        (["--steps", "0"], "--steps"),
    ],
)
def test_cli_bad_input(capsys, args, needle):
    assert main(["modes", *args]) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1


def test_best_is_the_measured_recipe_per_benchmark():
    # `best` must be exactly the settings of the 10-trial rows that met the 2D goals
    # (docs/MODE_COLLAPSE.md): best-pack, 20,000 steps, then DRS tuned per benchmark
    pack = METHODS["best-pack"].config(20000)
    assert METHODS["best"].steps == 20000
    assert METHODS["best"].config(20000, "ring8") == replace(pack, drs_steps=3000, drs_percentile=50.0)
    assert METHODS["best"].config(20000, "grid25") == replace(pack, drs_steps=12000)
    assert METHODS["ttur-decay"].config(2000) == ToyConfig(steps=2000, lr_d=4e-4, lr_decay_frac=0.3)
    assert METHODS["ttur-decay"].recipe("ring8") == METHODS["ttur-decay"].recipe("grid25")  # no per-benchmark part


def test_best_defaults_to_its_own_length(monkeypatch, capsys):
    # without --steps, `best` trains its measured 20,000 steps (other methods 2,000); --steps still wins
    import ganforge.modes.bench as bench

    seen = []

    class Stop(Exception):
        pass

    def fake_train(b, cfg, seeds):
        seen.append(cfg)
        raise Stop

    monkeypatch.setattr(bench, "train_ensemble", fake_train)
    for args in (["--method", "best"], ["--method", "best", "--steps", "7"], ["--method", "vanilla"]):
        with pytest.raises(Stop):
            main(["modes", "--benchmark", "grid25", *args, "--trials", "1"])
    assert [c.steps for c in seen] == [20000, 7, 2000]
    assert seen[0].drs_steps == 12000 and seen[0].pack == 2 and seen[2].drs_steps == 0
    assert seen[1].drs_steps == 4  # a shorter run calibrates DRS in proportion: 12,000 * 7 / 20,000
    seen.clear()
    with pytest.raises(Stop):  # unless the calibration length is set
        main(["modes", "--benchmark", "grid25", "--method", "best", "--steps", "7", "--set", "drs_steps=9"])
    assert seen[0].drs_steps == 9


def test_cli_best_json_names_its_recipe(monkeypatch, capsys, tmp_path):
    # a short `best` run through the CLI: DRS on, and the JSON says which recipe ran on this benchmark
    short = replace(METHODS["best"], per_benchmark={"ring8": {"drs_steps": 5, "drs_percentile": 50.0}}, steps=20)
    monkeypatch.setitem(METHODS, "best", short)
    args = ["modes", "--benchmark", "ring8", "--method", "best", "--trials", "1", "--steps", "20"]
    assert main([*args, "--set", "g_width=16", "--set", "d_width=16", "--out", str(tmp_path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["method"] == "best" and out["steps"] == 20 and "before_drs" in out
    assert out["recipe"] == {"lr_d": 4e-4, "lr_decay_frac": 0.3, "pack": 2, "drs_steps": 5, "drs_percentile": 50.0}
    assert out["overrides"] == {"g_width": 16, "d_width": 16}


def test_cli_all_prints_markdown_table(monkeypatch, capsys, tmp_path):
    # `best` calibrates DRS for 3,000 / 12,000 steps; a few are enough to check the table
    short = replace(METHODS["best"], per_benchmark={b: {"drs_steps": 5, "drs_percentile": 50.0} for b in ("ring8", "grid25")})
    monkeypatch.setitem(METHODS, "best", short)
    assert main(["modes", "--all", "--trials", "1", "--steps", "2", "--out", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("| benchmark | method") and len(lines) == 2 + 2 * len(METHODS)
    assert all(line.startswith("| ring8 |") or line.startswith("| grid25 |") for line in lines[2:])


def test_cli_set_and_flags(capsys, tmp_path):
    args = ["modes", "--benchmark", "grid25", "--method", "unrolled", "--trials", "2", "--steps", "2"]
    assert main([*args, "--set", "unroll_steps=1", "--set", "lr_decay_frac=0.5", "--out", str(tmp_path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["overrides"] == {"unroll_steps": 1, "lr_decay_frac": 0.5} and out["steps"] == 2 and out["seconds"] > 0
    for bad, needle in [
        (["--set", "nope=1"], "--set 'nope=1'"),
        (["--set", "pack=two"], "not a valid int"),
        (["--with-stacked-mnist"], "goes with --all"),
        (["--all", "--set", "pack=2"], "without --all"),
        (["--benchmark", "stacked-mnist", "--method", "veegan"], "unknown method 'veegan' for stacked-mnist"),
        (["--benchmark", "stacked-mnist", "--set", "train.nope=1"], "unknown key 'nope'"),
    ]:
        assert main(["modes", *bad]) == 2
        err = capsys.readouterr().err
        assert needle in err and len(err.strip().splitlines()) == 1, (bad, err)


def test_parse_sets_types():
    assert parse_sets(["pack=2", "lr_d=4e-4", "loss=wgan", "steps=1_000"]) == {"pack": 2, "lr_d": 4e-4, "loss": "wgan", "steps": 1000}


# ----------------------------------------------------------------------------- ensemble


TINY = dict(batch_size=8, g_width=16, g_depth=2, d_width=8, d_depth=2, d_pieces=3)


@pytest.fixture
def float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def test_batched_networks_equal_modules(float64):
    torch.manual_seed(0)
    gens = [toy_generator(2, 16, 2) for _ in range(3)]
    ds = [ToyDiscriminator(8, 2, 3, pack=2, mbstd_group=2) for _ in range(3)]
    p, buf = stack_generators(gens)
    pd = stack_discriminators(ds)
    z = torch.randn(3, 12, 2)  # 12 samples → 6 packed D inputs → 3 mbstd groups of 2
    cfg = ToyConfig(**{**TINY, "pack": 2, "mbstd_group": 2})
    out_train = g_apply(p, buf, z, depth=2, train=True)
    logits = d_apply(pd, out_train, cfg)
    for t in range(3):
        assert torch.allclose(out_train[t], gens[t].train()(z[t]), atol=1e-12)
        assert torch.allclose(buf["rv1"][t, 0], gens[t][4].running_var, atol=1e-12)  # running stats updated alike
        assert torch.allclose(logits[t], ds[t](out_train[t]), atol=1e-12)
    out_eval = g_apply(p, buf, z, depth=2, train=False)
    for t in range(3):
        assert torch.allclose(out_eval[t], gens[t].eval()(z[t]), atol=1e-12)
    h = torch.randn(3, 8, 5)
    want = torch.stack([MinibatchStdDev(4)(h[t]) for t in range(3)])
    assert torch.allclose(mbstd_batched(h, 4), want, atol=1e-12)


@pytest.mark.parametrize(
    "over", [{}, {"pack": 2}, {"mbstd_group": 4}, {"msgan_weight": 1.0}, {"r1_gamma": 0.1}, {"lr_d": 4e-4, "lr_decay_frac": 0.5}]
)
def test_batched_trial_equals_unbatched(float64, over):
    # trial t of the ensemble is train_toy(seed t): same init, same data, same updates (to rounding)
    cfg = replace(ToyConfig(steps=6, **TINY), **over)
    ens = train_ensemble(GRID25, cfg, [3, 4])
    xe = generate_ensemble(ens, 32, [7, 8])
    for t, (seed, gseed) in enumerate([(3, 7), (4, 8)]):
        x = generate(train_toy(GRID25, cfg, seed), 32, cfg.z_dim, gseed)
        assert torch.allclose(x, xe[t], rtol=0, atol=1e-9)


def test_batched_float32_matches_to_rounding():
    cfg = ToyConfig(steps=4, **TINY)
    xe = generate_ensemble(train_ensemble(RING8, cfg, [0, 1]), 64, [5, 6])
    x = generate(train_toy(RING8, cfg, 1), 64, cfg.z_dim, 6)
    assert torch.allclose(x, xe[1], rtol=0, atol=1e-4)


def test_lr_factor():
    assert [lr_factor(s, 10, 0.0) for s in (0, 9)] == [1.0, 1.0]
    # decay over the last 40 % of 10 steps: 1 until step 6, then (10 - s) / 4
    assert [lr_factor(s, 10, 0.4) for s in range(5, 10)] == [1.0, 1.0, 0.75, 0.5, 0.25]


# ----------------------------------------------------------------------------- unrolled GAN


def _unrolled_setup():
    """A tiny D after one real Adam step (so Adam has state), a real batch and fake samples."""
    torch.manual_seed(0)
    cfg = ToyConfig(**TINY, unroll_steps=1, lr_d=1e-2)
    D = ToyDiscriminator(cfg.d_width, cfg.d_depth, cfg.d_pieces)
    real, fake = torch.randn(8, 2), torch.randn(8, 2)
    pd = {k: v.requires_grad_(True) for k, v in stack_discriminators([D]).items()}
    opt = torch.optim.Adam(list(pd.values()), lr=cfg.lr_d, betas=(cfg.beta1, cfg.beta2))
    from ganforge.losses import LOSSES

    LOSSES["ns"].d_loss(d_apply(pd, real[None], cfg)[0], d_apply(pd, fake[None], cfg)[0]).backward()
    opt.step()
    return cfg, D, pd, opt, real, fake


def _module_from_stacked(D, p):
    """A copy of D holding trial 0 of stacked parameters p (inverse of stack_discriminators)."""
    D = copy.deepcopy(D)
    with torch.no_grad():
        for i, layer in enumerate(D.body):
            layer.linear.weight.copy_(p[f"m{i}w"][0].t())
            layer.linear.bias.copy_(p[f"m{i}b"][0, 0])
        D.out.weight.copy_(p["ow"][0].t())
        D.out.bias.copy_(p["ob"][0, 0])
    return D


def test_unrolled_gradient_matches_functional_call_reference():
    from torch.func import functional_call

    from ganforge.losses import LOSSES

    cfg, D, pd, opt, real, fake = _unrolled_setup()
    loss = LOSSES["ns"]
    # ours: ∂ g_loss(D_{θ1}(fake)) / ∂ fake with θ1 = one differentiable Adam step
    x = fake[None].clone().requires_grad_(True)
    q = unrolled_d_params(pd, opt, real[None], x, cfg, cfg.lr_d, gens=[])
    (ours,) = torch.autograd.grad(loss.g_loss(d_apply(q, x, cfg)[0]), x)
    # reference: the nn.Module D through functional_call, Adam written out from its paper
    Dm = _module_from_stacked(D, {k: v.detach() for k, v in pd.items()})
    m_mod = _module_from_stacked(D, {k: opt.state[v]["exp_avg"] for k, v in pd.items()})
    v_mod = _module_from_stacked(D, {k: opt.state[v]["exp_avg_sq"] for k, v in pd.items()})
    theta = {k: v.detach().clone().requires_grad_(True) for k, v in Dm.named_parameters()}
    m, v = dict(m_mod.named_parameters()), dict(v_mod.named_parameters())
    y = fake.clone().requires_grad_(True)
    d_loss = loss.d_loss(functional_call(Dm, theta, (real,)), functional_call(Dm, theta, (y,)))
    grads = torch.autograd.grad(d_loss, list(theta.values()), create_graph=True)
    b1, b2, t = cfg.beta1, cfg.beta2, 2  # the look-ahead is Adam's 2nd step
    theta1 = {}
    for (k, w), g in zip(theta.items(), grads):
        m1, v1 = b1 * m[k].detach() + (1 - b1) * g, b2 * v[k].detach() + (1 - b2) * g * g
        theta1[k] = w - cfg.lr_d * (m1 / (1 - b1**t)) / ((v1 / (1 - b2**t) + 1e-24).sqrt() + 1e-8)
    (ref,) = torch.autograd.grad(loss.g_loss(functional_call(Dm, theta1, (y,))), y)
    assert torch.allclose(ours[0], ref, rtol=1e-4, atol=1e-7)


def test_unrolled_gradient_flows_through_the_unrolled_step():
    from ganforge.losses import LOSSES

    cfg, D, pd, opt, real, fake = _unrolled_setup()
    g_loss = LOSSES["ns"].g_loss

    def grad_wrt_fake(k, detach_inside):
        x = fake[None].clone().requires_grad_(True)
        q = unrolled_d_params(pd, opt, real[None], x.detach() if detach_inside else x, replace(cfg, unroll_steps=k), cfg.lr_d, [])
        return torch.autograd.grad(g_loss(d_apply(q, x, cfg)[0]), x)[0]

    # k = 0 is vanilla: θ_D unchanged, the same gradient as the plain G step
    x = fake[None].clone().requires_grad_(True)
    (vanilla,) = torch.autograd.grad(g_loss(d_apply({k: v.detach() for k, v in pd.items()}, x, cfg)[0]), x)
    assert torch.equal(grad_wrt_fake(0, False), vanilla)
    # k = 1: the gradient through ∂θ_D¹/∂fake is a real, non-negligible part of G's signal
    full, direct_only = grad_wrt_fake(1, False), grad_wrt_fake(1, True)
    assert not torch.allclose(full, direct_only, rtol=1e-3, atol=0)
    assert not torch.allclose(direct_only, vanilla, rtol=1e-3, atol=0)  # θ_D moved


def test_unrolled_k0_trains_as_vanilla():
    cfg = ToyConfig(steps=3, **TINY)
    a = generate_ensemble(train_ensemble(RING8, cfg, [0]), 16, [1])
    b = generate_ensemble(train_ensemble(RING8, replace(cfg, unroll_steps=0), [0]), 16, [1])
    assert torch.equal(a, b)
    c = generate_ensemble(train_ensemble(RING8, replace(cfg, unroll_steps=2), [0]), 16, [1])
    assert torch.isfinite(c).all() and not torch.equal(a, c)


def test_adam_lookahead_equals_torch_adam():
    # one look-ahead step from a fresh state equals torch.optim.Adam's first step
    torch.manual_seed(0)
    w = torch.randn(5, 3, requires_grad=True)
    g = torch.randn(5, 3)
    cfg = ToyConfig()
    state = {"m": {"w": torch.zeros(5, 3)}, "v": {"w": torch.zeros(5, 3)}, "step": 0}
    ours = adam_lookahead({"w": w}, (g,), state, 1e-3, cfg, 1)["w"]
    opt = torch.optim.Adam([w], lr=1e-3, betas=(cfg.beta1, cfg.beta2))
    w.grad = g
    opt.step()
    assert torch.allclose(ours, w, rtol=0, atol=1e-9)
