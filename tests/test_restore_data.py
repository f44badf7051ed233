"""Restoration data: loading photo folders, the MATLAB-bicubic shrink, and the seeded patch sampler
(determinism, equality with a per-patch reference loop, each task's degradation, the fixed validation
set). Split from test_restore_train.py, whose `photos` and `tiny` it shares."""

import json

import pytest
import torch
from PIL import Image

from ganforge.apps.degrade import imresize, make_mask, quantize, sr_degrade
from ganforge.apps.restore_config import apply_overrides
from ganforge.apps.restore_data import PatchSampler, load_photos, shrink_photos, split_photos, validation_set
from ganforge.apps.restore_train import train_restorer
from ganforge.errors import UsageError
from test_restore_models import one_thread  # noqa: F401  (autouse: one torch thread in this module too)
from test_restore_train import photos, tiny  # noqa: F401  (photos: a module-scoped fixture)


def test_folder_loading_is_recursive_and_ordered(tmp_path, photos):
    (tmp_path / "a" / "b").mkdir(parents=True)
    for i, (name, fmt) in enumerate([("z.png", "PNG"), ("a/x.jpg", "JPEG"), ("a/b/y.bmp", "BMP")]):
        Image.fromarray(photos[i].permute(1, 2, 0).numpy()).save(tmp_path / name, format=fmt)
    (tmp_path / "notes.txt").write_text("not an image")
    loaded = load_photos(str(tmp_path))
    assert [tuple(p.shape) for p in loaded] == [(3, 96, 96), (3, 72, 64), (3, 64, 80)]  # a/b/y, a/x, z
    assert torch.equal(loaded[2], photos[0])  # PNG and BMP are lossless
    with pytest.raises(UsageError, match="--data"):
        load_photos(str(tmp_path / "missing"))


def test_skimage_default_photos():
    pytest.importorskip("skimage")
    loaded = load_photos("skimage", max_images=2)
    assert len(loaded) == 2 and loaded[0].shape == (3, 512, 512) and loaded[0].dtype == torch.uint8


def test_shrink_photos_is_matlab_bicubic_rounded_to_uint8(photos):
    assert shrink_photos(photos, 1.0) is photos  # native size: the same tensors, no copy
    small = shrink_photos(photos, 0.5)
    assert [tuple(p.shape) for p in small] == [(3, 32, 40), (3, 36, 32), (3, 48, 48), (3, 32, 32), (3, 40, 36)]
    assert all(p.dtype == torch.uint8 for p in small)
    want = torch.round(quantize(imresize(photos[2][None].double() / 255, 0.5))[0] * 255).to(torch.uint8)
    assert torch.equal(small[2], want)
    # antialiased: a 2-px chequerboard (a colour detail finer than the new pixels) averages to flat grey,
    # and a flat photo stays exactly flat
    board = ((torch.arange(8)[:, None] + torch.arange(8)[None]) % 2 * 255).to(torch.uint8).expand(3, 8, 8)
    flat = torch.full((3, 9, 7), 77, dtype=torch.uint8)
    board_small, flat_small = shrink_photos([board, flat], 0.5)
    assert board_small[:, 1:-1, 1:-1].int().sub(128).abs().max() <= 1  # away from the replicated border
    assert torch.equal(flat_small, torch.full((3, 5, 4), 77, dtype=torch.uint8))


def test_training_uses_the_shrunk_photos(tmp_path, photos):
    cfg = tiny("denoise-s25", "train.total_steps=2", "data.shrink=0.5", "data.patch_size=40", "data.val_crop=0")
    with pytest.raises(UsageError, match=r"data.patch_size=40 \(e.g. \(32, 40\)\): lower data.patch_size \(or raise data.shrink\)"):
        train_restorer(cfg, runs_root=tmp_path, photos=photos)  # 64x80 becomes 32x40: smaller than a patch
    run = train_restorer(tiny("denoise-s25", "train.total_steps=2", "data.shrink=0.5", "data.patch_size=16"), runs_root=tmp_path, photos=photos)
    assert json.loads((run / "config.json").read_text())["restore"]["data"]["shrink"] == 0.5


def test_split_refuses_tiny_photos(photos):
    with pytest.raises(UsageError, match="data.patch_size=90"):
        split_photos(photos, 1, 90)
    with pytest.raises(UsageError, match="data.val_images=5"):
        split_photos(photos, 5, 32)


@pytest.mark.parametrize("preset", ["sr-x4", "denoise-blind", "inpaint-free"])
def test_sampler_is_deterministic(photos, preset):
    cfg = tiny(preset)
    a, b, c = (PatchSampler(photos, cfg, seed=s) for s in (3, 3, 4))
    for _ in range(2):
        x, y, z = a.sample(), b.sample(), c.sample()
        for field in ("inp", "target", "mask", "sigma"):
            u, v = getattr(x, field), getattr(y, field)
            assert (u is None and v is None) or torch.equal(u, v)
        assert not torch.equal(x.target, z.target)


def loop_reference_batches(photos, cfg, seed, n_batches):
    """The sampler as first written (and as the measured runs of docs/RESTORATION_training.md drew
    their batches): a Python loop cropping, flipping and rotating one patch at a time, then the
    task's degradation with add_noise per image. The gathered sampler must reproduce it bit for bit."""
    from ganforge.apps.degrade import add_noise
    from ganforge.apps.restore_config import mask_kinds
    from ganforge.apps.restore_models import fill_holes

    g, p, d = torch.Generator().manual_seed(seed), cfg.data.patch_size, cfg.degrade
    rand = lambda high: int(torch.randint(high, (), generator=g))  # noqa: E731
    out = []
    for _ in range(n_batches):
        crops = []
        for _ in range(cfg.train.batch_size):
            photo = photos[rand(len(photos))]
            top, left = rand(photo.shape[-2] - p + 1), rand(photo.shape[-1] - p + 1)
            crop = photo[:, top : top + p, left : left + p]
            flip, rot = rand(2), rand(4)
            crop = crop.flip(-1) if flip else crop
            crops.append(torch.rot90(crop, rot, dims=(-2, -1)) if cfg.data.rotate else crop)
        target = torch.stack(crops).float() / 255.0
        if cfg.task == "sr":
            out.append((sr_degrade(target, d.scale), target, None, None))
        elif cfg.task == "denoise":
            n = len(target)
            sig = (d.sigma_min + (d.sigma - d.sigma_min) * torch.rand(n, generator=g, dtype=torch.float64)) if d.blind \
                else torch.full((n,), float(d.sigma), dtype=torch.float64)
            noisy = torch.cat([add_noise(target[i : i + 1], float(s), g) for i, s in enumerate(sig.tolist())])
            out.append((noisy, target, None, (sig / 255.0).float()))
        else:
            kinds = mask_kinds(cfg)
            picks = torch.randint(len(kinds), (len(target),), generator=g).tolist() if len(kinds) > 1 else [0] * len(target)
            mask = torch.cat([make_mask(kinds[k], 1, *target.shape[-2:], g) for k in picks])
            out.append((fill_holes(target, mask, "zero"), target, mask, None))
    return out


@pytest.mark.parametrize("preset,extra", [("sr-x4", ()), ("denoise-s25", ()), ("denoise-blind", ("data.patch_size=31",)),
                                          ("inpaint-free", ()), ("inpaint-center", ("data.rotate=false",))])
def test_gathered_sampler_equals_the_per_patch_loop(photos, preset, extra):
    # mixed photo sizes (photos[3] is 64 x 64), an odd patch side (31: numel not a multiple of 16,
    # where a batched randn would draw another stream), flips-only and two-kind masks
    cfg = tiny(preset, "train.batch_size=6", *extra)
    sampler = PatchSampler(photos, cfg, seed=5)
    for ref in loop_reference_batches(photos, cfg, 5, 3):
        got = sampler.sample()
        for name, want in zip(("inp", "target", "mask", "sigma"), ref):
            have = getattr(got, name)
            assert (have is None and want is None) or torch.equal(have, want), name


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_sampler_on_cuda_matches_cpu(photos):
    for preset in ("sr-x4", "denoise-blind", "inpaint-free"):
        cfg = tiny(preset)
        cpu, gpu = PatchSampler(photos, cfg, seed=2).sample(), PatchSampler(photos, cfg, seed=2, device="cuda").sample()
        # the same uint8 pixels; CUDA's `x / 255.0` multiplies by the reciprocal, so the float may
        # differ from the CPU's correctly rounded quotient in the last bit (seen on an H200)
        assert gpu.target.is_cuda and torch.equal((gpu.target.cpu() * 255).round(), (cpu.target * 255).round())
        assert (gpu.target.cpu() - cpu.target).abs().max() <= 1e-7
        # the float32 resize matmul may round differently on the GPU: within one 8-bit level
        assert (gpu.inp.cpu() - cpu.inp).abs().max() <= 1 / 255 + 1e-6


def test_sr_batch_is_sr_degrade_of_the_patch(photos):
    b = PatchSampler(photos, tiny("sr-x4"), seed=0).sample()
    assert b.target.shape == (4, 3, 32, 32) and b.inp.shape == (4, 3, 8, 8)
    assert torch.equal(b.inp, sr_degrade(b.target, 4))
    assert torch.equal(b.target * 255, (b.target * 255).round())  # patches are the uint8 photo pixels


def test_patches_are_crops_of_flipped_or_rotated_photos(photos):
    cfg = tiny("sr-x4", "data.patch_size=64", "train.batch_size=8")
    b = PatchSampler(photos[3:4], cfg, seed=1).sample()  # one 64x64 photo: every patch is all of it
    photo = photos[3].float() / 255
    variants = [torch.rot90(p, k, dims=(-2, -1)) for p in (photo, photo.flip(-1)) for k in range(4)]
    for patch in b.target:
        assert any(torch.equal(patch, v) for v in variants)


def test_rotate_false_gives_flips_only_from_the_same_random_stream(photos):
    cfg = tiny("inpaint-center", "data.patch_size=64", "train.batch_size=8")
    upright = apply_overrides(cfg, ["data.rotate=false"])
    b = PatchSampler(photos[3:4], upright, seed=1).sample()  # one 64x64 photo: every patch is all of it
    photo = photos[3].float() / 255
    assert all(torch.equal(p, photo) or torch.equal(p, photo.flip(-1)) for p in b.target)
    assert any(not torch.equal(p, photo) for p in b.target)
    # the same draws as with rotations: un-rotating the rotated batch's patches gives this batch
    rotated = PatchSampler(photos[3:4], cfg, seed=1).sample()
    assert torch.equal(b.mask, rotated.mask)
    for p, r in zip(b.target, rotated.target):
        assert any(torch.equal(p, torch.rot90(r, -k, dims=(-2, -1))) for k in range(4))


def test_pad_shifts_a_photo_as_large_as_the_patch(photos):
    # one 64x64 photo, 64 px patches: without data.pad every patch is the whole photo (tested above);
    # with pad 4 a patch is a 64 px window of the reflect-padded 72 px photo, flipped or rotated
    cfg = tiny("inpaint-center", "data.patch_size=64", "train.batch_size=16", "data.pad=4")
    b = PatchSampler(photos[3:4], cfg, seed=1).sample()
    padded = torch.nn.functional.pad(photos[3][None].double(), (4,) * 4, mode="reflect")[0]  # (3, 72, 72) reference
    windows = [padded[:, t : t + 64, l : l + 64] for t in range(9) for l in range(9)]
    variants = [torch.rot90(p, k, dims=(-2, -1)) for w in windows for p in (w, w.flip(-1)) for k in range(4)]
    pixels = (b.target.double() * 255).round()  # (16, 3, 64, 64) back on the 8-bit scale
    for patch in pixels:
        assert any(torch.equal(patch, v) for v in variants)
    unshifted = variants[(4 * 9 + 4) * 8 : (4 * 9 + 5) * 8]  # the window at (4, 4): the photo itself
    assert any(all(not torch.equal(p, v) for v in unshifted) for p in pixels)  # some patch has moved
    with pytest.raises(UsageError, match=r"data.pad=64 needs photos larger than 64 px .*lower data.pad"):
        PatchSampler(photos[3:4], apply_overrides(cfg, ["data.pad=64"]), seed=1)
    with pytest.raises(UsageError, match="data.pad"):
        apply_overrides(cfg, ["data.pad=-1"])


def test_channel_shuffle_permutes_rgb_and_leaves_the_stream_alone_when_off(photos):
    cfg = tiny("inpaint-center", "train.batch_size=24", "data.augment=false")
    plain = PatchSampler(photos, cfg, seed=3)
    shuffled = PatchSampler(photos, apply_overrides(cfg, ["data.channel_shuffle=true"]), seed=3)
    seen = set()
    for _ in range(2):
        draws_plain, draws_shuf = plain.draws(), shuffled.draws()
        assert (draws_plain[:, 4] == 0).all()  # off: no draw, order 0 (identity)
        seen |= set(draws_shuf[:, 4].tolist())
    assert seen == set(range(6))
    # the same crop, channels in the drawn order: patch[c] = crop[orders[order, c]]
    a, b = PatchSampler(photos, cfg, seed=3), PatchSampler(photos, apply_overrides(cfg, ["data.channel_shuffle=true"]), seed=3)
    d = b.draws()
    b.g.manual_seed(3)
    got = b.patches()
    for i, (k, top, left, _, order) in enumerate(d.tolist()):
        crop = photos[k][:, top : top + 32, left : left + 32].float() / 255
        assert torch.equal(got[i], crop[[int(c) for c in b.orders[order]]])
    assert torch.equal(a.sample().target, PatchSampler(photos, cfg, seed=3).sample().target)


def test_denoise_noise_level(photos):
    b = PatchSampler(photos, tiny("denoise-s25", "train.batch_size=16"), seed=0).sample()
    noise = (b.inp - b.target) * 255
    assert noise.std().item() == pytest.approx(25.0, rel=0.03)
    assert abs(noise.mean().item()) < 0.5
    assert b.inp.min() < 0 or b.inp.max() > 1  # unclipped, as the evaluation protocol
    blind = PatchSampler(photos, tiny("denoise-blind", "train.batch_size=16"), seed=0).sample()
    per_image = ((blind.inp - blind.target) * 255).flatten(1).std(dim=1)
    assert torch.allclose(per_image, blind.sigma * 255, rtol=0.06, atol=0.3)
    assert 0 <= blind.sigma.min() and blind.sigma.max() <= 55 / 255 and blind.sigma.std() > 0


def test_inpaint_batch_has_holes_of_the_configured_kind(photos):
    b = PatchSampler(photos, tiny("inpaint-center", "degrade.mask_kinds=center"), seed=0).sample()
    assert torch.equal(b.mask, make_mask("center", 4, 32, 32, torch.Generator()))
    assert torch.equal(b.inp, b.target * (1 - b.mask))
    free = PatchSampler(photos, tiny("inpaint-free"), seed=0).sample()
    assert free.mask.shape == (4, 1, 32, 32) and 0 < free.mask.mean() < 1


def test_validation_set_is_fixed(photos):
    cfg = tiny("denoise-s25")
    a, b = validation_set(photos[:2], cfg), validation_set(photos[:2], cfg)
    assert [x.target.shape[-1] for x in a] == [48, 48] and torch.equal(a[1].inp, b[1].inp)


