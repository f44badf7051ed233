"""Restoration training: config overrides, a tiny training run (the data and the patch sampler:
test_restore_data.py), the model folder round trip, tiled apply; the helpers the CLI tests share
(test_restore_train_cli.py and others import _cli, _save_png, tiny and the photos fixture)."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.apps.degrade import make_mask
from ganforge.apps.restore_apply import Restorer, load_restorer, save_restorer
from ganforge.apps.restore_config import PRESETS, apply_overrides, dumps, from_dict, get_preset
from ganforge.apps.restore_models import build_restorer
from ganforge.apps.restore_train import lr_factor, train_restorer
from ganforge.apps.tiling import tiled
from ganforge.errors import UsageError
from test_restore_models import one_thread  # noqa: F401  (autouse: one torch thread in this module too)

TINY = ["model.width=8", "model.blocks=2", "model.d_width=8", "train.batch_size=4", "data.patch_size=32",
        "train.progress=false", "train.device=cpu", "train.max_minutes=0", "data.val_crop=48", "data.val_images=1"]



def tiny(preset, *extra):
    return apply_overrides(get_preset(preset), [*TINY, *extra])


def perturbed_net(cfg, seed):
    """cfg's restoration net with every weight nudged by N(0, 0.05²), so that checks do not rest on
    the initialisation (a fresh inpainting net returns its zero-filled input in the holes)."""
    torch.manual_seed(seed)
    G = build_restorer(cfg)
    with torch.no_grad():
        for p in G.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return G


@pytest.fixture(scope="module")
def photos():
    """Five small deterministic 'photos' of different sizes: smooth gradients plus texture."""
    g = np.random.default_rng(0)
    out = []
    for i, (h, w) in enumerate([(64, 80), (72, 64), (96, 96), (64, 64), (80, 72)]):
        y, x = np.mgrid[0:h, 0:w] / 32.0
        base = np.stack([np.sin(x + i), np.cos(y - i), np.sin(x * y / 4)], axis=0) * 0.35 + 0.5
        img = np.clip(base + g.normal(0, 0.05, base.shape), 0, 1)
        out.append(torch.from_numpy((img * 255).round().astype(np.uint8)))
    return out


# ----------------------------------------------------------------------------- config


def test_every_preset_validates_and_round_trips():
    for name in PRESETS:
        cfg = get_preset(name)
        assert cfg.description and cfg.preset == name
        assert from_dict(json.loads(dumps(cfg))) == cfg


@pytest.mark.parametrize("item,needle", [
    ("train.totl_steps=5", "unknown key 'totl_steps'"),
    ("trian.total_steps=5", "unknown section 'trian'"),
    ("train.total_steps=many", "is not an integer"),
    ("loss.pixel=l3", "loss.pixel='l3' is not allowed"),
    ("degrade.mask_kinds=center,blobs", "blobs"),
    ("data.patch_size=30", "multiple of degrade.scale=4"),
    ("train.adv_steps=10", "needs loss.adv_weight > 0"),
    ("total_steps", "not of the form section.key=value"),
    ("data.shrink=0", "data.shrink=0.0 must be in (0, 1]"),
    ("data.shrink=1.5", "data.shrink=1.5 must be in (0, 1]"),
    ("train.device=gpu", "train.device='gpu' is not allowed: use one of auto, cpu, cuda, cuda:N"),
    ("train.device=cuda:01", "train.device='cuda:01' is not allowed"),
])
def test_bad_overrides_are_one_line_errors(item, needle):
    with pytest.raises(UsageError, match=None) as info:
        apply_overrides(get_preset("sr-x4"), [item])
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_a_gpu_by_index_validates_on_any_machine():
    # the config may be written here and run on a machine with that GPU (train() checks the machine)
    assert apply_overrides(get_preset("sr-x4"), ["train.device=cuda:2"]).train.device == "cuda:2"


def test_get_preset_checks_the_task():
    assert get_preset("denoise-blind", "denoise").degrade.blind
    with pytest.raises(UsageError, match="unknown sr preset 'denoise-s25'"):
        get_preset("denoise-s25", "sr")


def test_lr_schedules():
    assert lr_factor("cosine", 0.0, 0, 1, 0.5) == 1.0
    assert lr_factor("cosine", 0.5, 0, 1, 0.5) == pytest.approx(0.5)
    assert lr_factor("cosine", 1.0, 0, 1, 0.5) == pytest.approx(0.0)
    assert lr_factor("step", 0.9, 250, 100, 0.5) == 0.25
    assert lr_factor("constant", 0.7, 10, 1, 0.5) == 1.0


def test_the_time_budget_is_shared_by_steps_and_what_a_phase_leaves_goes_on():
    from ganforge.apps.restore_train import phase_time_budget

    assert phase_time_budget(0, 0, [100, 50]) == float("inf")  # no limit
    assert phase_time_budget(900, 0, [100, 50]) == 600  # the pixel phase's share of 15 minutes
    assert phase_time_budget(900, 200, [50]) == 700  # it ended on its steps after 200 s: the rest is the next phase's
    assert phase_time_budget(900, 950, [50]) == 0  # over budget (a resumed run): the phase stops at once
    assert phase_time_budget(900, 100, [30, 10, 20]) == 400


# ----------------------------------------------------------------------------- training and the model folder


def test_tiny_training_lowers_the_loss_and_writes_a_loadable_model(tmp_path, photos):
    cfg = tiny("denoise-s25", "train.total_steps=20", "train.log_every=5", "optim.lr=2e-3", "train.ema_decay=0")
    run = train_restorer(cfg, runs_root=tmp_path, photos=photos)
    assert run.name == "00001-denoise-s25"
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    losses = [r["pixel"] for r in rows if "pixel" in r]
    assert len(losses) == 4 and losses[-1] < 0.9 * losses[0]
    vals = [r["val_psnr"] for r in rows if "val_psnr" in r]
    assert len(vals) == 2 and vals[-1] > vals[0]  # better than the noisy input
    assert {p.name for p in (run / "model").iterdir()} == {"config.json", "generator.safetensors"}
    restore = load_restorer(run)
    assert (restore.task, restore.scale, restore.sigma) == ("denoise", None, 25.0)
    out = restore(torch.rand(1, 3, 20, 24))
    assert out.shape == (1, 3, 20, 24) and 0 <= out.min() and out.max() <= 1
    again = train_restorer(cfg, runs_root=tmp_path, photos=photos)
    assert again.name == "00002-denoise-s25"  # never reused
    with pytest.raises(UsageError, match="already exists"):
        train_restorer(cfg, out=run, photos=photos)


def test_fused_adam_and_cpu_batches_train_the_same_net(tmp_path, photos):
    # perf.fused_optim is the same Adam update in one kernel; data.on_device=false cuts the same batches
    # on the CPU. Four runs of 6 steps from one seed end at the same weights (fused: to float rounding).
    from safetensors.torch import load_file

    def weights(*extra):
        cfg = tiny("sr-x4", "train.total_steps=6", "train.ema_decay=0", "perf.precision=fp32", *extra)
        return load_file(train_restorer(cfg, runs_root=tmp_path, photos=photos) / "model" / "generator.safetensors")

    plain, fused, cpu = weights(), weights("perf.fused_optim=true"), weights("data.on_device=false")
    assert plain.keys() == fused.keys() and len(plain) > 4
    for k in plain:
        assert torch.equal(plain[k], cpu[k])
        assert torch.allclose(plain[k], fused[k], rtol=1e-4, atol=1e-6), k
    other = weights("train.seed=1")
    assert any(not torch.equal(plain[k], other[k]) for k in plain)  # the seed matters


def test_adversarial_phase_runs_from_init(tmp_path, photos):
    base = train_restorer(tiny("sr-x4", "train.total_steps=3"), runs_root=tmp_path, photos=photos)
    cfg = tiny("srgan-x4", "train.total_steps=0", "train.adv_steps=3", "train.log_every=1", f"train.init_from={base}")
    run = train_restorer(cfg, runs_root=tmp_path, photos=photos)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    adv = [r for r in rows if r.get("phase") == "adversarial"]
    assert len(adv) == 3 and all({"d_loss", "g_adv", "pixel", "feature"} <= set(r) for r in adv)
    assert load_restorer(run).scale == 4
    with pytest.raises(UsageError, match="must match"):
        train_restorer(tiny("srgan-x4", "train.total_steps=0", "train.adv_steps=1", "model.width=4",
                            f"train.init_from={base}"), runs_root=tmp_path, photos=photos)
    with pytest.raises(UsageError, match="it is a sr model"):
        train_restorer(tiny("denoise-s25", "train.total_steps=1", f"train.init_from={base}"), runs_root=tmp_path, photos=photos)


def test_init_from_grows_an_inpainting_unet_and_refuses_to_shrink_one(tmp_path, photos):
    unet = ["model.arch=unet", "degrade.mask_kinds=center", "train.ema_decay=0", "train.adv_steps=0", "loss.adv_weight=0"]
    base = train_restorer(tiny("inpaint-center", *unet, "train.total_steps=2"), runs_root=tmp_path, photos=photos)
    start = lambda run: json.loads((run / "metrics.jsonl").read_text().splitlines()[0])  # noqa: E731
    grown = train_restorer(tiny("inpaint-center", *unet, "model.refine=2", "train.total_steps=1", f"train.init_from={base}"),
                           runs_root=tmp_path, photos=photos)
    # the grown net starts where its source ended: the same validation PSNR before its first step
    ended = json.loads((base / "summary.json").read_text())["phases"]["pixel"]["val_psnr"]
    assert start(grown)["step"] == 0 and start(grown)["val_psnr"] == round(ended, 4)
    assert len(load_restorer(grown).net.refine2) == 2
    with pytest.raises(UsageError, match=r"does not match this inpaint network \(unexpected \['refine2.1.body.0.bias'"):
        train_restorer(tiny("inpaint-center", *unet, "model.refine=1", "train.total_steps=1", f"train.init_from={grown}"),
                       runs_root=tmp_path, photos=photos)


@pytest.mark.parametrize("preset", ["sr-x2", "denoise-blind", "inpaint-center"])
def test_load_restorer_round_trip(tmp_path, preset):
    cfg = tiny(preset, "model.noise_map=true")
    G = perturbed_net(cfg, seed=0)
    save_restorer(tmp_path / "model", cfg, G)
    x = torch.rand(1, 3, 24, 28)
    mask = make_mask("center", 1, 24, 28, torch.Generator()) if cfg.task == "inpaint" else None
    kw = {"sigma": 30.0} if cfg.task == "denoise" else {}
    before = Restorer(G, cfg, **kw)(x, mask)
    after = load_restorer(tmp_path, **kw)(x, mask)  # a folder holding model/
    assert torch.equal(before, after)
    if cfg.task == "inpaint":
        known = mask.expand_as(x) == 0
        assert torch.equal(after[known], x[known])
    if cfg.task == "denoise":
        with pytest.raises(UsageError, match="--sigma"):
            load_restorer(tmp_path / "model")  # blind + noise map: the level must be given


def test_tiled_apply_equals_untiled_for_the_sr_net():
    cfg = tiny("sr-x4", "model.blocks=1")
    G = perturbed_net(cfg, seed=1)
    lr = torch.rand(1, 3, 37, 29)
    whole = Restorer(G, cfg)(lr)
    tiles = Restorer(G, cfg, tile=12, overlap=10)(lr)
    assert tiles.shape == whole.shape == (1, 3, 148, 116)
    inner = (..., slice(16, -16), slice(16, -16))
    assert torch.allclose(tiles[inner], whole[inner], atol=1e-5)
    # the receptive field (head 9x9 + 4 convs + 2 shuffle stages) is < 10 LR px: exact at the borders too
    assert torch.allclose(tiles, whole, atol=1e-5)
    assert torch.equal(tiled(G, lr, tile=0, overlap=0, scale=4), G(lr))


def test_auto_tile_runs_small_images_whole_and_tiles_large_ones(monkeypatch):
    import ganforge.apps.restore_apply as ra

    cfg = tiny("sr-x4", "model.blocks=1")
    G = perturbed_net(cfg, seed=1)
    r = Restorer(G, cfg, overlap=10)  # tile="auto" is the default
    assert r.tile == "auto" and Restorer(G, cfg, tile=0).tile_for(10_000, 10_000) == 0
    # sr x4: 2048 // 4 = 512-px cores; tiled once the input covers more than (512 + 2 * 10)^2 pixels
    assert r.tile_for(532, 532) == 0 and r.tile_for(533, 532) == 512 and r.tile_for(2000, 100) == 0
    unet = Restorer(perturbed_net(tiny("denoise-s25", "model.arch=unet"), seed=0), tiny("denoise-s25", "model.arch=unet"))
    assert unet.overlap == 64 and unet.tile_for(1664, 1664) == 0 and unet.tile_for(1665, 1664) == 1536
    # the same path at a small scale: tiles where the image is large, the untiled output all the same
    monkeypatch.setitem(ra.AUTO_TILE, "sr", 48)  # 12-px cores
    calls = []
    monkeypatch.setattr(r, "_forward", lambda x, f=r._forward: calls.append(tuple(x.shape[-2:])) or f(x))
    lr = torch.rand(1, 3, 37, 29)
    assert r.tile_for(37, 29) == 12
    assert torch.allclose(r(lr), Restorer(G, cfg, tile=0)(lr), atol=1e-5) and len(calls) == 12  # 4 x 3 tiles
    calls.clear()
    r(lr[..., :20, :20])  # 400 <= (12 + 20)^2 pixels: one call
    assert calls == [(20, 20)]
    with pytest.raises(UsageError, match="tile=-1 must be an integer >= 0"):
        Restorer(G, cfg, tile=-1)
    with pytest.raises(UsageError, match="tile='big' must be"):
        Restorer(G, cfg, tile="big")


def test_net_calls_counts_every_network_call():
    # apply's progress bar has net_calls(h, w) as its total and on_call as its tick
    sr, inp = tiny("sr-x4", "model.blocks=1"), tiny("inpaint-center")
    cases = [(sr, {"tile": 0}, (37, 29), 1), (sr, {"tile": 12, "overlap": 4}, (37, 29), 12),
             (sr, {"tile": 12, "overlap": 4, "self_ensemble": True}, (37, 29), 96),
             (inp, {"tile": 16, "overlap": 8, "work_scale": 0.5}, (64, 48), 4)]  # the net runs on 32 x 24
    for cfg, kw, (h, w), want in cases:
        r = Restorer(perturbed_net(cfg, seed=1), cfg, **kw)
        ticks = []
        r.on_call = lambda: ticks.append(1)
        mask = make_mask("center", 1, h, w, torch.Generator()) if cfg.task == "inpaint" else None
        r(torch.rand(1, 3, h, w), mask)
        assert r.net_calls(h, w) == len(ticks) == want, (kw, ticks)


@pytest.mark.parametrize("preset", ["sr-x2", "denoise-s25", "inpaint-center"])
def test_bf16_precision_runs_channels_last_near_fp32(preset, monkeypatch, caplog):
    import copy
    import logging

    cfg = tiny(preset)
    G = perturbed_net(cfg, seed=4)
    x = torch.rand(1, 3, 24, 32)
    mask = make_mask("square", 1, 24, 32, torch.Generator().manual_seed(2)) if cfg.task == "inpaint" else None
    ref = Restorer(copy.deepcopy(G), cfg)(x, mask)
    # bf16 where native (emulated on a CPU without AVX512-BF16: the same numbers, slower)
    monkeypatch.setattr("ganforge.training.perf.bf16_is_native", lambda device: True)
    for precision in ("bf16", "auto"):
        fast = Restorer(copy.deepcopy(G), cfg, precision=precision)
        conv = next(m for m in fast.net.modules() if isinstance(m, torch.nn.Conv2d))
        assert fast.precision == "bf16" and conv.weight.is_contiguous(memory_format=torch.channels_last)
        got = fast(x, mask)
        assert got.dtype == torch.float32 and got.shape == ref.shape
        diff = (got - ref).abs()  # bf16 rounding of a random net's activations, not another result
        assert 0 < diff.max() < 0.1 and diff.mean() < 0.01
        if mask is not None:
            known = mask.expand_as(x) == 0
            assert torch.equal(got[known], x[known])  # composited: known pixels exact in bf16 too
    monkeypatch.setattr("ganforge.training.perf.bf16_is_native", lambda device: False)
    assert Restorer(copy.deepcopy(G), cfg, precision="auto").precision == "fp32"
    with caplog.at_level(logging.WARNING, logger="ganforge.restore"):
        assert Restorer(copy.deepcopy(G), cfg, precision="bf16").precision == "fp32"
    assert any("precision bf16 is not native on this cpu" in r.getMessage() for r in caplog.records)
    with pytest.raises(UsageError, match="precision 'fp16' is not allowed: use one of fp32, bf16, auto"):
        Restorer(G, cfg, precision="fp16")


def test_training_on_cuda_n_makes_it_current_resolves_bf16_for_it_and_restores_the_callers(monkeypatch, photos, tmp_path):
    import ganforge.apps.restore_train as restore_train
    from ganforge.training import perf
    from test_restore_api import fake_gpus

    asked = fake_gpus(monkeypatch, [(7, 5), (8, 0)])  # cuda:1 has native bf16, cuda:0 (current at first) not
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", torch.backends.cudnn.benchmark)  # restored after
    resolved = []

    class Stop(Exception):  # no CUDA in this torch: stop before anything goes to the GPU
        pass

    def resolve_then_stop(requested, device, **kw):
        resolved.append((perf.resolve_precision(requested, device, **kw), torch.cuda.current_device()))
        raise Stop

    monkeypatch.setattr(restore_train, "resolve_precision", resolve_then_stop)
    with pytest.raises(Stop):  # perf.precision=auto, the default
        train_restorer(tiny("denoise-s25", "train.device=cuda:1"), photos=photos, runs_root=tmp_path, dry_run=True)
    # cuda:1 current while training; cuda:0, the caller's, current again after (keeps_current_cuda_device)
    assert resolved == [("bf16", 1)] and asked == [("set_device", 1), ("capability", 1), ("set_device", 0)]


def test_work_scale_inpaints_the_shrunk_image_and_keeps_known_pixels():
    cfg = tiny("inpaint-center")
    G = perturbed_net(cfg, seed=2)
    x = torch.rand(2, 3, 60, 52)
    mask = make_mask("center", 2, 60, 52, torch.Generator())  # (2, 1, 60, 52), 1 = missing
    half = Restorer(G, cfg, work_scale=0.5)
    out = half(x * (1 - mask), mask)
    known = mask.expand_as(x) == 0
    assert out.shape == x.shape and torch.equal(out[known], x[known])
    # whatever the holes hold in the input never reaches the shrunk context
    assert torch.equal(half(x * (1 - mask) + 7.0 * mask, mask), out)
    # the fill is the bicubic upsampling of the net's fill of the area-shrunk image (30 x 26):
    # a hole pixel there is one with any missing source pixel
    small_known = torch.nn.functional.avg_pool2d(1 - mask, 2)
    m_small = (small_known < 1).float()
    x_small = torch.nn.functional.avg_pool2d(x * (1 - mask), 2) / small_known.clamp_min(1e-6) * (1 - m_small)
    y_small = Restorer(G, cfg)(x_small, m_small)
    expected = torch.nn.functional.interpolate(y_small, size=(60, 52), mode="bicubic", align_corners=False).clamp(0, 1)
    hole = ~known
    assert torch.allclose(out[hole], expected[hole], atol=1e-6)
    assert torch.equal(Restorer(G, cfg, work_scale=1.0)(x * (1 - mask), mask), Restorer(G, cfg)(x * (1 - mask), mask))
    for bad in (0.0, 1.5, -0.5):
        with pytest.raises(UsageError, match="work scale"):
            Restorer(G, cfg, work_scale=bad)
    sr = tiny("sr-x4")
    with pytest.raises(UsageError, match="for inpainting models"):
        Restorer(build_restorer(sr), sr, work_scale=0.5)


@pytest.mark.parametrize("preset", ["sr-x2", "inpaint-center"])
def test_self_ensemble_is_the_mean_over_the_8_rotations_and_flips(preset):
    cfg = tiny(preset)
    G = perturbed_net(cfg, seed=3)
    x = torch.rand(1, 3, 20, 28)  # not square: the rotated inputs are 28 x 20
    mask = make_mask("square", 1, 20, 28, torch.Generator().manual_seed(1)) if cfg.task == "inpaint" else None
    plain = Restorer(G, cfg)
    outs = []
    for k in range(4):
        for flip in (False, True):
            def fwd(t, k=k, flip=flip):  # transform, restore without clamping, transform back
                t = t.rot90(k, dims=(-2, -1))
                return t.flip(-1) if flip else t
            if mask is None:
                y = plain._forward(fwd(x))
            else:
                y = plain._forward(torch.cat([fwd(x), fwd(mask)], dim=1))
            y = y.flip(-1) if flip else y
            outs.append(y.rot90(-k, dims=(-2, -1)))
    expected = torch.stack(outs).mean(0).clamp(0, 1)
    if mask is not None:
        expected = mask * expected + (1 - mask) * x
    got = Restorer(G, cfg, self_ensemble=True)(x, mask)
    assert got.shape == expected.shape and torch.allclose(got, expected, atol=1e-6)
    # a net trained upright (data.rotate=false) averages the 2 flips only: the k = 0 outputs
    upright = apply_overrides(cfg, ["data.rotate=false"])
    two = torch.stack(outs[:2]).mean(0).clamp(0, 1)
    if mask is not None:
        two = mask * two + (1 - mask) * x
    got2 = Restorer(G, upright, self_ensemble=True)
    assert got2.ensemble_size == 2 and torch.allclose(got2(x, mask), two, atol=1e-6)
    assert not torch.allclose(got, plain(x, mask), atol=1e-4)  # the ensemble is not the single pass
    if mask is not None:
        known = mask.expand_as(x) == 0
        assert torch.equal(got[known], x[known])


# ----------------------------------------------------------------------------- CLI helpers (tests: test_restore_train_cli.py)


def _cli(capsys, *args):
    from ganforge.cli import main

    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def _save_png(path, tensor_chw):
    Image.fromarray(tensor_chw.permute(1, 2, 0).numpy()).save(path)
