"""User-facing --out rules and input ranges: one line and exit 2 on bad input, checked before any
work is done, and nothing the user made is replaced without --overwrite (nor deleted with it)."""

import pytest

from ganforge.cli import main

FAST = ["--set", "train.total_steps=2", "--set", "train.progress=false", "--set", "train.sample_grid=4",
        "--set", "checkpoint.every_steps=0", "--set", "model.g_width=8", "--set", "model.d_width=8",
        "--set", "data.max_images=64", "--set", "train.batch_size=16"]


def run_cli(capsys, *args):
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line_error(capsys, *args) -> str:
    code, out, err = run_cli(capsys, *args)
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("INFO ")]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, (code, out, err)
    return lines[0]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    path = tmp_path_factory.mktemp("runs") / "base"
    assert main(["train", "--preset", "dcgan-mnist", "--out", str(path), *FAST]) == 0
    return path


# ---------------------------------------------------------------- 1. sample into a folder


def test_sample_overwrite_refuses_a_folder_it_would_leave_mixed(capsys, run, tmp_path):
    out = tmp_path / "f10"
    assert run_cli(capsys, "sample", run, "--n", 10, "--out", out)[0] == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    line = one_line_error(capsys, "sample", run, "--n", 4, "--seed", 5, "--out", out, "--overwrite")
    assert "holds 6 image file(s) this call would not replace" in line and "empty or new folder" in line
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # nothing written, nothing deleted
    # the same names: --overwrite replaces them all, no mix
    code, stdout, err = run_cli(capsys, "sample", run, "--n", 10, "--seed", 5, "--out", out, "--overwrite")
    assert code == 0 and "wrote 10 images" in stdout, err
    assert sorted(p.name for p in out.iterdir()) == sorted(before)
    assert any(p.read_bytes() != before[p.name] for p in out.iterdir())


def test_sample_folder_holding_other_files_only_is_fine_with_overwrite(capsys, run, tmp_path):
    out = tmp_path / "f"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert run_cli(capsys, "sample", run, "--n", 3, "--out", out)[0] == 2  # not empty: --overwrite needed
    assert run_cli(capsys, "sample", run, "--n", 3, "--out", out, "--overwrite")[0] == 0
    assert (out / "notes.txt").read_text() == "mine" and len(list(out.glob("*.png"))) == 3


# ---------------------------------------------------------------- 4. huge and odd numbers


@pytest.mark.parametrize("args,needle", [
    (["--n", "100000000000", "--out", "x.npz"], "--n 100000000000: the number of images must be an integer from 1 to 1,000,000"),
    (["--n", "99999999999999999999999", "--out", "x.npz"], "--n 99999999999999999999999"),
    (["--n", "0", "--out", "x.npz"], "--n 0"),
    (["--seed", "99999999999999999999999", "--out", "x.npz"], "99999999999999999999999 is not in the range 0<=x<=9223372036854775807"),
    (["--seed", "-1", "--out", "x.npz"], "-1 is not in the range"),
])
def test_sample_ranges(capsys, run, tmp_path, monkeypatch, args, needle):
    monkeypatch.chdir(tmp_path)
    assert needle in one_line_error(capsys, "sample", run, *args)
    assert not (tmp_path / "x.npz").exists()


def test_eval_seed_range(capsys, run):
    assert "is not in the range 0<=x<=4294967294" in one_line_error(  # numpy's 32-bit seeds (config.MAX_EVAL_SEED)
        capsys, "eval", run, "--seed", "99999999999999999999999")


@pytest.mark.parametrize("sets,needle", [
    (["train.seed=99999999999999999999999"], "train.seed=99999999999999999999999 is out of range"),
    (["model.z_dim=100000000"], "model.z_dim=100000000 is too large: use at most 4096"),
    (["model.g_width=100000"], "model.g_width=100000 is too large: use at most 4096"),
    # under the width cap, but a conv G multiplies its width: counted on the meta device, never allocated
    (["model.g_width=4096"], "parameters: at most 1,073,741,824"),
])
def test_train_ranges_before_anything_is_built(capsys, tmp_path, sets, needle):
    args = [a for s in sets for a in ("--set", s)]
    assert needle in one_line_error(capsys, "train", "--preset", "keras-dcgan-mnist", *args, "--out", tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_bench_model_size(capsys):
    assert "parameters: at most" in one_line_error(
        capsys, "bench", "sample", "--preset", "keras-dcgan-mnist", "--batch", 1, "--set", "model.g_width=4096")


# ---------------------------------------------------------------- 5. minibatch-stddev group


def test_mbstd_group_that_does_not_divide_the_batch_is_refused_before_a_run_folder(capsys, tmp_path):
    out = tmp_path / "mb3"
    line = one_line_error(capsys, "train", "--preset", "dcgan-mnist", "--set", "model.mbstd_group=3",
                          "--set", "train.batch_size=8", "--out", out)
    assert "model.mbstd_group=3" in line and "train.batch_size=8" in line
    assert not out.exists()
    line = one_line_error(capsys, "bench", "train", "--preset", "dcgan-mnist", "--batch", 8, "--set", "model.mbstd_group=3")
    assert "model.mbstd_group=3" in line


# ---------------------------------------------------------------- 6. --dry-run checks --out as the run does


def test_dry_run_checks_out_like_the_real_run(capsys, run, tmp_path):
    line = one_line_error(capsys, "train", "--out", run, "--dry-run")
    assert "already exists and is not empty" in line
    (tmp_path / "afile").write_text("x")
    assert "cannot create --out" in one_line_error(capsys, "train", "--out", tmp_path / "afile" / "r", "--dry-run")
    assert "is a file" in one_line_error(capsys, "train", "--out", tmp_path / "afile", "--dry-run")
    assert "cannot create run folder root" in one_line_error(capsys, "train", "--runs-root", tmp_path / "afile", "--dry-run")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run_cli(capsys, "train", "--out", empty, "--dry-run")[0] == 0
    assert run_cli(capsys, "train", "--out", tmp_path / "new" / "r", "--dry-run")[0] == 0
    assert not (tmp_path / "new").exists()  # a dry run creates nothing


def test_dry_run_checks_the_data_and_the_state_to_resume_and_writes_nothing(capsys, tmp_path):
    """--dry-run goes as far as the first step: the data (labels, size against the batch), eval.ref and,
    for --resume, the newest valid state; a corrupt state is passed over but not set aside."""
    import numpy as np
    from PIL import Image

    folder = tmp_path / "unlabelled"
    folder.mkdir()
    for i in range(4):
        Image.fromarray(np.full((28, 28), 60 * i, np.uint8)).save(folder / f"{i}.png")
    line = one_line_error(capsys, "train", "--preset", "cgan-mnist", "--data", folder, "--set", "train.batch_size=4", "--dry-run")
    assert "model.num_classes=10 needs labelled data" in line
    (tmp_path / "one").mkdir()
    folder.rename(tmp_path / "one" / "class")  # a single class folder is unlabelled too: the error says so
    line = one_line_error(capsys, "train", "--preset", "cgan-mnist", "--data", tmp_path / "one", "--dry-run")
    assert "one sub-folder per class (at least 2; images in the root or in a single folder are unlabelled)" in line
    (tmp_path / "one" / "class").rename(folder)
    assert "is larger than the dataset (4 images)" in one_line_error(capsys, "train", "--data", folder, "--dry-run")
    line = one_line_error(capsys, "train", "--set", "eval.every=2", "--set", f"eval.ref={folder / '0.png'}", "--dry-run")
    assert "eval.ref" in line
    run = tmp_path / "r"
    assert main(["train", "--out", str(run), *FAST, "--set", "train.total_steps=4", "--set", "checkpoint.every_steps=2",
                 "--set", "checkpoint.keep_last=2"]) == 0
    states = sorted((run / "checkpoints").glob("state-*.pt"))
    assert len(states) == 2
    states[-1].write_bytes(states[-1].read_bytes()[:-10])  # the newest state damaged
    before = {p.relative_to(run): p.stat().st_mtime_ns for p in run.rglob("*")}
    line = one_line_error(capsys, "train", "--resume", run, "--set", "train.total_steps=1", "--dry-run")
    assert "is at step 2, past train.total_steps=1" in line  # the step of the valid state it would resume
    code, out, err = run_cli(capsys, "train", "--resume", run, "--set", "train.total_steps=6", "--dry-run")
    assert code == 0 and f"would resume {run}" in err, err
    assert {p.relative_to(run): p.stat().st_mtime_ns for p in run.rglob("*")} == before  # no .corrupt, no trim


def test_real_run_refuses_a_bad_out_before_training(capsys, tmp_path):
    (tmp_path / "afile").write_text("x")
    assert "cannot create --out" in one_line_error(capsys, "train", "--out", tmp_path / "afile" / "r", *FAST)


# ---------------------------------------------------------------- 7. empty and conflicting values


@pytest.mark.parametrize("args,needle", [
    (["presets", "--show", ""], "unknown preset ''"),
    (["train", "--preset", "", "--dry-run"], "unknown preset ''"),
    (["train", "--data", "", "--dry-run"], "--data '' is empty"),
    (["train", "--data", "  ", "--dry-run"], "is empty"),
    (["train", "--data", "digits", "--set", "data.source=tiny", "--dry-run"],
     "--data 'digits' and --set data.source='tiny' name different datasets"),
])
def test_empty_and_conflicting_values(capsys, args, needle):
    assert needle in one_line_error(capsys, *args)


def test_data_and_the_same_data_source_agree(capsys):
    code, out, err = run_cli(capsys, "train", "--data", "digits", "--set", "data.source=digits", "--preset", "dcgan-mnist", "--dry-run")
    assert code == 0 and '"source": "digits"' in out, err


# ---------------------------------------------------------------- 2. evaluator fit --out


@pytest.mark.parametrize("existing", ["clf.safetensors", "clf.json"])
def test_evaluator_fit_refuses_existing_out_before_fitting(capsys, tmp_path, monkeypatch, existing):
    import ganforge.evaluators as evaluators

    calls = []
    monkeypatch.setattr(evaluators, "fit_mnist_clf", lambda out, **kw: calls.append(out) or {"sha256": "0" * 64, "test_accuracy": None})
    (tmp_path / existing).write_text("the user's")
    out = tmp_path / "clf.safetensors"
    line = one_line_error(capsys, "evaluator", "fit", "mnist-clf", "--epochs", 1, "--out", out)
    assert existing in line and "--overwrite" in line and not calls
    assert (tmp_path / existing).read_text() == "the user's"
    code, _, err = run_cli(capsys, "evaluator", "fit", "mnist-clf", "--epochs", 1, "--out", out, "--overwrite")
    assert code == 0 and calls == [out], err


def test_evaluator_fit_out_must_be_safetensors(capsys, tmp_path):
    assert "must end in .safetensors" in one_line_error(capsys, "evaluator", "fit", "mnist-clf", "--out", tmp_path / "c.pt")


def test_evaluator_fit_default_cache_path_is_not_replaced_silently(capsys, tmp_path, monkeypatch):
    import ganforge.evaluators as evaluators

    monkeypatch.setattr(evaluators, "user_weights_dir", lambda: tmp_path)
    monkeypatch.setattr(evaluators, "fit_mnist_clf", lambda out, **kw: pytest.fail("fitted"))
    (tmp_path / "mnist-clf.safetensors").write_text("fitted before")
    assert "--overwrite" in one_line_error(capsys, "evaluator", "fit", "mnist-clf")


# ---------------------------------------------------------------- 3. modes --out


def test_modes_out_is_checked_before_training(capsys, tmp_path):
    args = ["modes", "--benchmark", "ring8", "--method", "vanilla", "--trials", 1, "--steps", 5]
    out = tmp_path / "mo1"
    assert run_cli(capsys, *args, "--out", out)[0] == 0
    plot = out / "ring8-vanilla.png"
    before = plot.read_bytes()
    line = one_line_error(capsys, *args, "--out", out)
    assert "already holds ring8-vanilla.png" in line and "--overwrite" in line
    assert plot.read_bytes() == before
    assert run_cli(capsys, *args, "--out", out, "--overwrite")[0] == 0
    afile = tmp_path / "afile.txt"
    afile.write_text("x")
    assert "is a file" in one_line_error(capsys, *args, "--out", afile)
    assert "is a file" in one_line_error(capsys, *args, "--out", afile / "sub")
    assert afile.read_text() == "x"


def test_modes_stacked_existing_trial_names_what_modes_offers(capsys, tmp_path):
    trial = tmp_path / "mo" / "runs" / "stacked-mnist-vanilla-seed0"
    trial.mkdir(parents=True)
    (trial / "config.json").write_text("{}")
    line = one_line_error(capsys, "modes", "--benchmark", "stacked-mnist", "--method", "vanilla", "--trials", 1,
                          "--steps", 1, "--out", tmp_path / "mo", "--overwrite")
    assert "ganforge modes --rescore" in line and str(trial) in line
    assert "continue it with --resume" not in line  # train's own advice; modes has no --resume
