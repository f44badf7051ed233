"""AC-GAN (Odena et al. 2017): `model.d_cond=ac|proj+ac`, an auxiliary class head on D, and `loss.ac_weight`."""

import math

import pytest
import torch

from ganforge.cli import main
from ganforge.config import RunConfig, apply_overrides, read_run_config
from ganforge.data import load_images
from ganforge.errors import UsageError
from ganforge.models import build_discriminator
from ganforge.models.config import ModelConfig
from ganforge.training import train
from ganforge.training.logger import read_metrics
from ganforge.training.objective import Objective


def cross_entropy_by_hand(logits: torch.Tensor, y: torch.Tensor) -> float:
    """mean over rows of −log softmax(logits)[y], written out (the reference for F.cross_entropy)."""
    rows = logits.double().tolist()
    return sum(math.log(sum(math.exp(v) for v in r)) - r[c] for r, c in zip(rows, y.tolist())) / len(rows)


def acgan_config(d_cond: str, *extra: str) -> RunConfig:
    return apply_overrides(RunConfig(), ["model.arch=mlp", "model.resolution=4", "model.channels=1", "model.z_dim=3",
                                         "model.d_width=16", "model.num_classes=3", f"model.d_cond={d_cond}", *extra])


@pytest.mark.parametrize("arch", ["mlp", "dcgan", "resnet"])
def test_class_head_reads_the_features_and_ac_alone_ignores_the_label(arch):
    torch.manual_seed(0)
    res = 4 if arch == "mlp" else 32
    m = ModelConfig(arch=arch, resolution=res, channels=1, d_width=8, num_classes=3, d_cond="ac", d_spectral_norm=True)
    D = build_discriminator(m).eval()
    x, y = torch.randn(6, 1, res, res), torch.tensor([0, 1, 2, 0, 1, 2])
    logits, classes = D(x, y, with_classes=True)
    assert logits.shape == (6,) and classes.shape == (6, 3)
    h = D.embed(x)
    torch.testing.assert_close(classes, D.classifier(h))
    torch.testing.assert_close(logits, D(x, y))
    torch.testing.assert_close(D(x, y), D(x, (y + 1) % 3))  # the adversarial head is unconditional
    assert hasattr(D.classifier, "parametrizations")  # spectral norm reaches the class head too
    with pytest.raises(ValueError, match="auxiliary class head"):
        build_discriminator(ModelConfig(arch="mlp", resolution=4, channels=1, num_classes=3))(x[:, :, :4, :4], y, with_classes=True)


def test_projection_plus_ac_keeps_the_projection():
    torch.manual_seed(0)
    D = build_discriminator(ModelConfig(arch="mlp", resolution=4, channels=1, d_width=8, num_classes=3, d_cond="proj+ac"))
    x, y = torch.randn(6, 1, 4, 4), torch.tensor([0, 1, 2, 0, 1, 2])
    h = D.embed(x)
    expected = D.head.linear(h).squeeze(1) + (D.head.embed(y) * h).sum(1)  # Miyato & Koyama's projection
    torch.testing.assert_close(D(x, y), expected)
    assert D(x, y, with_classes=True)[1].shape == (6, 3)


def d_step(d_cond: str, concat: bool, *sets: str):
    """One D loss of a batch-norm-free AC-GAN D on fixed random batches: (D, objective, batches, (loss, stats))."""
    torch.manual_seed(0)
    cfg = acgan_config(d_cond, "model.d_batchnorm=false", *sets)
    D, obj = build_discriminator(cfg.model), Objective.from_config(cfg)
    batches = (torch.randn(6, 1, 4, 4), torch.randn(6, 1, 4, 4), torch.tensor([0, 1, 2, 2, 1, 0]), torch.tensor([1, 1, 1, 0, 0, 0]))
    return D, obj, batches, obj.discriminator_loss(D, *batches, 0, concat=concat)


@pytest.mark.parametrize("concat", [False, True])
def test_discriminator_loss_adds_weighted_cross_entropy_of_real_only(concat):
    D, obj, (real, fake, y_real, y_fake), (loss, stats) = d_step("ac", concat, "loss.ac_weight=0.7")
    ce = cross_entropy_by_hand(D.classifier(D.embed(real)), y_real)
    adv = obj.loss.d_loss(D(real, y_real), D(fake, y_fake)).item()
    assert stats["ac_real"].item() == pytest.approx(ce, rel=1e-5)
    assert loss.item() == pytest.approx(adv + 0.7 * ce, rel=1e-5)
    # The class head's gradient comes from real images only: the fakes' class logits are not in the loss
    D.zero_grad()
    loss.backward()
    g = D.classifier.weight.grad.clone()
    D.zero_grad()
    (0.7 * torch.nn.functional.cross_entropy(D.classifier(D.embed(real)), y_real)).backward()
    torch.testing.assert_close(D.classifier.weight.grad, g)


@pytest.mark.parametrize("concat", [False, True])
def test_ac_on_fake_adds_the_fakes_cross_entropy_to_d(concat):
    D, obj, (real, fake, y_real, y_fake), (loss, stats) = d_step("proj+ac", concat, "loss.ac_weight=0.5", "loss.ac_on_fake=true")
    ce_real = cross_entropy_by_hand(D.classifier(D.embed(real)), y_real)
    ce_fake = cross_entropy_by_hand(D.classifier(D.embed(fake)), y_fake)
    adv = obj.loss.d_loss(D(real, y_real), D(fake, y_fake)).item()
    assert stats["ac_fake_d"].item() == pytest.approx(ce_fake, rel=1e-5)
    assert loss.item() == pytest.approx(adv + 0.5 * (ce_real + ce_fake), rel=1e-5)


@pytest.mark.parametrize("fm", [False, True])
def test_generator_loss_adds_weighted_cross_entropy_of_the_asked_labels(fm):
    torch.manual_seed(0)
    extra = ["loss.fm_weight=2"] if fm else []
    cfg = acgan_config("proj+ac", "loss.ac_weight=1.5", *extra)
    plain_cfg = acgan_config("proj", *extra)
    D = build_discriminator(cfg.model)
    fake, real, y = torch.randn(6, 1, 4, 4), torch.randn(6, 1, 4, 4), torch.tensor([2, 0, 1, 1, 0, 2])
    loss, stats = Objective.from_config(cfg).generator_loss(D, fake, y, real=real)
    without, plain_stats = Objective.from_config(plain_cfg).generator_loss(D, fake, y, real=real)
    ce = cross_entropy_by_hand(D.classifier(D.embed(fake)), y)
    assert stats["ac_fake"].item() == pytest.approx(ce, rel=1e-5)
    assert loss.item() == pytest.approx(without.item() + 1.5 * ce, rel=1e-5)
    assert "ac_fake" not in plain_stats


def test_the_asked_class_pulls_g_toward_it():
    """A small step down G's loss gradient (the AC term dominating) raises the class head's probability of the asked class."""
    torch.manual_seed(0)
    cfg = acgan_config("ac", "loss.ac_weight=100")  # the class term dominates G's loss
    D = build_discriminator(cfg.model)
    fake, y = torch.randn(8, 1, 4, 4, requires_grad=True), torch.full((8,), 2)
    loss, _ = Objective.from_config(cfg).generator_loss(D, fake, y)
    (g,) = torch.autograd.grad(loss, fake)
    p_asked = lambda x: D(x, y, with_classes=True)[1].softmax(1)[:, 2].mean().item()  # noqa: E731
    assert p_asked(fake - 0.01 * g) > p_asked(fake)


def test_bad_settings_are_usage_errors(capsys):
    with pytest.raises(UsageError, match="model.d_cond='acgan' is not allowed"):
        apply_overrides(RunConfig(), ["model.num_classes=3", "model.d_cond=acgan"])
    with pytest.raises(UsageError, match="needs labels"):
        apply_overrides(RunConfig(), ["model.d_cond=ac"])
    with pytest.raises(UsageError, match="loss.ac_weight=0"):
        apply_overrides(RunConfig(), ["model.num_classes=3", "model.d_cond=ac", "loss.ac_weight=0"])
    with pytest.raises(UsageError, match="train.update=alternating"):
        apply_overrides(RunConfig(), ["model.num_classes=3", "model.d_cond=ac", "train.update=simultaneous"])
    with pytest.raises(UsageError, match="train.unroll_steps=0"):
        apply_overrides(RunConfig(), ["model.num_classes=3", "model.d_cond=proj+ac", "train.unroll_steps=2"])
    assert main(["train", "--preset", "dcgan-mnist", "--set", "model.d_cond=ac", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "model.d_cond='ac' needs labels" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_training_logs_both_terms_and_resumes(tmp_path):
    data = load_images("digits", resolution=8, channels=1)
    sets = ["data.source=digits", "model.arch=mlp", "model.resolution=8", "model.channels=1", "model.z_dim=8",
            "model.g_width=32", "model.d_width=32", "model.num_classes=10", "model.d_cond=ac", "train.total_steps=4",
            "train.batch_size=16", "train.progress=false", "train.log_every=1", "train.sample_every=0",
            "checkpoint.every_steps=2", "train.sample_grid=10", "train.threads=1"]
    run = train(apply_overrides(RunConfig(), sets), data=data, out=tmp_path / "ac")
    rows = [r for r in read_metrics(run / "metrics.jsonl") if "g_loss" in r]
    assert len(rows) == 4 and all(r["ac_real"] > 0 and r["ac_fake"] > 0 for r in rows)
    assert rows[0]["ac_real"] == pytest.approx(math.log(10), rel=0.3)  # an untrained head is near chance
    assert read_run_config(run / "config.json").model.d_cond == "ac"
    train(apply_overrides(RunConfig(), sets[:9] + ["train.total_steps=6"] + sets[10:]), data=data, resume=run)
    assert [r["step"] for r in read_metrics(run / "metrics.jsonl") if "g_loss" in r][-2:] == [5, 6]


@pytest.mark.parametrize("sets,warns", [
    (["model.d_cond=ac"], True), (["model.d_cond=ac", "loss.ac_on_fake=true"], False),
    (["model.d_cond=ac", "model.d_batchnorm=false"], False), (["model.d_cond=proj"], False),
])
def test_a_batch_norm_d_with_real_only_class_loss_warns(tmp_path, caplog, sets, warns):
    import logging

    data = load_images("digits", resolution=16, channels=1)
    base = ["data.source=digits", "model.arch=dcgan", "model.resolution=16", "model.channels=1", "model.z_dim=8",
            "model.g_width=8", "model.d_width=8", "model.num_classes=10", "train.total_steps=1", "train.batch_size=10",
            "train.progress=false", "train.sample_every=0", "checkpoint.every_steps=0", "train.sample_grid=10",
            "train.threads=1"]
    with caplog.at_level(logging.WARNING, logger="ganforge"):
        train(apply_overrides(RunConfig(), base + sets), data=data, out=tmp_path / "r")
    assert any("gives G no usable class signal" in r.getMessage() for r in caplog.records) == warns
