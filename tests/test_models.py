"""Networks: shapes for every arch/resolution/option, reference parameter counts, and the
numbers behind each layer (TF-same padding, attention, CBN, projection, packing, mbstd, SN)."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ganforge.errors import UsageError
from ganforge.models import ARCHS, build_discriminator, build_generator, check_model_config
from ganforge.models.config import ModelConfig
from ganforge.nn import (
    ConditionalBatchNorm,
    Conv2dSame,
    ConvTranspose2dSame,
    MinibatchStdDev,
    SelfAttention2d,
    weight_layers,
)

TINY = dict(z_dim=8, g_width=4, d_width=4)
RESOLUTIONS = {
    "mlp": (4, 28),
    "keras-dcgan": (8, 28),
    "dcgan": (16, 28, 32, 56, 64, 112, 128),
    "resnet": (32, 64, 128),
}
CASES = [(arch, res) for arch, ress in RESOLUTIONS.items() for res in ress]


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def run_pair(cfg: ModelConfig, batch: int = 4):
    """Build G and D, generate a batch and judge it; check every interface promise."""
    torch.manual_seed(0)
    G, D = build_generator(cfg), build_discriminator(cfg)
    assert (G.z_dim, G.num_classes, G.resolution, G.channels) == (
        cfg.z_dim, cfg.num_classes, cfg.resolution, cfg.channels)
    y = torch.randint(0, cfg.num_classes, (batch,)) if cfg.num_classes else None
    x = G(torch.randn(batch, cfg.z_dim), y)
    assert x.shape == (batch, cfg.channels, cfg.resolution, cfg.resolution)
    assert x.abs().max() <= 1.0 and torch.isfinite(x).all()
    logits = D(x, y)
    assert logits.shape == (batch // cfg.pack,)
    assert torch.isfinite(logits).all()
    # every parameter of both nets is wired into the graph
    logits.sum().backward()
    for name, p in [*G.named_parameters(), *D.named_parameters()]:
        assert p.grad is not None, name
    return G, D


@pytest.mark.parametrize("arch,res", CASES)
def test_shapes_and_range(arch, res):
    base = ModelConfig(arch=arch, resolution=res, **TINY)
    run_pair(base)
    run_pair(dataclasses.replace(base, num_classes=3, channels=3))
    run_pair(dataclasses.replace(
        base, pack=2, mbstd_group=2, d_batchnorm=False, d_dropout=0.2,
        g_spectral_norm=True, d_spectral_norm=True))
    for r in ARCHS[arch].attention_sizes(res):
        run_pair(dataclasses.replace(base, attention_res=r))
    sizes = ARCHS[arch].attention_sizes(res)
    if sizes:  # attention + conditional + mbstd together
        G, D = run_pair(dataclasses.replace(base, attention_res=sizes[-1], num_classes=2, mbstd_group=4))
        assert sum(isinstance(m, SelfAttention2d) for m in G.modules()) == 1
        assert sum(isinstance(m, SelfAttention2d) for m in D.modules()) == 1


def test_attention_sizes_per_arch():
    sizes = {(a, r): ARCHS[a].attention_sizes(r) for a, r in CASES}
    assert sizes[("mlp", 28)] == ()
    assert sizes[("keras-dcgan", 28)] == (7, 14)
    assert sizes[("dcgan", 64)] == (4, 8, 16, 32)
    assert sizes[("dcgan", 56)] == (7, 14, 28)
    assert sizes[("resnet", 32)] == (8, 16)
    assert sizes[("resnet", 128)] == (4, 8, 16, 32, 64)


def test_dcgan_width_convention():
    G = build_generator(ModelConfig(arch="dcgan", resolution=128, g_width=2, z_dim=8))
    convs = [m for m in G.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [c.out_channels for c in convs] == [16, 16, 8, 4, 2, 1]  # 8w cap, then halving
    G = build_generator(ModelConfig(arch="dcgan", resolution=28, g_width=2, z_dim=8))
    convs = [m for m in G.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [c.kernel_size[0] for c in convs] == [7, 4, 4]  # 1 → 7 → 14 → 28


def test_keras_dcgan_matches_tensorflow_tutorial_param_counts():
    cfg = ModelConfig(arch="keras-dcgan", resolution=28, channels=1, z_dim=100, g_width=64, d_width=64)
    G, D = build_generator(cfg), build_discriminator(cfg)
    # Keras model.summary(): G "Total params: 2,330,944", of which 25,472 non-trainable (the BN
    # moving mean/variance of 12544 + 128 + 64 features, 2 each). PyTorch keeps those as buffers.
    running = sum(b.numel() for n, b in G.named_buffers() if n.endswith(("running_mean", "running_var")))
    assert running == 25_472
    assert n_params(G) == 2_305_472  # Keras "Trainable params"
    assert n_params(G) + running == 2_330_944
    assert n_params(D) == 212_865  # Keras D "Total params" (all trainable)
    # the Keras layer semantics
    bns = [m for m in G.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert [(b.momentum, b.eps) for b in bns] == [(0.01, 1e-3)] * 3
    assert all(m.negative_slope == 0.3 for m in [*G.modules(), *D.modules()] if isinstance(m, nn.LeakyReLU))
    # glorot-uniform: the Dense kernel (100 → 12544) lies within ±sqrt(6 / (100 + 12544))
    dense = G.body[0].weight
    limit = math.sqrt(6 / (100 + 12544))
    assert dense.abs().max() <= limit
    assert dense.std().item() == pytest.approx(limit / math.sqrt(3), rel=0.02)


def test_dcgan_matches_pytorch_example_param_counts_and_init():
    cfg = ModelConfig(arch="dcgan", resolution=64, channels=3, z_dim=100, g_width=64, d_width=64)
    G, D = build_generator(cfg), build_discriminator(cfg)
    assert n_params(G) == 3_576_704  # PyTorch DCGAN example netG (nz=100, ngf=64, nc=3)
    assert n_params(D) == 2_765_568 + 1  # netD; our linear head (= its final conv) has a bias
    w = [m.weight for m in G.modules() if isinstance(m, nn.ConvTranspose2d)][1]  # 512 → 256
    assert w.mean().item() == pytest.approx(0.0, abs=1e-3)
    assert w.std().item() == pytest.approx(0.02, rel=0.02)


def test_tf_same_conv_sizes_and_asymmetric_padding():
    torch.manual_seed(0)
    conv = Conv2dSame(1, 2, 5, stride=2)
    x = torch.randn(2, 1, 28, 28)
    h = conv(x)
    assert h.shape == (2, 2, 14, 14)
    assert Conv2dSame(2, 2, 5, stride=2)(h).shape == (2, 2, 7, 7)
    # TF pads 1 top/left, 2 bottom/right
    ref = F.conv2d(F.pad(x, (1, 2, 1, 2)), conv.weight, conv.bias, stride=2)
    torch.testing.assert_close(h, ref, rtol=0, atol=0)
    up1 = ConvTranspose2dSame(3, 2, 5, stride=1)
    up2 = ConvTranspose2dSame(2, 1, 5, stride=2)
    z = up1(torch.randn(2, 3, 7, 7))
    assert z.shape == (2, 2, 7, 7)
    assert up2(z).shape == (2, 1, 14, 14)
    assert up2(torch.randn(2, 2, 14, 14)).shape == (2, 1, 28, 28)


def test_transposed_same_conv_is_adjoint_of_same_conv():
    # TF's Conv2DTranspose(padding="same") is defined as the adjoint (gradient) of a SAME conv:
    # <convT(a), b> == <a, conv(b)> with the same kernel. PyTorch's padding=2/output_padding=1
    # gives the right size but not this operator (it is shifted by a pixel).
    torch.manual_seed(0)
    conv = Conv2dSame(3, 4, 5, stride=2, bias=False)  # weight (4, 3, 5, 5): 3 → 4 channels
    convT = ConvTranspose2dSame(4, 3, 5, stride=2, bias=False)  # weight (4, 3, 5, 5): 4 → 3
    with torch.no_grad():
        convT.weight.copy_(conv.weight)
    a, b = torch.randn(2, 4, 7, 7, dtype=torch.float64), torch.randn(2, 3, 14, 14, dtype=torch.float64)
    conv, convT = conv.double(), convT.double()
    lhs, rhs = (convT(a) * b).sum(), (a * conv(b)).sum()
    assert lhs.item() == pytest.approx(rhs.item(), rel=1e-10)
    naive = F.conv_transpose2d(a, convT.weight, stride=2, padding=2, output_padding=1)
    assert abs((naive * b).sum().item() - rhs.item()) > 1e-3


def test_self_attention_identity_at_gamma_zero_and_reference_values():
    torch.manual_seed(0)
    att = SelfAttention2d(16)
    x = torch.randn(2, 16, 7, 7)
    torch.testing.assert_close(att(x), x, rtol=0, atol=0)
    with torch.no_grad():
        att.gamma.fill_(0.7)
    # reference: explicit softmax attention over pooled keys/values
    q = att.theta(x).flatten(2)  # (N, 2, 49)
    k = F.max_pool2d(att.phi(x), 2, ceil_mode=True).flatten(2)  # (N, 2, 16)
    v = F.max_pool2d(att.g(x), 2, ceil_mode=True).flatten(2)  # (N, 8, 16)
    weights = torch.softmax(torch.einsum("ncq,nck->nqk", q, k), dim=-1)
    assert weights.sum(-1).allclose(torch.ones(2, 49))
    out = torch.einsum("nqk,nck->ncq", weights, v).reshape(2, 8, 7, 7)
    torch.testing.assert_close(att(x), x + 0.7 * att.o(out), rtol=1e-5, atol=1e-6)


def test_conditional_batchnorm():
    torch.manual_seed(0)
    cbn, bn = ConditionalBatchNorm(5, 3), nn.BatchNorm2d(5, affine=False)
    x, y = torch.randn(6, 5, 4, 4), torch.tensor([0, 1, 2, 0, 1, 2])
    torch.testing.assert_close(cbn(x, y), bn(x))  # gain 1, bias 0 at init
    with torch.no_grad():
        cbn.gain[1] = 2.0
        cbn.bias[1] = torch.arange(5.0)
    out, ref = cbn(x, y), bn(x)
    torch.testing.assert_close(out[y != 1], ref[y != 1])
    torch.testing.assert_close(out[y == 1], 2 * ref[y == 1] + torch.arange(5.0).view(1, 5, 1, 1))
    flat = ConditionalBatchNorm(5, 3, spatial=False)
    torch.testing.assert_close(flat(x[:, :, 0, 0], y), nn.BatchNorm1d(5, affine=False)(x[:, :, 0, 0]))


@pytest.mark.parametrize("arch,res", [("mlp", 8), ("keras-dcgan", 28), ("dcgan", 32), ("resnet", 32)])
def test_projection_discriminator(arch, res):
    torch.manual_seed(0)
    cfg = ModelConfig(arch=arch, resolution=res, num_classes=4, d_spectral_norm=True, **TINY)
    D = build_discriminator(cfg).eval()
    x = torch.rand(3, 1, res, res) * 2 - 1
    y1, y2 = torch.tensor([0, 1, 2]), torch.tensor([3, 3, 0])
    with torch.no_grad():
        h = D.features(x)  # (3, F)
        embed = D.head.embed.weight  # effective (spectral-normalised) table
        diff = D(x, y1) - D(x, y2)
        expected = ((embed[y1] - embed[y2]) * h).sum(1)
        torch.testing.assert_close(diff, expected, rtol=1e-4, atol=1e-5)
        assert diff.abs().min() > 0


@pytest.mark.parametrize("arch,res", [("mlp", 8), ("keras-dcgan", 8), ("dcgan", 16), ("resnet", 32)])
def test_pack_equals_channel_concatenated_pairs(arch, res):
    torch.manual_seed(0)
    D = build_discriminator(ModelConfig(arch=arch, resolution=res, channels=3, pack=2, **TINY)).eval()
    x = torch.randn(4, 3, res, res)
    with torch.no_grad():
        out = D(x)
        pairs = torch.stack([torch.cat([x[0], x[1]]), torch.cat([x[2], x[3]])])  # (2, 6, R, R)
        ref = D.head(D.features(pairs))
    assert out.shape == (2,)
    torch.testing.assert_close(out, ref, rtol=0, atol=0)
    with pytest.raises(ValueError, match="pack"):
        D(x[:3])


def test_minibatch_stddev_hand_computed():
    # samples 0, 2 form one group and 1, 3 the other (StyleGAN grouping with N=4, G=2)
    x = torch.tensor([[0.0, 0.0], [1.0, 1.0], [2.0, 4.0], [3.0, 7.0]]).view(4, 1, 1, 2)
    out = MinibatchStdDev(2)(x)
    assert out.shape == (4, 2, 1, 2)
    torch.testing.assert_close(out[:, :1], x)
    # group {0,2}: stds |0-2|/2 = 1 and |0-4|/2 = 2 → 1.5; group {1,3}: 1 and 3 → 2.0
    expected = torch.tensor([1.5, 2.0, 1.5, 2.0]).view(4, 1, 1, 1).expand(4, 1, 1, 2)
    torch.testing.assert_close(out[:, 1:], expected, rtol=0, atol=1e-6)
    # group larger than the batch → one group of all 4: per-feature std of [0,1,2,3] and [0,1,4,7]
    one = MinibatchStdDev(8)(x.flatten(1))  # the (N, F) form used by the MLP
    assert one.shape == (4, 3)
    want = (torch.tensor([0.0, 1, 2, 3]).std(unbiased=False) + torch.tensor([0.0, 1, 4, 7]).std(unbiased=False)) / 2
    torch.testing.assert_close(one[:, 2], want.expand(4), rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="divide"):
        MinibatchStdDev(2)(x[:3])


def test_labels_are_required_exactly_for_conditional_nets():
    cond = ModelConfig(arch="dcgan", resolution=16, num_classes=3, **TINY)
    G, D = build_generator(cond), build_discriminator(cond)
    with pytest.raises(ValueError, match="conditional"):
        G(torch.randn(2, 8))
    with pytest.raises(ValueError, match="conditional"):
        D(torch.randn(2, 1, 16, 16))
    with pytest.raises(ValueError, match="int64"):
        G(torch.randn(2, 8), torch.tensor([0.0, 1.0]))
    plain = dataclasses.replace(cond, num_classes=0)
    with pytest.raises(ValueError, match="unconditional"):
        build_generator(plain)(torch.randn(2, 8), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="unconditional"):
        build_discriminator(plain)(torch.randn(2, 1, 16, 16), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="shape"):
        build_discriminator(plain)(torch.randn(2, 1, 32, 32))


@pytest.mark.parametrize(
    "overrides,needle",
    [
        (dict(arch="stylegan9"), "model.arch='stylegan9' is unknown: use one of 'mlp', 'keras-dcgan'"),
        (dict(arch="dcgan", resolution=48), "model.resolution=48 is not supported by arch 'dcgan': "
                                            "use 16, 28, 32, 56, 64, 112, 128"),
        (dict(arch="resnet", resolution=48), "model.resolution=48"),
        (dict(arch="keras-dcgan", resolution=30), "model.resolution=30"),
        (dict(arch="mlp", resolution=2), "model.resolution=2"),
        (dict(arch="dcgan", resolution=32, attention_res=5), "model.attention_res=5 is not a feature-map "
                                                             "size of arch 'dcgan' at resolution 32: "
                                                             "use 0 (off), 4, 8, 16"),
        (dict(arch="dcgan", resolution=32, attention_res=32), "model.attention_res=32"),
        (dict(arch="mlp", resolution=28, attention_res=7), "use 0 (off)"),
        (dict(arch="resnet", resolution=32, attention_res=4), "use 0 (off), 8, 16"),
        (dict(pack=0), "model.pack=0"),
        (dict(pack=2, num_classes=10), "model.pack=2"),
        (dict(d_dropout=1.0), "model.d_dropout=1.0"),
    ],
)
def test_invalid_configs_raise_usage_error(overrides, needle):
    cfg = ModelConfig(**{**TINY, **overrides})
    for fn in (check_model_config, build_generator, build_discriminator):
        with pytest.raises(UsageError) as err:
            fn(cfg)
        assert needle in str(err.value) and "\n" not in str(err.value)


def test_check_model_config_accepts_defaults():
    assert check_model_config(ModelConfig()) is None


def _as_matrix(m: nn.Module) -> torch.Tensor:
    w = m.weight.detach()
    if isinstance(m, nn.ConvTranspose2d):
        w = w.transpose(0, 1)  # normalised along the output dim
    return w.reshape(w.shape[0], -1)


@pytest.mark.parametrize("arch,res", [("mlp", 8), ("keras-dcgan", 8), ("dcgan", 16), ("resnet", 32)])
def test_spectral_norm_gives_unit_largest_singular_value(arch, res):
    torch.manual_seed(0)
    sizes = ARCHS[arch].attention_sizes(res)
    cfg = ModelConfig(arch=arch, resolution=res, num_classes=3, attention_res=sizes[0] if sizes else 0,
                      g_spectral_norm=True, d_spectral_norm=True, **TINY)
    for net in (build_generator(cfg), build_discriminator(cfg)):
        layers = [m for _, m in weight_layers(net)]
        assert layers and all(hasattr(m, "parametrizations") for m in layers)
        # new raw weights (as after an optimiser step): the stored power-iteration vectors are stale
        with torch.no_grad():
            for m in layers:
                original = m.parametrizations.weight.original
                original.copy_(torch.randn_like(original))
        net.eval()  # eval: no power iteration, sigma comes from the stale vectors
        stale = [torch.linalg.matrix_norm(_as_matrix(m), ord=2).item() for m in layers]
        assert max(abs(s - 1) for s in stale) > 0.05
        net.train()
        for m in layers:
            for _ in range(300):  # each weight access in train mode runs one power iteration
                m.weight
        net.eval()
        for m in layers:
            sigma = torch.linalg.matrix_norm(_as_matrix(m), ord=2).item()
            assert sigma == pytest.approx(1.0, abs=1e-4), m
        # conditional BN gains are not weight layers: they stay at 1
        cbns = [m for m in net.modules() if isinstance(m, ConditionalBatchNorm)]
        assert all(torch.equal(c.gain, torch.ones_like(c.gain)) for c in cbns)
