"""inception-v3-fid: the architecture against pytorch-fid's state-dict layout, the preprocessing
against hand-computed values, weight-file checks, and (where torch-fidelity imports) features
equal to torch-fidelity's FeatureExtractorInceptionV3 on the same weights file."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ganforge.errors import UsageError
from ganforge.evaluators.inception import KNOWN_SHA256, FIDInceptionV3, build_fid_inception
from ganforge.io import sha256_file
from ganforge.metrics.extractors import load_extractor, preprocess_inception, tf1_resize_bilinear


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One intra-op thread: on a shared 2-core machine two OpenMP threads made Inception 14x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

# ---------------------------------------------------------------------------------------------
# The layout of pytorch-fid's pt_inception-2015-12-05-6726825d.pth, written out from torchvision's
# Inception3(num_classes=1008, aux_logits=False) with pytorch-fid's FIDInceptionA/C/E blocks
# (which change the forward pass only). Every entry is a conv: (name, in, out, kh, kw); each has
# <name>.conv.weight (out, in, kh, kw) and <name>.bn.{weight, bias, running_mean, running_var} (out,).


def _a(p, c_in, pool):
    return [(f"{p}.branch1x1", c_in, 64, 1, 1), (f"{p}.branch5x5_1", c_in, 48, 1, 1), (f"{p}.branch5x5_2", 48, 64, 5, 5),
            (f"{p}.branch3x3dbl_1", c_in, 64, 1, 1), (f"{p}.branch3x3dbl_2", 64, 96, 3, 3),
            (f"{p}.branch3x3dbl_3", 96, 96, 3, 3), (f"{p}.branch_pool", c_in, pool, 1, 1)]


def _c(p, c7):
    return [(f"{p}.branch1x1", 768, 192, 1, 1), (f"{p}.branch7x7_1", 768, c7, 1, 1), (f"{p}.branch7x7_2", c7, c7, 1, 7),
            (f"{p}.branch7x7_3", c7, 192, 7, 1), (f"{p}.branch7x7dbl_1", 768, c7, 1, 1),
            (f"{p}.branch7x7dbl_2", c7, c7, 7, 1), (f"{p}.branch7x7dbl_3", c7, c7, 1, 7),
            (f"{p}.branch7x7dbl_4", c7, c7, 7, 1), (f"{p}.branch7x7dbl_5", c7, 192, 1, 7), (f"{p}.branch_pool", 768, 192, 1, 1)]


def _e(p, c_in):
    return [(f"{p}.branch1x1", c_in, 320, 1, 1), (f"{p}.branch3x3_1", c_in, 384, 1, 1), (f"{p}.branch3x3_2a", 384, 384, 1, 3),
            (f"{p}.branch3x3_2b", 384, 384, 3, 1), (f"{p}.branch3x3dbl_1", c_in, 448, 1, 1),
            (f"{p}.branch3x3dbl_2", 448, 384, 3, 3), (f"{p}.branch3x3dbl_3a", 384, 384, 1, 3),
            (f"{p}.branch3x3dbl_3b", 384, 384, 3, 1), (f"{p}.branch_pool", c_in, 192, 1, 1)]


PYTORCH_FID_CONVS = [
    ("Conv2d_1a_3x3", 3, 32, 3, 3), ("Conv2d_2a_3x3", 32, 32, 3, 3), ("Conv2d_2b_3x3", 32, 64, 3, 3),
    ("Conv2d_3b_1x1", 64, 80, 1, 1), ("Conv2d_4a_3x3", 80, 192, 3, 3),
    *_a("Mixed_5b", 192, 32), *_a("Mixed_5c", 256, 64), *_a("Mixed_5d", 288, 64),
    ("Mixed_6a.branch3x3", 288, 384, 3, 3), ("Mixed_6a.branch3x3dbl_1", 288, 64, 1, 1),
    ("Mixed_6a.branch3x3dbl_2", 64, 96, 3, 3), ("Mixed_6a.branch3x3dbl_3", 96, 96, 3, 3),
    *_c("Mixed_6b", 128), *_c("Mixed_6c", 160), *_c("Mixed_6d", 160), *_c("Mixed_6e", 192),
    ("Mixed_7a.branch3x3_1", 768, 192, 1, 1), ("Mixed_7a.branch3x3_2", 192, 320, 3, 3),
    ("Mixed_7a.branch7x7x3_1", 768, 192, 1, 1), ("Mixed_7a.branch7x7x3_2", 192, 192, 1, 7),
    ("Mixed_7a.branch7x7x3_3", 192, 192, 7, 1), ("Mixed_7a.branch7x7x3_4", 192, 192, 3, 3),
    *_e("Mixed_7b", 1280), *_e("Mixed_7c", 2048),
]


def expected_layout() -> dict[str, tuple[int, ...]]:
    out = {}
    for name, c_in, c_out, kh, kw in PYTORCH_FID_CONVS:
        out[f"{name}.conv.weight"] = (c_out, c_in, kh, kw)
        for leaf in ("weight", "bias", "running_mean", "running_var"):
            out[f"{name}.bn.{leaf}"] = (c_out,)
    out["fc.weight"], out["fc.bias"] = (1008, 2048), (1008,)
    return out


def test_state_dict_matches_pytorch_fid_layout():
    model = FIDInceptionV3()
    own = {k: tuple(v.shape) for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    want = expected_layout()
    assert len(PYTORCH_FID_CONVS) == 94
    assert own == want  # same names, same shapes, nothing extra (no AuxLogits)
    # torchvision's inception_v3 has 27,161,264 parameters; minus AuxLogits (98,560 + 2,459,136 +
    # 769,000 = 3,326,696), plus 8 more classes (8 x 2049 = 16,392) gives 23,850,960. The 94 batch
    # norms hold 17,216 channels, i.e. 34,432 running statistics: 23,885,392 stored floats in all,
    # 95.5 MB as float32, which fits the 95,628,359-byte .pth (the rest is pickle overhead).
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params == 23_850_960
    assert sum(int(np.prod(s)) for s in want.values()) == 23_885_392
    assert sum(c_out for _, _, c_out, _, _ in PYTORCH_FID_CONVS) == 17_216
    assert KNOWN_SHA256.startswith("6726825d")  # the torch.hub convention behind the file name
    # the TF graph's quirks: padding-free average pools in A/C/E, a max pool in the last E block
    assert model.Mixed_7b.pool == "avg" and model.Mixed_7c.pool == "max"


# ---------------------------------------------------------------------------------------------
# Preprocessing


def test_tf1_resize_hand_values():
    """A 2x2 image blown up to 299x299: sample position s = i * 2/299, no half-pixel offset."""
    img = torch.tensor([[[[0.0, 255.0], [128.0, 64.0]]]])  # (1, 1, 2, 2)
    out = tf1_resize_bilinear(img, (299, 299))[0, 0].double().numpy()
    s = float(np.float32(2 / 299))  # the scale, rounded to float32 as TF and torch-fidelity do
    # Positions >= 1 (i >= 150) clamp to the last pixel: the border repeats, nothing is mirrored.
    assert out[0, 0] == 0 and out[0, 298] == 255 and out[298, 0] == 128 and out[298, 298] == 64
    assert out[0, 150] == 255 and out[150, 0] == 128
    assert out[0, 149] == pytest.approx(255 * 149 * s, abs=1e-3)  # 254.147: still between pixels 0 and 1
    fy, fx = 100 * s, 50 * s
    want = (1 - fy) * (1 - fx) * 0 + (1 - fy) * fx * 255 + fy * (1 - fx) * 128 + fy * fx * 64
    assert out[100, 50] == pytest.approx(want, abs=1e-3)


def test_tf1_resize_matches_reference_loop_and_is_identity_at_299():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (5, 7)).astype(np.float64)
    ref = np.empty((299, 299))
    for i in range(299):  # straight from TF's resize_bilinear (legacy, align_corners=False)
        y = i * 5 / 299
        y0, fy = int(np.floor(y)), y - np.floor(y)
        for j in range(299):
            x = j * 7 / 299
            x0, fx = int(np.floor(x)), x - np.floor(x)
            y1, x1 = min(y0 + 1, 4), min(x0 + 1, 6)
            top = img[y0, x0] + (img[y0, x1] - img[y0, x0]) * fx
            bottom = img[y1, x0] + (img[y1, x1] - img[y1, x0]) * fx
            ref[i, j] = top + (bottom - top) * fy
    out = tf1_resize_bilinear(torch.from_numpy(img)[None, None].float(), (299, 299))[0, 0].numpy()
    np.testing.assert_allclose(out, ref, atol=2e-3)  # float32 arithmetic on 0..255
    same = torch.rand(1, 3, 299, 299) * 255
    assert torch.equal(tf1_resize_bilinear(same, (299, 299)), same)
    # Not PyTorch's half-pixel bilinear (pytorch-fid's resize): the two really differ.
    half_pixel = F.interpolate(torch.from_numpy(img)[None, None].float(), size=(299, 299), mode="bilinear", align_corners=False)
    assert (half_pixel[0, 0].numpy() - ref).__abs__().max() > 1.0


def test_inception_normalisation():
    x = torch.tensor([0, 128, 255], dtype=torch.uint8).view(1, 3, 1, 1).expand(1, 3, 2, 2).contiguous()
    out = preprocess_inception(x, torch.float32)  # (1, 3, 299, 299)
    assert out.shape == (1, 3, 299, 299)
    assert out[0, :, 7, 11].tolist() == [-1.0, 0.0, 0.9921875]  # (x - 128) / 128 as the TF graph


# ---------------------------------------------------------------------------------------------
# Weights files


def _informative_random_inception(seed: int = 0) -> FIDInceptionV3:
    """Random weights with batch-norm statistics measured on random images, so that the features
    still depend on the input (with default statistics every image maps to the same vector)."""
    torch.manual_seed(seed)
    model = FIDInceptionV3()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.momentum = None  # cumulative average over the calibration pass
                m.reset_running_stats()
                m.bias.normal_(0, 0.2)
        model.train().features(torch.rand(2, 3, 299, 299) * 2 - 1)
    return model.eval()


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory):
    path = tmp_path_factory.mktemp("inception") / "random-inception.pth"
    model = _informative_random_inception()
    torch.save(model.state_dict(), path)
    return path, sha256_file(path), model


def test_weights_are_required_and_never_downloaded(monkeypatch, tmp_path):
    monkeypatch.delenv("GANFORGE_INCEPTION_WEIGHTS", raising=False)
    with pytest.raises(UsageError, match="--inception-weights PATH"):
        load_extractor("inception-v3-fid")
    with pytest.raises(UsageError, match=r"not found: pass --inception-weights"):
        load_extractor("inception-v3-fid", weights=tmp_path / "pt_inception-2015-12-05-6726825d.pth")


def test_weights_hash_is_checked(random_weights, tmp_path, monkeypatch):
    path, sha, _ = random_weights
    with pytest.raises(UsageError, match=r"`ganforge eval --inception-sha256` \(training evaluates with pytorch-fid.s file only\)"):
        load_extractor("inception-v3-fid", weights=path)  # not pytorch-fid's file: refused by default
    with pytest.raises(UsageError, match="is required"):
        load_extractor("inception-v3-fid", weights=path, sha256="0" * 64)
    hub_name = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
    hub_name.symlink_to(path)
    with pytest.raises(UsageError, match="its name claims a hash starting 6726825d"):
        load_extractor("inception-v3-fid", weights=hub_name)
    monkeypatch.setenv("GANFORGE_INCEPTION_WEIGHTS", str(path))
    ex = load_extractor("inception-v3-fid", sha256=sha)
    assert ex.info()["weights_sha256"] == sha and ex.info()["resize"] == "tf1-bilinear"


def test_state_dict_problems_are_usage_errors(random_weights):
    _, _, model = random_weights
    state = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    build_fid_inception(state)  # pytorch-fid files may lack the BN counters: fine
    bad = {k: v for k, v in state.items() if k != "fc.bias"}
    bad["AuxLogits.fc.weight"] = torch.zeros(1008, 768)
    with pytest.raises(UsageError, match=r"missing fc\.bias; unexpected AuxLogits\.fc\.weight"):
        build_fid_inception(bad)
    with pytest.raises(UsageError, match="wrong shapes fc.weight"):
        build_fid_inception({**state, "fc.weight": torch.zeros(1000, 2048)})


def test_features_probabilities_and_batching(random_weights):
    path, sha, model = random_weights
    ex = load_extractor("inception-v3-fid", weights=path, sha256=sha)
    x = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8)
    feats, probs = ex.extract(x, batch_size=2)
    assert feats.shape == (3, 2048) and feats.dtype == np.float32 and probs.shape == (3, 1008)
    assert feats.std(axis=0).mean() > 1e-3  # the calibrated random net tells images apart
    with torch.no_grad():
        f = model.features(preprocess_inception(x, torch.float32))
        unbiased = (f @ model.fc.weight.T).double().softmax(1)  # IS uses logits without the fc bias
    np.testing.assert_allclose(feats, f.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(probs, unbiased.numpy(), atol=1e-4)  # peaked: logits span hundreds
    f1, _ = ex.extract(x, batch_size=1)
    np.testing.assert_allclose(f1, feats, rtol=1e-5, atol=1e-4)
    with pytest.raises(UsageError, match="expects 3-channel"):
        ex.extract(torch.zeros(2, 1, 28, 28, dtype=torch.uint8))


def test_same_features_as_torch_fidelity(random_weights):
    try:
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    except Exception as exc:  # not installed, or torchvision (which it imports) does not load
        pytest.skip(f"torch-fidelity is not importable here ({type(exc).__name__}: {exc})")
    path, sha, _ = random_weights
    ref = FeatureExtractorInceptionV3("inception-v3-compat", ["2048", "logits_unbiased"], feature_extractor_weights_path=str(path))
    ex = load_extractor("inception-v3-fid", weights=path, sha256=sha)
    for shape in [(2, 3, 32, 32), (1, 3, 299, 299), (2, 3, 64, 48)]:
        x = torch.randint(0, 256, shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            f_ref, logits_ref = ref(x)
        feats, probs = ex.extract(x)
        np.testing.assert_allclose(feats, f_ref.numpy(), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(probs, logits_ref.double().softmax(1).numpy(), atol=1e-6)
