"""An audit of the GAN algorithms against their papers' reference code: R1 and the gradient penalty
per packed sample (PacGAN), the gradient penalty on inputs of any rank, DiffAugment against an
independent transcription of the authors' PyTorch code, EMA over several warm-up updates, and the
settings that the simultaneous (Keras) update would silently drop."""

import pytest
import torch
import torch.nn.functional as F

from ganforge.config import apply_overrides
from ganforge.errors import UsageError
from ganforge.losses import LOSSES, gradient_penalty, r1_penalty
from ganforge.models import ModelConfig, build_discriminator
from ganforge.presets import get_preset
from ganforge.training.augment import make_augment
from ganforge.training.ema import EMA
from ganforge.training.objective import Objective, check_update_supports, objective_notes
from test_cli_outputs import run_cli

# ----------------------------------------------------------------------------- R1 / GP with packing


def _packed_grad_norm_sq(D, x: torch.Tensor, pack: int) -> torch.Tensor:
    """Reference: |∇ D(packed)|² per packed sample, differentiating w.r.t. the packed tensor itself
    (N/pack, pack*C, R, R), i.e. the input D's first layer sees."""
    n, c, r = x.shape[0], x.shape[1], x.shape[2]
    packed = x.detach().reshape(n // pack, pack * c, r, r).requires_grad_(True)
    (g,) = torch.autograd.grad(D.head(D.features(packed)).sum(), packed)
    return g.pow(2).flatten(1).sum(1)  # (N/pack,)


def test_r1_is_taken_per_packed_sample_like_the_gradient_penalty():
    torch.manual_seed(0)
    D = build_discriminator(ModelConfig(arch="mlp", resolution=4, d_width=4, pack=2)).double()
    real = torch.randn(6, 1, 4, 4, dtype=torch.float64)
    want = _packed_grad_norm_sq(D, real, 2).mean()
    assert r1_penalty(D, real, pack=2).item() == pytest.approx(want.item(), rel=1e-10)
    # the per-image mean (what r1_penalty gave before packing was honoured) is half of it
    assert r1_penalty(D, real).item() == pytest.approx(want.item() / 2, rel=1e-10)
    # the objective passes its pack: γ/2 · R1 in the D loss and "r1" in the stats
    obj = Objective(loss=LOSSES["ns"], r1_gamma=2.0, pack=2)
    loss, stats = obj.discriminator_loss(D, real, real.flip(0), None, None, d_step=0)
    assert stats["r1"].item() == pytest.approx(want.item(), rel=1e-10)
    plain, _ = Objective(loss=LOSSES["ns"], pack=2).discriminator_loss(D, real, real.flip(0), None, None, d_step=0)
    assert (loss - plain).item() == pytest.approx(want.item(), rel=1e-8)


def test_gradient_penalty_per_packed_sample_matches_the_packed_reference():
    torch.manual_seed(0)
    D = build_discriminator(ModelConfig(arch="mlp", resolution=4, d_width=4, pack=2)).double()
    real, fake = torch.randn(4, 1, 4, 4, dtype=torch.float64), torch.randn(4, 1, 4, 4, dtype=torch.float64)
    torch.manual_seed(5)
    gp = gradient_penalty(D, real, fake, pack=2)
    torch.manual_seed(5)  # Gulrajani et al.: one ε ~ U(0, 1) per sample D judges (here per pack)
    eps = torch.rand(2).double().repeat_interleave(2).view(4, 1, 1, 1)
    x_hat = eps * real + (1 - eps) * fake
    want = ((_packed_grad_norm_sq(D, x_hat, 2).sqrt() - 1) ** 2).mean()
    assert gp.item() == pytest.approx(want.item(), rel=1e-8)


def test_gradient_penalty_on_points_uses_one_epsilon_per_row():
    # (N, F) inputs (2-D toy data): α used to be (N, 1, 1, 1), which broadcast (N, F) to (N, 1, N, F)
    w = torch.tensor([0.3, 0.4])  # a linear critic: |∇D| = 0.5 everywhere → GP = 0.25
    D = lambda x, y=None: x.reshape(x.shape[0], -1) @ w  # noqa: E731
    real, fake = torch.randn(5, 2), torch.randn(5, 2)
    assert gradient_penalty(D, real, fake).item() == pytest.approx(0.25, rel=1e-5)
    torch.manual_seed(3)
    a = gradient_penalty(D, real[..., None, None], fake[..., None, None])
    torch.manual_seed(3)
    assert gradient_penalty(D, real, fake).item() == pytest.approx(a.item(), rel=1e-6)  # same α draws


@pytest.mark.parametrize("fn", ["gp", "r1"])
def test_penalties_reject_bad_shapes_and_packs_with_one_line(fn):
    D = lambda x, y=None: x.flatten(1).sum(1)  # noqa: E731
    x5 = torch.randn(5, 1, 2, 2)
    call = (lambda x, **kw: gradient_penalty(D, x, x.clone(), **kw)) if fn == "gp" else (lambda x, **kw: r1_penalty(D, x, **kw))
    with pytest.raises(ValueError, match=r"pack=2 does not divide the batch of 5") as err:
        call(x5, pack=2)
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match=r"pack=0 is invalid: use an integer >= 1"):
        call(x5, pack=0)
    if fn == "gp":
        with pytest.raises(ValueError, match=r"real \(5, 1, 2, 2\) and fake \(4, 1, 2, 2\) must have the same shape"):
            gradient_penalty(D, x5, x5[:4])


# ----------------------------------------------------------------------------- DiffAugment
# Transcribed from mit-han-lab/data-efficient-gans, DiffAugment_pytorch.py (Zhao et al. 2020).


def ref_brightness(x):
    return x + (torch.rand(x.size(0), 1, 1, 1, dtype=x.dtype) - 0.5)


def ref_saturation(x):
    m = x.mean(dim=1, keepdim=True)
    return (x - m) * (torch.rand(x.size(0), 1, 1, 1, dtype=x.dtype) * 2) + m


def ref_contrast(x):
    m = x.mean(dim=[1, 2, 3], keepdim=True)
    return (x - m) * (torch.rand(x.size(0), 1, 1, 1, dtype=x.dtype) + 0.5) + m


def ref_translation(x, ratio=0.125):
    sx, sy = int(x.size(2) * ratio + 0.5), int(x.size(3) * ratio + 0.5)
    tx = torch.randint(-sx, sx + 1, size=[x.size(0), 1, 1])
    ty = torch.randint(-sy, sy + 1, size=[x.size(0), 1, 1])
    gb, gx, gy = torch.meshgrid(torch.arange(x.size(0)), torch.arange(x.size(2)), torch.arange(x.size(3)), indexing="ij")
    gx = torch.clamp(gx + tx + 1, 0, x.size(2) + 1)
    gy = torch.clamp(gy + ty + 1, 0, x.size(3) + 1)
    xp = F.pad(x, [1, 1, 1, 1, 0, 0, 0, 0])
    return xp.permute(0, 2, 3, 1).contiguous()[gb, gx, gy].permute(0, 3, 1, 2)


def ref_cutout(x, ratio=0.5):
    cs = int(x.size(2) * ratio + 0.5), int(x.size(3) * ratio + 0.5)
    ox = torch.randint(0, x.size(2) + (1 - cs[0] % 2), size=[x.size(0), 1, 1])
    oy = torch.randint(0, x.size(3) + (1 - cs[1] % 2), size=[x.size(0), 1, 1])
    gb, gx, gy = torch.meshgrid(torch.arange(x.size(0)), torch.arange(cs[0]), torch.arange(cs[1]), indexing="ij")
    gx = torch.clamp(gx + ox - cs[0] // 2, min=0, max=x.size(2) - 1)
    gy = torch.clamp(gy + oy - cs[1] // 2, min=0, max=x.size(3) - 1)
    mask = torch.ones(x.size(0), x.size(2), x.size(3), dtype=x.dtype)
    mask[gb, gx, gy] = 0
    return x * mask.unsqueeze(1)


REF = {"color": [ref_brightness, ref_saturation, ref_contrast], "translation": [ref_translation], "cutout": [ref_cutout]}


@pytest.mark.parametrize("policy", ["color", "translation", "cutout", "color,translation,cutout"])
def test_diffaugment_equals_the_authors_code(policy):
    x = torch.randn(4, 3, 9, 12)  # odd, non-square sizes exercise the rounding of shifts and cutout
    torch.manual_seed(3)
    ours = make_augment(policy)(x)
    torch.manual_seed(3)
    want = x
    for name in policy.split(","):
        for fn in REF[name]:
            want = fn(want)
    torch.testing.assert_close(ours, want, rtol=0, atol=0)


def test_make_augment_refuses_an_unknown_name_instead_of_skipping_it():
    with pytest.raises(ValueError, match=r"'colour' is unknown: use a comma list of color, translation, cutout"):
        make_augment("colour,cutout")
    assert make_augment(" , ") is None and make_augment("cutout, translation") is not None


# ----------------------------------------------------------------------------- EMA


def test_ema_follows_tensorflows_warmup_schedule_and_copies_buffers():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    ema = EMA(net, decay=0.5, warmup=True)
    want = net[0].weight.detach().clone()
    for t in range(4):
        with torch.no_grad():
            net[0].weight.add_(1.0)
        net(torch.randn(8, 3))  # moves BN's running stats
        d = min(0.5, (1 + t) / (10 + t))  # tf.train.ExponentialMovingAverage(num_updates=t)
        want = d * want + (1 - d) * net[0].weight.detach()
        ema.update(net)
    torch.testing.assert_close(ema.model[0].weight, want)
    torch.testing.assert_close(ema.model[1].running_mean, net[1].running_mean, rtol=0, atol=0)
    assert ema.num_updates == 4 and not ema.model.training


# ----------------------------------------------------------------------------- simultaneous updates


@pytest.mark.parametrize("setting,needle", [("loss.gp_weight=10", "loss.gp_weight=10.0"),
                                            ("loss.r1_gamma=1", "loss.r1_gamma=1.0"),
                                            ("train.augment=translation", "train.augment='translation'")])
def test_simultaneous_update_refuses_the_settings_it_would_drop(setting, needle):
    cfg = apply_overrides(get_preset("keras-dcgan-mnist"), [setting])
    with pytest.raises(UsageError) as err:
        Objective.from_config(cfg)
    assert needle in str(err.value) and "train.update=alternating" in str(err.value) and "\n" not in str(err.value)
    check_update_supports(apply_overrides(cfg, ["train.update=alternating"]))  # alternating applies them all
    check_update_supports(get_preset("keras-dcgan-mnist"))  # the Keras preset itself is fine


def test_simultaneous_wgan_gp_on_the_cli_is_one_line_and_writes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", "--preset", "wgan-gp-mnist", "--data", "digits", "--out", out,
                           "--set", "train.update=simultaneous", "--set", "train.n_critic=1",
                           "--set", "model.g_width=4", "--set", "model.d_width=4", "--set", "train.total_steps=1")
    lines = [x for x in err.splitlines() if x.strip() and not x.startswith(("INFO ", "WARNING "))]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert "loss.gp_weight=10.0 would be ignored" in lines[0]
    assert not out.exists()


@pytest.mark.parametrize("decay", [1.0, 1.5, -0.1, "0.999"])
def test_ema_refuses_a_decay_outside_0_1(decay):
    with pytest.raises(ValueError, match=rf"EMA decay={decay!r} is invalid: use a number in \[0, 1\)"):
        EMA(torch.nn.Linear(2, 2), decay)


# ----------------------------------------------------------------------------- an unconstrained critic


def test_wgan_without_a_lipschitz_constraint_is_warned_about(caplog):
    base = get_preset("wgan-mnist")
    assert objective_notes(base) == []  # clipping
    assert objective_notes(get_preset("wgan-gp-mnist")) == []  # gradient penalty
    for fine in (["model.d_spectral_norm=true"], ["loss.r1_gamma=1"], ["loss.kind=hinge"]):
        assert objective_notes(apply_overrides(base, ["loss.clip_value=0", *fine])) == []
    bare = apply_overrides(base, ["loss.clip_value=0"])
    (note,) = objective_notes(bare)
    assert "loss.kind='wgan' without a Lipschitz constraint" in note and "loss.clip_value=0.01" in note
    with caplog.at_level("WARNING", logger="ganforge.train"):
        Objective.from_config(bare)
    assert note in caplog.text


def test_gradient_penalty_with_a_batch_norm_critic_is_warned_about():
    gp = get_preset("wgan-gp-mnist")
    assert objective_notes(gp) == []  # the preset drops D's batch norm, as the paper
    (note,) = objective_notes(apply_overrides(gp, ["model.d_batchnorm=true"]))
    assert "loss.gp_weight=10.0 with batch norm in D" in note and "model.d_batchnorm=false" in note
    assert objective_notes(apply_overrides(gp, ["model.d_batchnorm=true", "model.arch=keras-dcgan"])) == []  # no BN there
