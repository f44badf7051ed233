"""Typed config: overrides, round trip, and a table of bad values with their messages."""

import json

import pytest

from ganforge.config import RunConfig, apply_overrides, dumps, from_dict
from ganforge.errors import UsageError
from ganforge.presets import PRESETS, get_preset
from ganforge.training.schedule import lr_factor


def test_overrides_are_typed():
    cfg = apply_overrides(RunConfig(), ["train.batch_size=128", "optim.lr_d=4e-4", "train.deterministic=true", "loss.kind=hinge"])
    assert cfg.train.batch_size == 128 and cfg.optim.lr_d == 4e-4 and cfg.train.deterministic is True
    assert cfg.loss.kind == "hinge"


def test_round_trip_through_json():
    for cfg in PRESETS.values():
        assert from_dict(json.loads(dumps(cfg))) == cfg


BAD = [
    ("train.batchsize=3", "unknown key 'batchsize'"),
    ("nope.x=1", "unknown section 'nope'"),
    ("batch_size=3", "needs a section"),
    ("train.batch_size", "section.key=value"),
    ("train.batch_size=abc", "train.batch_size='abc' is not an integer"),
    ("train.batch_size=0", "train.batch_size=0 must be > 0"),
    ("optim.lr_g=-1e-4", "optim.lr_g=-0.0001 must be > 0"),
    ("optim.lr_g=nan", "must be a finite number"),
    ("optim.beta1_g=1.5", "optim.beta1_g=1.5 must be in [0, 1)"),
    ("loss.kind=wasserstein", "loss.kind='wasserstein' is not allowed: use one of minimax, ns, lsgan, wgan, hinge"),
    ("perf.precision=fp8", "perf.precision='fp8' is not allowed: use one of fp32, bf16"),
    ("model.arch=stylegan", "model.arch='stylegan' is not allowed"),
    ("model.channels=2", "model.channels=2 is not allowed"),
    ("train.augment=rotate", "train.augment='rotate' is not allowed: use one of translation, cutout, color"),
    ("train.deterministic=maybe", "is not a boolean"),
    ("optim.schedule=step", "optim.schedule='step' is not allowed"),
    ("train.ema_decay=1.0", "train.ema_decay=1.0 must be in [0, 1)"),
    ("model.pack=3", "train.batch_size=64 must be divisible by model.pack=3"),
    ("train.device=tpu", "train.device='tpu' is not allowed"),
    ("train.device=cuda:x", "train.device='cuda:x' is not allowed: use one of auto, cpu, cuda, cuda:N"),
    ("train.device=gpu", "train.device='gpu' is not allowed: use one of auto, cpu, cuda, cuda:N"),
    ("train.device=cuda:-1", "train.device='cuda:-1' is not allowed: use one of auto, cpu, cuda, cuda:N"),
    ("train.device=cuda:01", "train.device='cuda:01' is not allowed"),  # torch.device refuses it too
    ("train.seed=99999999999999999999999", "train.seed=99999999999999999999999 is out of range: use an integer from 0 to 9223372036854775807"),
    ("train.seed=-1", "train.seed=-1 is out of range"),
    ("eval.seed=9223372036854775808", "eval.seed=9223372036854775808 is out of range"),
    ("model.z_dim=100000000", "model.z_dim=100000000 is too large: use at most 4096"),
    ("model.g_width=100000", "model.g_width=100000 is too large: use at most 4096"),
    ("model.d_width=4097", "model.d_width=4097 is too large: use at most 4096"),
    ("model.mbstd_group=3", "model.mbstd_group=3 does not divide the 64 samples D sees per forward (train.batch_size=64)"),
]


@pytest.mark.parametrize("override,message", BAD)
def test_bad_values_are_rejected_with_a_clear_message(override, message):
    with pytest.raises(UsageError) as exc:
        apply_overrides(RunConfig(), [override])
    assert message in str(exc.value)
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize("device", ["auto", "cpu", "cuda", "cuda:0", "cuda:3"])
def test_every_device_name_is_valid_on_any_machine(device):
    # configs are written on one machine and run on another: the GPU is looked for by train(), not here
    assert apply_overrides(RunConfig(), [f"train.device={device}"]).train.device == device


def test_a_conditional_net_without_its_labels_is_refused_before_any_work():
    # it used to pass --dry-run and then fail at the first step with a traceback, a run folder left behind
    with pytest.raises(UsageError, match=r"data.use_labels=false with model.num_classes=10: .* model.num_classes=0"):
        apply_overrides(get_preset("cgan-mnist"), ["data.use_labels=false"])
    assert not apply_overrides(get_preset("cgan-mnist"), ["data.use_labels=false", "model.num_classes=0"]).data.use_labels


def test_unknown_preset():
    with pytest.raises(UsageError, match="unknown preset 'nope': choose one of"):
        get_preset("nope")


def test_required_presets_exist():
    for name in ["mlp-mnist", "keras-dcgan-mnist", "dcgan-mnist", "sagan-mnist", "lsgan-mnist", "wgan-mnist",
                 "wgan-gp-mnist", "dcgan-cifar10", "sngan-cifar10", "cgan-mnist", "faces-lfw"]:
        assert PRESETS[name].preset == name and PRESETS[name].description


def test_from_dict_rejects_unknown_keys():
    d = json.loads(dumps(RunConfig()))
    d["train"]["warp_speed"] = 9
    with pytest.raises(UsageError, match="warp_speed"):
        from_dict(d)


@pytest.mark.parametrize(
    "schedule,step,expected",
    [("constant", 50, 1.0), ("linear", 0, 1.0), ("linear", 25, 0.75), ("linear", 100, 0.0),
     ("cosine", 0, 1.0), ("cosine", 50, 0.5), ("cosine", 100, 0.0)],
)
def test_lr_schedules(schedule, step, expected):
    assert lr_factor(schedule, step, 100) == pytest.approx(expected, abs=1e-12)


def test_lr_decay_start():
    assert lr_factor("linear", 40, 100, decay_start_step=50) == 1.0
    assert lr_factor("linear", 75, 100, decay_start_step=50) == pytest.approx(0.5)


@pytest.mark.parametrize("sets,ok", [
    (["model.mbstd_group=3", "train.batch_size=8"], False),  # the QA case: 8 % 3
    (["model.mbstd_group=4", "train.batch_size=8"], True),
    (["model.mbstd_group=16", "train.batch_size=8"], True),  # the layer takes min(group, batch): the whole batch
    (["model.mbstd_group=4", "model.pack=2", "train.batch_size=12"], False),  # D sees 12 / 2 = 6 packed samples
    (["model.mbstd_group=3", "model.pack=2", "train.batch_size=12"], True),
])
def test_mbstd_group_must_divide_the_batch_d_sees(sets, ok):
    """Checked against nn.MinibatchStdDev itself: the config is accepted exactly when D's forward works."""
    import torch

    from ganforge.nn import MinibatchStdDev

    cfg = RunConfig()
    try:
        cfg = apply_overrides(cfg, sets)
        accepted = True
    except UsageError as exc:
        accepted = False
        assert "model.mbstd_group=" in str(exc) and "train.batch_size=" in str(exc) and "\n" not in str(exc)
    assert accepted is ok
    group = int(sets[0].split("=")[1])
    pack = int(next((s.split("=")[1] for s in sets if s.startswith("model.pack")), 1))
    batch = int(sets[-1].split("=")[1])
    runs = True
    try:
        MinibatchStdDev(group)(torch.zeros(batch // pack, 4))
    except ValueError:
        runs = False
    assert runs is ok


def test_mbstd_group_under_several_processes():
    from ganforge.config import check_mbstd_group

    check_mbstd_group(4, 16, world_size=2)  # 8 per process
    with pytest.raises(UsageError, match=r"the 4 samples D sees per forward \(train.batch_size=16 / 2 processes / model.pack=2\)"):
        check_mbstd_group(3, 16, world_size=2, pack=2)
