"""The restoration Python API refuses bad input with one-line UsageErrors: images and masks on the
wrong scale or of the wrong type (Restorer.__call__), a noise level the model would not read, device
strings, tile / overlap types (Restorer, load_restorer), and photos or configs train_restorer cannot
use. Inputs in range keep working: the CLI's, a denoiser's unclipped noise, tiling, the self-ensemble."""

import numpy as np
import pytest
import torch

import ganforge
from ganforge.apps.degrade import add_noise
from ganforge.apps.restore_apply import Restorer, load_restorer, save_restorer
from ganforge.apps.restore_config import apply_overrides, get_preset
from ganforge.apps.restore_models import build_restorer
from ganforge.apps.restore_train import train_restorer
from ganforge.errors import UsageError
from test_restore_models import one_thread  # noqa: F401  (autouse: one torch thread in this module too)

TINY = ["model.width=8", "model.blocks=2", "train.device=cpu"]


def tiny(preset, *extra):
    return apply_overrides(get_preset(preset), [*TINY, *extra])


def restorer(preset, *extra, **kw):
    cfg = tiny(preset, *extra)
    torch.manual_seed(0)
    return Restorer(build_restorer(cfg), cfg, **kw)


def ramp(h=16, w=16):
    """(1, 3, h, w) float in [0, 1] with min exactly 0 and max exactly 1."""
    return torch.linspace(0, 1, 3 * h * w).reshape(1, 3, h, w)


def hole(h=32, w=32):
    m = torch.zeros(1, 1, h, w)
    m[..., h // 4: 3 * h // 4, w // 4: 3 * w // 4] = 1  # (1, 1, h, w), 1 = missing
    return m


# ----------------------------------------------------------------------------- images and masks


@pytest.mark.parametrize("bad,needle", [
    (lambda x: (x * 255).round().to(torch.uint8), r"got torch\.uint8: images are float \(N, 3, H, W\) in \[0, 1\]"),
    (lambda x: x * 255, r"images must be in \[0, 1\], got values from 0 to 255: divide 8-bit"),
    (lambda x: x * 2 - 1, r"images must be in \[0, 1\], got values from -1 to 1: .*\(x \+ 1\) / 2"),
    (lambda x: x + 0.2, r"got values from 0\.2 to 1\.2"),
    (lambda x: x.numpy(), r"restore needs a torch tensor, got ndarray: .*torch\.from_numpy"),
    (lambda x: torch.full_like(x, float("nan")), r"got values from nan to nan"),
], ids=["uint8", "0..255", "-1..1", "offset", "numpy", "nan"])
def test_images_on_the_wrong_scale_or_type_are_refused(bad, needle):
    r = restorer("sr-x4")
    with pytest.raises(UsageError, match=needle):
        r(bad(ramp()))


def test_inpainting_mask_on_0_255_is_refused_and_a_0_1_one_keeps_known_pixels():
    r = restorer("inpaint-center", "data.patch_size=32")
    x, m = torch.rand(1, 3, 32, 32), hole()
    with pytest.raises(UsageError, match=r"masks \(1 = missing, 0 = known\) must be in \[0, 1\], got values from 0 to 255: "
                                         r"divide a 0/255 mask image by 255"):
        r(x * (1 - m), m * 255)
    with pytest.raises(UsageError, match=r"got values from -1 to 0"):
        r(x * (1 - m), m - 1)
    with pytest.raises(UsageError, match=r"images \(their known pixels\) must be in \[0, 1\], got values from 0 to 2"):
        r(ramp(32, 32) * (1 - m) * 2, m)
    with pytest.raises(UsageError, match=r"mask tensor of shape \(1, 1, 32, 32\) \(1 = missing\), got ndarray"):
        r(x * (1 - m), m.numpy())
    y = r(x * (1 - m), m)  # a bool mask is 0/1 too
    assert torch.equal(y, r(x * (1 - m), m.bool()))
    assert torch.equal(y * (1 - m), x * (1 - m)) and 0 <= y.min() and y.max() <= 1


def test_in_range_inputs_still_run_whole_tiled_and_self_ensembled():
    """A resampling overshoot (within 0.1) passes, and the check leaves tiling and the self-ensemble
    alone: the tiled output equals the whole one where the overlap covers the net's reach."""
    x = ramp(24, 24) * 1.16 - 0.08  # [-0.08, 1.08]
    whole = restorer("sr-x4", tile=0)(x)
    tiles = restorer("sr-x4", tile=8, overlap=16)(x)
    assert whole.shape == (1, 3, 96, 96) and (tiles - whole).abs().max() < 1e-5
    ens = restorer("sr-x4", tile=8, overlap=16, self_ensemble=True)(x)
    assert ens.shape == whole.shape and 0 <= ens.min() and ens.max() <= 1


def test_a_denoiser_takes_unclipped_noise_but_not_0_255():
    """The benchmark's noisy input (add_noise, unclipped) reaches beyond [0, 1]; a denoiser accepts
    it up to 2 outside (sigma 50 here: min about -0.7), while an image on 0..255 is refused."""
    r = restorer("denoise-s25")
    noisy = add_noise(ramp(64, 64), 50, torch.Generator().manual_seed(0))
    assert noisy.min() < -0.5 and noisy.max() > 1.5
    assert r(noisy).shape == noisy.shape
    with pytest.raises(UsageError, match=r"images must be in \[0, 1\], got values from 0 to 255"):
        r(ramp() * 255)


# ----------------------------------------------------------------------------- sigma, device, types


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Model folders: a fixed sigma-25 denoiser, a blind one, a blind noise-map one and an x4 SR net."""
    root = tmp_path_factory.mktemp("models")
    out = {}
    for name, preset, extra in [("fixed", "denoise-s25", []), ("blind", "denoise-blind", []),
                                ("map", "denoise-blind", ["model.noise_map=true"]), ("sr", "sr-x4", [])]:
        cfg = tiny(preset, *extra)
        torch.manual_seed(0)
        G = build_restorer(cfg)
        with torch.no_grad():  # off the initialisation, where a residual net returns its input whatever sigma
            for q in G.parameters():
                q.add_(torch.randn_like(q) * 0.05)
        out[name] = save_restorer(root / name, cfg, G)
    return out


@pytest.mark.parametrize("model,sigma,needle", [
    ("fixed", 50, r"sigma 50 is for a denoiser trained with a noise-level map \(model\.noise_map=true\); this model was "
                  r"trained for sigma 25 and reads no level: drop --sigma"),
    ("blind", 25, r"was trained blind over sigma 0\.\.55 and reads no level"),
    ("fixed", -5, r"sigma=-5 must be a finite number > 0: the noise level on the 0\.\.255 scale"),
    ("map", 0, r"sigma=0 must be a finite number > 0"),
    ("map", "x", r"sigma='x' must be a finite number > 0"),
    ("map", float("inf"), r"sigma=inf must be a finite number > 0"),
    ("sr", 25, r"sigma=25 is the noise level of a denoiser; this is a sr model: drop sigma"),
])
def test_a_sigma_the_model_would_not_read_is_refused(models, model, sigma, needle):
    with pytest.raises(UsageError, match=needle):
        load_restorer(models[model], sigma=sigma)


def test_a_sigma_the_model_reads_is_kept(models):
    assert load_restorer(models["fixed"], sigma=25).sigma == 25.0  # its own level: accepted, as in the CLI
    assert load_restorer(models["fixed"]).sigma == 25.0
    noise_map = load_restorer(models["map"], sigma=30)
    x = ramp()
    assert noise_map.sigma == 30.0
    assert (noise_map(x) - load_restorer(models["map"], sigma=10)(x)).abs().max() > 1e-3  # the net reads the level


@pytest.mark.parametrize("device,needle", [
    ("cuda", r"device='cuda' but no CUDA device is available: use device=cpu or auto"),
    ("cuda:5", r"device='cuda:5' but no CUDA device is available"),
    ("mps", r"device='mps' is not a device: use cpu, cuda, cuda:N or auto"),
    ("gpu", r"device='gpu' is not a device"),
])
def test_device_strings_are_one_line_errors_without_cuda(models, monkeypatch, device, needle):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UsageError, match=needle):
        load_restorer(models["sr"], device=device)
    assert load_restorer(models["sr"], device="auto").device == torch.device("cpu")


def test_a_cuda_index_beyond_the_machines_is_refused(models, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(UsageError, match=r"device='cuda:5' but this machine has 1 CUDA device\(s\)"):
        load_restorer(models["sr"], device="cuda:5")


def fake_gpus(monkeypatch, capabilities):
    """A CUDA machine faked in this CPU-only torch: GPU i has compute capability capabilities[i]
    ((major, minor)); cuda:0 is current until torch.cuda.set_device. Returns the list of what was
    asked, in order: ("capability", i) and ("set_device", i)."""
    current, asked = [0], []

    def index(d):  # torch's device argument: None | int | str | torch.device; no index = the current GPU
        d = torch.device("cuda", d) if isinstance(d, int) else torch.device(d) if d is not None else None
        return current[0] if d is None or d.index is None else d.index

    def capability(d=None):
        asked.append(("capability", index(d)))
        return capabilities[index(d)]

    def set_device(d):
        asked.append(("set_device", index(d)))
        current[0] = index(d)

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: len(capabilities))
    monkeypatch.setattr(torch.cuda, "current_device", lambda: current[0])
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.cuda, "set_device", set_device)
    monkeypatch.setattr(torch.cuda, "get_device_capability", capability)
    # what the current GPU says, as torch's does: asking it about cuda:1 is the bug
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: capabilities[current[0]] >= (8, 0))
    return asked


def test_bf16_auto_asks_the_gpu_the_restorer_runs_on(monkeypatch):
    # cuda:0 a Turing (7.5: bf16 only emulated), cuda:1 an Ampere (8.0); cuda:0 current throughout
    asked = fake_gpus(monkeypatch, [(7, 5), (8, 0)])
    cfg = tiny("denoise-s25")
    for device, want in [("cuda:1", "bf16"), ("cuda:0", "fp32"), ("cuda", "fp32")]:
        net = build_restorer(cfg)
        object.__setattr__(net, "to", lambda *a, net=net, **k: net)  # no CUDA in this torch: the net stays here
        assert Restorer(net, cfg, device=device, precision="auto").precision == want, device
    # each about its own GPU; a library object leaves the current GPU alone (no set_device)
    assert asked == [("capability", 1), ("capability", 0), ("capability", 0)]


@pytest.mark.parametrize("kw,needle", [
    ({"overlap": 2.5}, r"overlap=2\.5 must be an integer >= 0"),
    ({"overlap": "4"}, r"overlap='4' must be an integer >= 0"),
    ({"overlap": True}, r"overlap=True must be an integer >= 0"),
    ({"overlap": -1}, r"overlap=-1 must be an integer >= 0"),
    ({"tile": 2.5}, r"tile=2\.5 must be an integer >= 0"),
])
def test_tile_and_overlap_must_be_integers(models, kw, needle):
    with pytest.raises(UsageError, match=needle):
        load_restorer(models["sr"], **kw)


def test_restorer_needs_a_network_and_its_config():
    cfg = tiny("sr-x4")
    with pytest.raises(UsageError, match=r"needs the network as a torch nn\.Module, got ndarray: .*load_restorer\(PATH\)"):
        Restorer(np.zeros(3), cfg)
    with pytest.raises(UsageError, match=r"needs the model's RestoreConfig, got dict"):
        Restorer(build_restorer(cfg), {"task": "sr"})


# ----------------------------------------------------------------------------- train_restorer


def _photo(shape=(3, 64, 64), dtype=torch.uint8):
    return torch.zeros(shape, dtype=dtype)


@pytest.mark.parametrize("photos,needle", [
    ([_photo(), _photo(dtype=torch.float32)], r"photos\[1\] is torch\.float32 of shape \(3, 64, 64\): photos are uint8 "
                                               r"\(3, H, W\) tensors \(RGB, 0\.\.255; float \[0, 1\] ones: \(x \* 255\)"),
    ([_photo((1, 64, 64))], r"photos\[0\] is torch\.uint8 of shape \(1, 64, 64\): .*grey \(1, H, W\): \.repeat\(3, 1, 1\)"),
    ([_photo((64, 64, 3))], r"photos\[0\] is torch\.uint8 of shape \(64, 64, 3\)"),
    ([_photo(), np.zeros((64, 64, 3), np.uint8)], r"photos\[1\] is of type ndarray, not a torch tensor: .*permute\(2, 0, 1\)"),
    ([], r"photos must be a non-empty list of uint8 \(3, H, W\) tensors, got an empty list"),
    (_photo(), r"photos must be a non-empty list .*, got a Tensor"),
], ids=["float", "grey", "hwc", "numpy", "empty", "tensor"])
def test_train_restorer_refuses_photos_it_cannot_use(tmp_path, photos, needle):
    with pytest.raises(UsageError, match=needle):
        train_restorer(tiny("denoise-s25"), out=tmp_path / "run", photos=photos, dry_run=True)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("cfg,needle", [
    (None, r"^give a RestoreConfig \(ganforge\.apps\.restore_config\.get_preset\(\.\.\.\)\) or resume=RUN$"),
    (lambda: ganforge.get_preset("dcgan-mnist"), r"cfg is a RunConfig \(a GAN config: train it with ganforge\.train\), "
                                                 r"not a RestoreConfig: give a RestoreConfig"),
    (lambda: {"task": "sr"}, r"cfg is a dict, not a RestoreConfig: .*or resume=RUN"),
], ids=["none", "gan", "dict"])
def test_train_restorer_needs_a_restore_config(tmp_path, cfg, needle):
    with pytest.raises(UsageError, match=needle):
        train_restorer(cfg() if cfg else None, out=tmp_path / "run", dry_run=True)


def test_the_cli_scores_a_fixed_level_denoiser_at_any_test_sigma_and_names_the_task_first(tmp_path, capsys):
    """denoise eval's --sigma is the test images' noise level: a net that reads no level is scored at it
    as it is (not refused as an apply --sigma would be); apply names a wrong task before its options."""
    import json

    from PIL import Image

    from ganforge.cli import main

    (tmp_path / "set").mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(tmp_path / "set" / "a.png")
    assert main(["denoise", "eval", "denoise-s25", "--data", str(tmp_path / "set"), "--sigma", "50", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["mean"]["psnr_rgb"] > 0
    code = main(["denoise", "apply", "sr-x4", str(tmp_path / "set" / "a.png"), str(tmp_path / "o.png"), "--sigma", "25"])
    assert code == 2 and "sr-x4 is a sr model: use `ganforge sr apply`" in capsys.readouterr().err
