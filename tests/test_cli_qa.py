"""A QA pass over sample / eval / evaluator fit / modes: bad input is one line and exit code 2, found
before any training, fitting or generating (an output that cannot be written is refused up front, so
no work is lost), sizes are capped, kept trials that do not match their config are refused, a run
whose config.json is corrupt is not silently scored against another reference, and a generator with
NaN weights is refused instead of writing black images."""

import json
import os
import shutil

import pytest
import torch

import ganforge.modes.bench as bench
from ganforge.cli import main
from ganforge.errors import UsageError
from test_cli_outputs import run_cli

FAST = ["--set", "train.total_steps=2", "--set", "train.progress=false", "--set", "train.sample_grid=4",
        "--set", "checkpoint.every_steps=0", "--set", "model.g_width=8", "--set", "model.d_width=8",
        "--set", "data.max_images=64", "--set", "train.batch_size=16"]
needs_proc = pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux's /proc (a folder that takes no new files)")


def one_line_error(capsys, *args) -> str:
    code, out, err = run_cli(capsys, *args)
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith(("INFO ", "WARNING "))]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, (code, out, err)
    return lines[0]


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)  # nothing lands in the checkout
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)  # modes --threads sets it


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    path = tmp_path_factory.mktemp("runs") / "base"
    assert main(["train", "--preset", "dcgan-mnist", "--out", str(path), *FAST]) == 0
    return path


@pytest.fixture
def afile(tmp_path):
    path = tmp_path / "in.png"
    path.write_bytes(b"not a folder")
    return path


@pytest.fixture
def no_training(monkeypatch):
    def trained(*args, **kwargs):
        raise AssertionError("trained despite a bad input")

    monkeypatch.setattr(bench, "train_ensemble", trained)


MODES = ["modes", "--benchmark", "ring8", "--method", "vanilla", "--trials", 1, "--steps", 2]


# ---------------------------------------------------------------- 1. modes --save / --out that cannot be written


def test_modes_save_or_out_under_a_file_is_refused_before_training(capsys, tmp_path, afile, no_training):
    line = one_line_error(capsys, *MODES, "--out", tmp_path / "m8", "--save", afile / "sv")
    assert f"--save '{afile / 'sv'}' cannot be created: {afile} is a file" in line
    assert "cannot be created" in one_line_error(capsys, *MODES, "--out", afile / "m8")
    assert not (tmp_path / "m8").exists() and afile.read_bytes() == b"not a folder"


@needs_proc
def test_modes_save_or_out_in_an_unwritable_folder_is_refused_before_training(capsys, tmp_path, no_training):
    assert "--save '/proc/sv' cannot be written: /proc" in one_line_error(
        capsys, *MODES, "--out", tmp_path / "m8", "--save", "/proc/sv")
    assert "--out /proc/m8 cannot be written" in one_line_error(capsys, *MODES, "--out", "/proc/m8")


def test_run_benchmark_checks_its_plot_folder_before_training(afile, no_training):
    with pytest.raises(UsageError, match="is a file"):
        bench.run_benchmark("ring8", "vanilla", trials=1, steps=2, out=afile / "plots")


def test_the_write_probe_leaves_nothing_behind(tmp_path):
    from ganforge.io import check_can_write

    (tmp_path / "keep").mkdir()
    before = sorted(os.listdir(tmp_path / "keep"))
    assert check_can_write(tmp_path / "keep" / "new" / "deeper", "--out x") == tmp_path / "keep" / "new" / "deeper"
    assert sorted(os.listdir(tmp_path / "keep")) == before


# ---------------------------------------------------------------- 2. a run's corrupt config.json


@pytest.mark.parametrize("text", ['{"run": ', "[]", '{"run": 5}'])
def test_eval_of_a_run_with_a_corrupt_config_is_an_error_naming_it(capsys, run, tmp_path, text):
    broken = tmp_path / "broken"
    shutil.copytree(run, broken)
    (broken / "config.json").write_text(text)
    line = one_line_error(capsys, "eval", broken, "--n", 20, "--metrics", "fid")
    assert str(broken / "config.json") in line and "--evaluator and --ref" in line


def test_a_corrupt_run_config_keeps_both_named_defaults_and_bare_generators_working(run, tmp_path):
    from ganforge.metrics.run_defaults import resolve_defaults

    broken = tmp_path / "broken"
    shutil.copytree(run, broken)
    (broken / "config.json").write_text('{"run": ')
    assert resolve_defaults(broken, "mnist-clf", "mnist5k") == ("mnist-clf", "mnist5k")  # nothing to read
    # a saved generator folder in a folder whose config.json is someone else's: scored as a bare generator
    other = tmp_path / "other"
    shutil.copytree(run / "model", other / "gen")
    for text in ('{"run": ', "[1]", '{"not": "ganforge"}'):
        (other / "config.json").write_text(text)
        assert resolve_defaults(other / "gen") == ("mnist-clf", None)
    assert resolve_defaults(run)[0] == "mnist-clf"  # the intact run: its own evaluator and data


# ---------------------------------------------------------------- 3. size caps


@pytest.mark.parametrize("args, needle", [
    (["--set", "z_dim=99999999999"], "z_dim must be an integer from 1 to 4096, got 99999999999"),
    (["--set", "g_width=99999999999"], "g_width must be an integer from 1 to 4096"),
    (["--set", "d_width=5000"], "d_width must be an integer from 1 to 4096"),
    (["--set", "g_depth=1000"], "g_depth must be an integer from 1 to 64"),
    (["--set", "batch_size=10000000"], "batch_size must be an integer from 2 to 65536"),
    (["--set", "unroll_steps=1000"], "unroll_steps must be an integer from 0 to 100"),
    (["--set", "g_width=4096", "--set", "g_depth=64", "--set", "d_width=4096"], "parameters together: at most 1,073,741,824"),
    (["--set", "batch_size=65536", "--set", "pack=64"], "values: at most 1,073,741,824"),
    (["--threads", 100000], "--threads must be from 1 to 1024, got 100000"),
])
def test_modes_sizes_are_capped_before_anything_is_built(capsys, tmp_path, no_training, args, needle):
    assert needle in one_line_error(capsys, *MODES, *args, "--out", tmp_path / "m")
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("args, needle", [
    (["--trials", 99999999999], "--trials must be an integer from 1 to 1000, got 99999999999"),
    (["--trials", 2, "--seed", 2**63 - 1], "use --seed 9223372036854775806 or less"),
    (["--benchmark", "stacked-mnist", "--trials", 5000], "--trials must be an integer from 1 to 1000"),
    (["--all", "--trials", 1001], "--trials must be an integer from 1 to 1000"),
])
def test_modes_trials_are_capped(capsys, tmp_path, no_training, args, needle):
    assert needle in one_line_error(capsys, "modes", "--steps", 2, *args, "--out", tmp_path / "m")


def test_toy_config_refuses_a_non_integer_size():
    from ganforge.modes.toy import ToyConfig

    with pytest.raises(UsageError, match="g_width must be an integer from 1 to 4096, got 2.5"):
        ToyConfig(g_width=2.5).check()
    with pytest.raises(UsageError, match="lr_g must be a finite number > 0, got 'x'"):
        ToyConfig(lr_g="x").check()


def test_kid_subsets_are_capped(capsys, run):
    import numpy as np

    from ganforge.metrics import MetricOptions
    from ganforge.metrics.distribution import MAX_KID_SUBSETS, kid

    line = one_line_error(capsys, "eval", run, "--n", 20, "--kid-subsets", 99999999999, "--metrics", "kid")
    assert "--kid-subsets" in line and "99999999999" in line and str(MAX_KID_SUBSETS) in line
    with pytest.raises(UsageError, match="kid_subsets must be at most 10,000"):
        MetricOptions(kid_subsets=10**11).check()
    with pytest.raises(UsageError, match="subsets must be an integer from 1 to 10,000"):
        kid(np.zeros((4, 2)), np.zeros((4, 2)), subsets=10**11, subset_size=2)


# ---------------------------------------------------------------- 4. sample / evaluator fit outputs


@pytest.mark.parametrize("name", ["xdir", "x.png", "x.npz"])
def test_sample_out_under_a_file_is_refused_before_loading(capsys, run, afile, name):
    line = one_line_error(capsys, "sample", run, "--n", 4, "--out", afile / name)
    assert f"--out {afile / name} cannot be created: {afile} is a file" in line and "File exists" not in line


@needs_proc
def test_sample_out_in_an_unwritable_folder_is_refused(capsys, run):
    assert "--out /proc/xdir cannot be written" in one_line_error(capsys, "sample", run, "--n", 4, "--out", "/proc/xdir")


def test_sample_into_a_new_nested_folder_still_works(capsys, run, tmp_path):
    code, out, err = run_cli(capsys, "sample", run, "--n", 2, "--out", tmp_path / "a" / "b" / "grid.png")
    assert code == 0 and (tmp_path / "a" / "b" / "grid.png").is_file(), err


@pytest.mark.parametrize("where", ["afile", "proc"])
def test_evaluator_fit_out_that_cannot_be_written_is_refused_before_fitting(capsys, monkeypatch, afile, where):
    import ganforge.evaluators as evaluators

    if where == "proc" and not os.path.isdir("/proc/self"):
        pytest.skip("needs /proc")
    monkeypatch.setattr(evaluators, "fit_mnist_clf", lambda out, **kw: pytest.fail("fitted"))
    out = afile / "e.safetensors" if where == "afile" else "/proc/e.safetensors"
    assert f"--out {out} cannot be" in one_line_error(capsys, "evaluator", "fit", "mnist-clf", "--epochs", 1, "--out", out)


def test_fit_functions_check_their_out_path_before_fitting(afile):
    from ganforge.evaluators import fit_mnist_clf

    with pytest.raises(UsageError, match="fit_mnist_clf: out_path .* cannot be created"):
        fit_mnist_clf(afile / "w.safetensors", epochs=1)


# ---------------------------------------------------------------- 5. kept trials that do not match their config


@pytest.fixture(scope="module")
def kept(tmp_path_factory):
    folder = tmp_path_factory.mktemp("kept") / "trials"
    bench.run_benchmark("ring8", "vanilla", trials=1, steps=2, save=folder, overrides={"g_width": 8, "d_width": 8})
    return folder


def _edit(kept, tmp_path, tensors=None, config=None):
    from safetensors.torch import load_file, save_file

    copy = tmp_path / "edited"
    shutil.copytree(kept, copy)
    if tensors:
        t = load_file(str(copy / "trials.safetensors"))
        tensors(t)
        save_file(t, str(copy / "trials.safetensors"))
    if config:
        doc = json.loads((copy / "config.json").read_text())
        config(doc)
        (copy / "config.json").write_text(json.dumps(doc))
    return copy


@pytest.mark.parametrize("tensors, config, needle", [
    (lambda t: t.pop("bn.rm0"), None, "1 tensor(s) missing, e.g. bn.rm0"),
    (None, lambda d: d.update(seeds=[0, 1]), "g.w0 has shape (1, 2, 8), where 2 trial(s) (its seeds) of its config give (2, 2, 8)"),
    (None, lambda d: d["config"].update(g_width=16), "where 1 trial(s)"),
    (None, lambda d: d["config"].update(drs_steps=5), "tensor(s) missing, e.g. drs_d."),
    (lambda t: t.update({"drs_d.ow": torch.zeros(1, 8, 1)}), None, "it does not describe, e.g. drs_d.ow (drs_steps is 0"),
    (lambda t: t.update({"g.w0": t["g.w0"].long()}), None, "g.w0 is torch.int64"),
])
def test_rescore_refuses_trials_that_do_not_match_their_config(capsys, kept, tmp_path, tensors, config, needle):
    copy = _edit(kept, tmp_path, tensors, config)
    line = one_line_error(capsys, "modes", "--rescore", copy)
    assert f"{copy / 'trials.safetensors'} does not match {copy / 'config.json'}: " in line and needle in line, line


@pytest.mark.parametrize("config, needle", [
    (lambda d: d.update(seeds=[]), "lacks a valid 'seeds' entry"),
    (lambda d: d["config"].update(g_width="wide"), "in its config.json, g_width must be an integer"),
    (lambda d: d.update(config=[1]), "lacks a valid"),
])
def test_rescore_refuses_a_broken_config(capsys, kept, tmp_path, config, needle):
    assert needle in one_line_error(capsys, "modes", "--rescore", _edit(kept, tmp_path, config=config))


def test_rescore_of_an_intact_save_still_works(kept):
    from ganforge.modes.saved import rescore_trials

    assert len(rescore_trials(kept).trials) == 1


# ---------------------------------------------------------------- 6. NaN weights


@pytest.fixture
def nan_run(run, tmp_path):
    from safetensors.torch import load_file, save_file

    copy = tmp_path / "nan"
    shutil.copytree(run, copy)
    path = copy / "model" / "generator_ema.safetensors"
    state = load_file(str(path))
    key = next(k for k, v in state.items() if v.is_floating_point())
    state[key][...] = float("nan")
    save_file(state, str(path))
    return copy


def test_sample_refuses_a_generator_with_nan_weights(capsys, nan_run, tmp_path):
    line = one_line_error(capsys, "sample", nan_run, "--n", 4, "--out", tmp_path / "g.png")
    assert "generator_ema.safetensors are not finite" in line and not (tmp_path / "g.png").exists()
    code, _, err = run_cli(capsys, "sample", nan_run, "--n", 4, "--out", tmp_path / "g.png", "--no-ema")
    assert code == 0, err  # the raw weights are whole


def test_eval_refuses_a_generator_with_nan_weights(capsys, nan_run):
    line = one_line_error(capsys, "eval", nan_run, "--n", 20, "--metrics", "fid")
    assert "generator_ema.safetensors are not finite" in line


def test_check_finite_weights_reads_buffers_too():
    from ganforge.training.checkpoint import check_finite_weights

    net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    check_finite_weights(net, "w.safetensors")
    net[1].running_var[0] = float("inf")
    with pytest.raises(UsageError, match=r"w.safetensors are not finite .*1 tensor\(s\), e.g. 1.running_var"):
        check_finite_weights(net, "w.safetensors")


# ---------------------------------------------------------------- 7. hints and empty paths


def test_missing_evaluator_weights_point_to_the_cli_command(capsys, run, afile):
    line = one_line_error(capsys, "eval", run, "--n", 20, "--metrics", "fid", "--evaluator-weights", afile)
    assert "ganforge evaluator fit mnist-clf" in line and "benchmarks/" not in line


@pytest.mark.parametrize("args, needle", [(["RUN", "--ref", ""], "--ref '' is empty"), (["", "--ref", "mnist5k"], "TARGET '' is empty"),
                                          (["RUN", "--ref", "  "], "--ref '  ' is empty")])
def test_eval_refuses_an_empty_path(capsys, run, args, needle):
    args = [run if a == "RUN" else a for a in args]
    assert needle in one_line_error(capsys, "eval", *args, "--n", 20, "--metrics", "fid")
