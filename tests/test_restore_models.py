"""Restoration networks: parameter counts by hand, shapes at odd sizes, the residual / composite
properties of a fresh network, the PatchGAN's 70x70 receptive field, and the VGG perceptual loss."""

import math

import pytest
import torch
import torch.nn.functional as F

from ganforge.apps import restore_config
from ganforge.apps.restore_config import apply_overrides, get_preset
from ganforge.apps.restore_losses import PSNR_LOSS_EPS, VGGPerceptual, feature_matching, pixel_loss, vgg19_features
from ganforge.apps.restore_models import (
    DENOISE_ARCHS, INPAINT_ARCHS, CompletionNet, DenoiseUNet, DnCNN, InpaintUNet, PatchDiscriminator, SRResNet, build_discriminator,
    build_restorer, count_params, fill_holes,
)
from ganforge.errors import UsageError


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny nets gain nothing from a second intra-op thread, and on a busy 2-core machine its
    spin-waiting makes each conv many times slower; restored afterwards for the other modules."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def conv(c_in, c_out, k):
    """Parameters of a conv with bias."""
    return c_in * c_out * k * k + c_out


def randomize(net, seed=0, std=0.05):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * std)
    return net


# ----------------------------------------------------------------------------- parameter counts


def test_param_counts_of_the_default_widths():
    w = 64
    # SRResNet x4: head 9x9 + PReLU, 16 blocks (2 convs + PReLU), body conv, 2 shuffle stages (conv + PReLU), tail
    sr = conv(3, w, 9) + w + 16 * (2 * conv(w, w, 3) + w) + conv(w, w, 3) + 2 * (conv(w, 4 * w, 3) + w) + conv(w, 3, 3)
    assert sr == 1_532_611
    assert count_params(build_restorer(get_preset("sr-x4"))) == sr
    sr2 = sr - (conv(w, 4 * w, 3) + w)  # one shuffle stage fewer
    assert count_params(build_restorer(get_preset("sr-x2"))) == sr2
    # DnCNN, 17 layers: first conv, 15 middle, last
    dn = conv(3, w, 3) + 15 * conv(w, w, 3) + conv(w, 3, 3)
    assert count_params(build_restorer(get_preset("denoise-s25"))) == dn == 557_443
    # completion net at width 64 with 4 dilated convs
    w2, w4 = 2 * w, 4 * w
    enc = conv(4, w, 5) + conv(w, w2, 3) + conv(w2, w2, 3) + conv(w2, w4, 3) + 2 * conv(w4, w4, 3)
    dil = 4 * conv(w4, w4, 3)
    dec = 2 * conv(w4, w4, 3) + conv(w4, w2, 3) + conv(w2, w2, 3) + conv(w2, w, 3) + conv(w, w // 2, 3) + conv(w // 2, 3, 3)
    assert count_params(build_restorer(get_preset("inpaint-center"))) == enc + dil + dec
    # the U-Net: encoder 1/1, 1/2, 1/4, 1/8, dilated convs at 1/8, decoders take [upsampled, skip]
    enc = conv(4, w, 5) + conv(w, w, 3) + conv(w, w2, 3) + conv(w2, w2, 3) + conv(w2, w4, 3) + conv(w4, w4, 3) + conv(w4, w4, 3)
    dec = (conv(2 * w4, w4, 3) + conv(w4, w4, 3) + conv(w4 + w2, w2, 3) + conv(w2, w2, 3) + conv(w2 + w, w, 3)
           + conv(w, w // 2, 3) + conv(w // 2, 3, 3))
    unet = build_restorer(apply_overrides(get_preset("inpaint-center"), ["model.arch=unet"]))
    assert isinstance(unet, InpaintUNet) and count_params(unet) == enc + dil + dec == 6_590_531
    # the DRUNet-style denoiser at width 32, 2 res blocks per level: widths 32-64-128-256, 2x2 stride-2 convs
    # down, 2x2 stride-2 transposed convs up (weight c_in x c_out x 2 x 2 + bias c_out either way)
    ws = [32, 64, 128, 256]
    res = [2 * 2 * conv(c, c, 3) for c in ws]  # 2 blocks of 2 convs per level
    du = conv(3, 32, 3) + sum(res[:3]) + sum(conv(ws[i], ws[i + 1], 2) for i in range(3)) + res[3]
    du += sum(conv(ws[i + 1], ws[i], 2) for i in range(3)) + sum(res[:3]) + conv(32, 3, 3)
    net = build_restorer(get_preset("denoise-unet-s25"))
    assert isinstance(net, DenoiseUNet) and count_params(net) == du == 4_256_899
    # PatchGAN 70x70: 64-128-256-512 then one logit
    d = conv(3, 64, 4) + conv(64, 128, 4) + conv(128, 256, 4) + conv(256, 512, 4) + conv(512, 1, 4)
    assert count_params(build_discriminator(get_preset("sr-x4"))) == d == 2_764_737


# ----------------------------------------------------------------------------- super-resolution


@pytest.mark.parametrize("scale", [2, 3, 4, 8])
def test_fresh_sr_net_is_exactly_bicubic(scale):
    net = SRResNet(scale, width=8, blocks=2)
    lr = torch.rand(2, 3, 13, 17, generator=torch.Generator().manual_seed(scale))
    out = net(lr)
    assert out.shape == (2, 3, 13 * scale, 17 * scale)
    assert torch.equal(out, F.interpolate(lr, scale_factor=scale, mode="bicubic", align_corners=False))
    randomize(net)
    assert not torch.allclose(net(lr), out)


def test_sr_bicubic_base_is_close_to_matlab_imresize():
    """The in-network upscale (PyTorch bicubic, a=-0.75) vs MATLAB's (a=-0.5): close, not equal,
    on a smooth image; the residual learns the rest."""
    from ganforge.apps.degrade import imresize

    y, x = torch.meshgrid(torch.linspace(0, 1, 24), torch.linspace(0, 1, 24), indexing="ij")
    lr = torch.stack([torch.sin(3 * x + y), torch.cos(2 * y), x * y])[None] * 0.4 + 0.5
    ours = SRResNet(4, width=4, blocks=1)(lr)
    matlab = imresize(lr.double(), 4).float()
    diff = (ours - matlab)[..., 8:-8, 8:-8].abs()
    assert 0 < diff.max() < 0.01


# ----------------------------------------------------------------------------- denoising


def test_fresh_denoiser_returns_its_input_and_noise_map_is_used():
    noisy = torch.rand(2, 3, 11, 9)
    net = DnCNN(width=8, depth=4)
    assert torch.equal(net(noisy), noisy)
    mapped = DnCNN(width=8, depth=4, noise_map=True)
    with pytest.raises(ValueError, match="sigma"):
        mapped(noisy)
    randomize(mapped)
    a = mapped(noisy, torch.tensor([0.1, 0.1]))
    b = mapped(noisy, torch.tensor([0.2, 0.2]))
    assert a.shape == noisy.shape and not torch.allclose(a, b)


@pytest.mark.parametrize("size", [(11, 9), (16, 24), (37, 45)])
def test_fresh_unet_denoiser_returns_its_input_at_any_size(size):
    """Sides that are not multiples of 8 are padded inside and cropped back; the zero tail adds 0."""
    noisy = torch.rand(2, 3, *size, generator=torch.Generator().manual_seed(1))
    net = DenoiseUNet(width=4, blocks=1)
    assert torch.equal(net(noisy), noisy)
    randomize(net, std=0.1)
    out = net(noisy)
    assert out.shape == noisy.shape and not torch.allclose(out, noisy)
    mapped = randomize(DenoiseUNet(width=4, blocks=1, noise_map=True), std=0.1)
    with pytest.raises(ValueError, match="sigma"):
        mapped(noisy)
    assert not torch.allclose(mapped(noisy, torch.full((2,), 0.1)), mapped(noisy, torch.full((2,), 0.2)))


def test_unet_denoiser_sees_far_and_shifts_by_8():
    """The 1/8 level reaches far: an impulse 40 px away changes the output (DnCNN's 17 layers reach
    17 px). A shift by a multiple of 8 shifts the output with it, away from the borders (the
    receptive field of this 1-block net reaches about 50 px)."""
    net = randomize(DenoiseUNet(width=4, blocks=1), std=0.1).double()
    x = torch.rand(1, 3, 256, 256, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    poked = x.clone()
    poked[..., 128, 168] += 1.0
    assert (net(poked) - net(x))[..., 128, 128].abs().max() > 1e-9
    dn = randomize(DnCNN(width=4, depth=17), std=0.1).double()
    assert torch.equal(dn(poked)[..., 128, 128], dn(x)[..., 128, 128])
    shifted = net(x[..., 8:, 16:])  # pixel (r, c) of this is pixel (r + 8, c + 16) of x
    assert torch.allclose(shifted[..., 104:136, 104:136], net(x)[..., 112:144, 120:152], rtol=0, atol=1e-9)


def test_task_arch_names_agree_and_old_configs_load():
    assert restore_config.TASK_ARCHS["denoise"] == tuple(DENOISE_ARCHS)
    assert get_preset("denoise-s25").model.arch == ""  # the task's default, dncnn
    assert isinstance(build_restorer(get_preset("denoise-s25")), DnCNN)
    with pytest.raises(UsageError, match=r"model.arch='iizuka' is not allowed for task denoise: use one of dncnn, unet"):
        apply_overrides(get_preset("denoise-s25"), ["model.arch=iizuka"])
    with pytest.raises(UsageError, match=r"model.arch='unet' is not allowed for task sr: use one of srresnet"):
        apply_overrides(get_preset("sr-x4"), ["model.arch=unet"])
    # config.json files written before arch was per task hold "iizuka" for every task
    for preset in ("sr-x4", "denoise-s25"):
        old = restore_config.to_dict(get_preset(preset))
        old["model"]["arch"] = "iizuka"
        assert restore_config.from_dict(old).model.arch == ""
    old = restore_config.to_dict(get_preset("inpaint-center"))
    old["model"]["arch"] = "iizuka"
    assert restore_config.from_dict(old).model.arch == "iizuka"


# ----------------------------------------------------------------------------- inpainting


def test_fill_holes_by_hand():
    img = torch.tensor([[[[0.2, 0.4], [0.6, 1.0]]]]).repeat(1, 3, 1, 1)
    mask = torch.tensor([[[[0.0, 0.0], [0.0, 1.0]]]])
    assert torch.allclose(fill_holes(img, mask, "zero")[0, 0], torch.tensor([[0.2, 0.4], [0.6, 0.0]]))
    assert torch.allclose(fill_holes(img, mask, "mean")[0, 0], torch.tensor([[0.2, 0.4], [0.6, 0.4]]))  # (0.2+0.4+0.6)/3


@pytest.mark.parametrize("arch", ["iizuka", "unet"])
@pytest.mark.parametrize("fill", ["zero", "mean"])
def test_completion_net_keeps_known_pixels(fill, arch):
    g = torch.Generator().manual_seed(0)
    img = torch.rand(2, 3, 30, 22, generator=g)  # sides not multiples of 4 or 8: padded inside, cropped back
    mask = (torch.rand(2, 1, 30, 22, generator=g) > 0.7).float()
    net = INPAINT_ARCHS[arch](width=8, blocks=2, fill=fill)
    fresh = net(img, mask)
    assert torch.equal(fresh, fill_holes(img, mask, fill) * mask + img * (1 - mask))  # zero residual
    randomize(net)
    out = net(img * (1 - mask) + 0.3 * mask, mask)  # what the holes hold does not matter
    assert out.shape == img.shape
    known = mask.expand_as(img) == 0
    assert torch.equal(out[known], img[known])
    assert not torch.allclose(out[~known], fresh[~known])
    assert torch.equal(net(img, mask), out)


def test_inpaint_arch_names_agree_and_bad_arch_is_a_usage_error():
    assert restore_config.TASK_ARCHS["inpaint"] == tuple(INPAINT_ARCHS)
    cfg = get_preset("inpaint-center")  # "" = the task's default; old config.json files (no arch) load so too
    assert cfg.model.arch == "" and restore_config.arch_of(cfg) == "iizuka" and isinstance(build_restorer(cfg), CompletionNet)
    with pytest.raises(UsageError, match=r"model.arch='vit' is not allowed for task inpaint: use one of iizuka, unet"):
        apply_overrides(get_preset("inpaint-center"), ["model.arch=vit"])


def test_refine_blocks_by_hand_and_a_grown_unet_computes_what_its_source_did():
    # each refine block is two w x w 3x3 convs, at 4w (1/4) and 2w (1/2)
    for w, r in ((8, 1), (8, 3), (16, 2)):
        extra = count_params(InpaintUNet(w, 2, refine=r)) - count_params(InpaintUNet(w, 2))
        assert extra == r * 2 * (conv(4 * w, 4 * w, 3) + conv(2 * w, 2 * w, 3))
    g = torch.Generator().manual_seed(0)
    img = torch.rand(2, 3, 40, 24, generator=g)
    mask = (torch.rand(2, 1, 40, 24, generator=g) > 0.6).float()
    source = randomize(InpaintUNet(8, 2, refine=1), seed=1)  # a trained net with one refine block per level
    grown = InpaintUNet(8, 2, refine=3)
    state = grown.state_dict()
    assert sorted({k.split(".")[0] for k in set(state) - set(source.state_dict())}) == ["refine2", "refine3"]
    assert all(k.startswith(InpaintUNet.growable) for k in set(state) - set(source.state_dict()))
    grown.load_state_dict({**state, **source.state_dict()})
    assert torch.equal(grown(img, mask), source(img, mask))  # the new blocks add exactly 0
    with torch.no_grad():
        grown.refine2[2].body[2].weight.add_(0.01)  # and they are in the path once trained
    assert not torch.allclose(grown(img, mask), source(img, mask))


def test_refine_is_a_usage_error_outside_the_inpainting_unet():
    cfg = apply_overrides(get_preset("inpaint-center"), ["model.arch=unet", "model.width=8", "model.refine=2"])
    assert len(build_restorer(cfg).refine3) == 2
    for preset, extra in (("inpaint-center", []), ("denoise-s25", ["model.arch=unet"]), ("sr-x4", [])):
        with pytest.raises(UsageError, match=r"^model.refine=1 is not allowed here: it is 0, or a count of refine "
                                             r"blocks for task inpaint with model.arch=unet$"):
            apply_overrides(get_preset(preset), [*extra, "model.refine=1"])
    with pytest.raises(UsageError, match=r"^model.refine=-1 is not allowed here"):
        apply_overrides(get_preset("inpaint-center"), ["model.arch=unet", "model.refine=-1"])


# ----------------------------------------------------------------------------- discriminator


@pytest.mark.parametrize("spectral", [True, False])
def test_patchgan_shape_and_70px_receptive_field(spectral):
    D = randomize(PatchDiscriminator(width=4, layers=3, spectral_norm=spectral)).eval()
    x = torch.rand(2, 3, 140, 140, requires_grad=True)
    logits, feats = D(x, features=True)
    # 140 -> 70 -> 35 -> 17 (stride 2, k 4, p 1) -> 16 -> 15 (stride 1)
    assert logits.shape == (2 * 15 * 15,) and len(feats) == 4
    grid = logits.view(2, 15, 15)
    grid[0, 7, 7].backward()
    rows = x.grad[0].abs().sum(dim=(0, 2)).nonzero().flatten()
    cols = x.grad[0].abs().sum(dim=(0, 1)).nonzero().flatten()
    assert int(rows.max() - rows.min() + 1) == 70 and int(cols.max() - cols.min() + 1) == 70
    assert x.grad[1].abs().sum() == 0  # one image's logit depends on that image only


# ----------------------------------------------------------------------------- losses


def test_pixel_and_feature_matching_losses_by_hand():
    a, b = torch.zeros(1, 1, 2, 2), torch.tensor([[[[1.0, -1.0], [2.0, 0.0]]]])
    assert pixel_loss("l1", a, b).item() == pytest.approx(1.0)
    assert pixel_loss("l2", a, b).item() == pytest.approx(1.5)
    fm = feature_matching([a, a + 1], [b, a])
    assert fm.item() == pytest.approx((1.0 + 1.0) / 2)


def test_psnr_loss_is_minus_the_evaluators_mean_psnr_and_reweights_l2():
    from ganforge.metrics.fullref import psnr

    g = torch.Generator().manual_seed(0)
    target = torch.rand(4, 3, 8, 8, generator=g)
    # four images with errors of very different size (PSNR about 10 to 40 dB, where the 1e-8 floor is negligible)
    noise = torch.randn(4, 3, 8, 8, generator=g) * torch.tensor([0.3, 0.1, 0.03, 0.01]).view(4, 1, 1, 1)
    # kept within the evaluator's allowance for an unclamped float output (half the data range either side)
    pred = (target + noise).clamp(-0.45, 1.45).requires_grad_(True)
    loss = pixel_loss("psnr", pred, target)
    # the evaluator's per-image PSNR (data range 1), averaged in dB as the test tables are
    assert loss.item() == pytest.approx(-psnr(pred.detach(), target, data_range=1.0).double().mean().item(), abs=1e-3)
    (grad,) = torch.autograd.grad(loss, pred)
    mse = (pred.detach() - target).pow(2).flatten(1).mean(1)
    pred_l2 = pred.detach().clone().requires_grad_(True)
    (grad_l2,) = torch.autograd.grad(pixel_loss("l2", pred_l2, target), pred_l2)
    # d/dx mean_i 10 log10(mse_i + eps) = (10 / ln 10) * dl2/dx / (mse_i + eps) (l2 averages over all N images)
    expected = grad_l2 * (10 / math.log(10)) / (mse + PSNR_LOSS_EPS).view(4, 1, 1, 1)
    assert torch.allclose(grad, expected, rtol=1e-4)
    assert math.isfinite(pixel_loss("psnr", target, target).item())  # a perfect image: -80 dB, not -inf
    assert pixel_loss("psnr", target, target).item() == pytest.approx(-80.0)
    with pytest.raises(ValueError, match="l1, l2 or psnr"):
        pixel_loss("l3", pred, target)


def test_vgg_perceptual_loads_local_weights_only(tmp_path):
    from safetensors.torch import save_file

    with pytest.raises(UsageError, match="loss.perceptual_weights"):
        VGGPerceptual(tmp_path / "missing.safetensors")
    feats = vgg19_features()
    assert len(feats) == 35 and isinstance(feats[34], torch.nn.Conv2d) and feats[34].in_channels == 512
    assert sum(isinstance(m, torch.nn.Conv2d) for m in feats) == 16
    torch.manual_seed(0)
    state = {f"features.{k}": v for k, v in feats.state_dict().items()}
    save_file({**state, "classifier.0.weight": torch.zeros(2, 2)}, str(tmp_path / "vgg.safetensors"))
    vgg = VGGPerceptual(tmp_path / "vgg.safetensors")
    x = torch.rand(1, 3, 32, 32)
    assert vgg(x, x).item() == 0.0
    y = x.clone().requires_grad_(True)
    loss = vgg(y, torch.rand(1, 3, 32, 32))
    loss.backward()
    assert loss.item() > 0 and y.grad.abs().sum() > 0
    save_file({"features.0.weight": torch.zeros(1)}, str(tmp_path / "bad.safetensors"))
    with pytest.raises(UsageError, match="not a VGG19 state dict"):
        VGGPerceptual(tmp_path / "bad.safetensors")


def test_restorer_default_overlap_is_the_nets_own():
    """Without an overlap a Restorer uses the net's tile_overlap (64 for the U-Net denoiser, whose
    tiles equal the whole image at 64 px of context) or 32; an explicit one wins."""
    from ganforge.apps.restore_apply import DEFAULT_OVERLAP, Restorer

    unet_cfg, dn_cfg = get_preset("denoise-unet-s25"), get_preset("denoise-s25")
    assert Restorer(DenoiseUNet(width=4, blocks=1), unet_cfg).overlap == 64
    assert Restorer(DnCNN(width=4, depth=3), dn_cfg).overlap == DEFAULT_OVERLAP == 32
    assert Restorer(DenoiseUNet(width=4, blocks=1), unet_cfg, overlap=8).overlap == 8
    assert Restorer(InpaintUNet(width=4, blocks=4), get_preset("inpaint-center")).overlap == 160


@pytest.mark.parametrize("cls", [CompletionNet, InpaintUNet, lambda **kw: InpaintUNet(**kw, refine=1),
                                 lambda **kw: InpaintUNet(**kw, refine=3)], ids=["iizuka", "unet", "unet-refine1", "unet-refine3"])
@pytest.mark.parametrize("blocks", [1, 2])
def test_inpainting_tile_overlap_covers_the_receptive_field(cls, blocks):
    """tile_overlap is at least the receptive-field radius at every position of the 1/8 grid (the
    reach of an output pixel depends on it modulo 8), measured by the gradient of one output pixel
    with respect to the net's input; 32 px (the old default) was short, and tiled inpainting with the
    shipped model then differed from untiled by up to 58 of 255 levels in the holes."""
    net = randomize(cls(width=4, blocks=blocks), std=0.1)
    reach = 0
    for d in range(8):
        x = torch.randn(1, 4, 192, 192, requires_grad=True)
        net.tail(net.body(x))[0, :, 96 + d, 96 + d].sum().backward()
        far = (x.grad[0].abs().sum(0) > 0).nonzero() - (96 + d)
        reach = max(reach, int(far.abs().max()))
    assert net.tile_overlap >= reach
    assert net.tile_overlap - reach < 8 and net.tile_overlap % 8 == 0  # no more context than needed


def test_tiled_inpainting_equals_untiled_at_the_default_overlap():
    """A Restorer with tiles and no overlap given uses the net's tile_overlap, so the holes are filled
    as in one pass over the whole image (a float64 net; the Restorer returns float32, so equal to 1e-12)."""
    from dataclasses import replace

    from ganforge.apps.restore_apply import Restorer

    cfg = get_preset("inpaint-center")
    cfg = replace(cfg, model=replace(cfg.model, arch="unet", width=4, blocks=1))
    net = randomize(InpaintUNet(width=4, blocks=1), std=0.1).double()
    g = torch.Generator().manual_seed(3)
    x = torch.rand(1, 3, 136, 200, generator=g, dtype=torch.float64)
    m = (torch.rand(1, 1, 136, 200, generator=g) < 0.2).double()
    whole = Restorer(net, cfg)._run(torch.cat([x, m], dim=1))
    tiles = Restorer(net, cfg, tile=64)
    assert tiles.overlap == 48
    assert torch.allclose(tiles._run(torch.cat([x, m], dim=1)), whole, rtol=0, atol=1e-12)
    short = Restorer(net, cfg, tile=64, overlap=16)._run(torch.cat([x, m], dim=1))
    assert (short - whole).abs().max() > 1e-6  # less context than the reach: seams
