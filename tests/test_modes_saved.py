"""Kept 2D trials (ganforge.modes.saved): a --save folder rescored at the run's own settings gives
the run's numbers exactly; another drs_percentile changes only the DRS numbers; bad use is a
one-line usage error, and nothing is overwritten."""

import json

import pytest

from ganforge.cli import main
from ganforge.errors import UsageError
from ganforge.modes.bench import run_benchmark
from ganforge.modes.saved import load_trials, rescore_trials

RUN = dict(trials=2, steps=40, seed=3, overrides={"pack": 2, "drs_steps": 20, "drs_percentile": 50.0})


@pytest.fixture(scope="module")
def kept(tmp_path_factory):
    folder = tmp_path_factory.mktemp("kept") / "trials"
    return folder, run_benchmark("ring8", "best-pack", save=folder, **RUN)


def test_rescore_reproduces_the_run_exactly(kept):
    folder, result = kept
    again = rescore_trials(folder)
    assert again.summary()["per_trial"] == result.summary()["per_trial"]
    assert [(t.modes, t.hq, t.kl) for t in again.before_drs] == [(t.modes, t.hq, t.kl) for t in result.before_drs]
    assert again.drs_acceptance == result.drs_acceptance
    meta, ens, d = load_trials(folder)
    assert meta["seeds"] == [3, 4] and meta["config"]["pack"] == 2 and meta["steps"] == 40
    assert ens.trials == 2 and d is not None and next(iter(d.values())).shape[0] == 2


def test_a_stricter_percentile_changes_only_the_drs_samples(kept):
    folder, result = kept
    strict = rescore_trials(folder, {"drs_percentile": 90.0})
    # G's own samples are the same draws; DRS accepts fewer candidates at a higher γ
    assert [t.hq for t in strict.before_drs] == [t.hq for t in result.before_drs]
    assert all(a < b for a, b in zip(strict.drs_acceptance, result.drs_acceptance))
    assert strict.overrides["drs_percentile"] == 90.0 and strict.overrides["pack"] == 2


def test_bad_use_is_a_usage_error(kept, tmp_path):
    folder, _ = kept
    with pytest.raises(UsageError, match="only --set drs_percentile"):
        rescore_trials(folder, {"drs_steps": 5})
    with pytest.raises(UsageError, match="drs_percentile must be in"):
        rescore_trials(folder, {"drs_percentile": 100.0})
    with pytest.raises(UsageError, match="no config.json"):
        rescore_trials(tmp_path)
    # a kept run is never overwritten, and the check comes before any training
    with pytest.raises(UsageError, match="not an empty folder"):
        run_benchmark("ring8", "vanilla", trials=1, steps=10**9, save=folder)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    (broken / "trials.safetensors").write_bytes(b"xx")
    with pytest.raises(UsageError, match="cannot read the saved trials"):
        rescore_trials(broken)


def test_cli_save_and_rescore(kept, capsys, tmp_path):
    folder, result = kept
    assert main(["modes", "--rescore", str(folder), "--set", "drs_percentile=50", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["per_trial"] == result.summary()["per_trial"] and out["method"] == "best-pack"
    assert main(["modes", "--rescore", str(folder), "--set", "drs_steps=5"]) == 2
    assert "only --set drs_percentile" in capsys.readouterr().err
    assert main(["modes", "--rescore", str(folder), "--save", str(tmp_path / "x")]) == 2
    assert main(["modes", "--rescore", str(folder), "--method", "vanilla", "--seed", "1"]) == 2
    assert "drop --method, --seed" in capsys.readouterr().err
    assert main(["modes", "--all", "--save", str(tmp_path / "y")]) == 2
    assert main(["modes", "--benchmark", "ring8", "--steps", "3", "--trials", "1", "--save", str(folder)]) == 2
    assert "not an empty folder" in capsys.readouterr().err
    # a plain vanilla run without DRS is kept too; rescoring it reproduces its G-only numbers
    assert main(["modes", "--benchmark", "ring8", "--steps", "3", "--trials", "1", "--out", str(tmp_path / "p"),
                 "--save", str(tmp_path / "v"), "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert main(["modes", "--rescore", str(tmp_path / "v"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["per_trial"] == first["per_trial"]
    assert main(["modes", "--rescore", str(tmp_path / "v"), "--set", "drs_percentile=10"]) == 2
    assert "had no DRS" in capsys.readouterr().err


def _drs_gamma():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "drs_gamma.py"
    spec = importlib.util.spec_from_file_location("drs_gamma", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_drs_gamma_rule_and_report(kept, capsys):
    g = _drs_gamma()
    t = lambda modes, hq, kl: {"seed": 0, "modes": modes, "hq": hq, "kl": kl, "acceptance": 0.5}  # noqa: E731
    select = {50.0: [t(8, 0.97, 0.01), t(8, 0.98, 0.01)],
              70.0: [t(8, 0.99, 0.01), t(8, 0.98, 0.02)],  # mean 0.985: the best allowed
              80.0: [t(8, 0.995, 0.01), t(8, 0.975, 0.03)],  # the same mean: the tie goes to 70
              90.0: [t(7, 1.0, 0.01), t(8, 1.0, 0.01)]}  # highest HQ but a mode lost: not allowed
    assert g.choose(select, 8, 0.05) == 70.0
    assert g.choose(select, 8, 0.005) is None  # no percentile passes the KL bound
    folder, result = kept
    assert g.main(["--select", str(folder), "--holdout", str(folder), "--percentiles", "50,90", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    at50 = report["by_percentile"]["50.0"]
    assert [x["hq"] for x in at50["per_trial"][::2]] == [x["hq"] for x in result.summary()["per_trial"]]
    assert at50["all"]["trials"] == 4 and report["method"] == "best-pack"
    assert g.main(["--select", str(folder), "--holdout", str(folder), "--percentiles", "50,x"]) == 2
    assert "--percentiles" in capsys.readouterr().err
