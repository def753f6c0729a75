"""`tune` on real code paths: Optuna trials that are real K-fold runs of a tiny timm model on generated band caches."""
import json

import optuna
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from facecurate.cli import app
from facecurate.curate.errors import InputError
from facecurate.train.toolkit.tune import DB, STUDY, tune
from facecurate.train.toolkit.tune_space import parse_space

FAST = ["--models", "test_resnet", "--img-sizes", "32", "--folds", "2", "--batch-size", "8", "--threads", "1",
        "--samplers", "none", "--losses", "ce,smooth"]
CACHE_PEOPLE = 10  # conftest's cache


def _cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_best_yaml_repeats_the_best_trial_and_a_second_call_resumes_the_study(cache, tmp_path):
    out = tmp_path / "tune"
    r = _cli("tune", cache.path, "--out", out, "--trials", 3, "--epochs", "2", "--lr", "1e-3,2e-2",
             "--pruner", "none", *FAST)
    assert r.exit_code == 0, r.output
    trials = pd.read_csv(out / "trials.csv")
    assert list(trials["state"]) == ["COMPLETE"] * 3 and (out / DB).is_file()
    best = json.loads((out / "tune.json").read_text())["best"]
    assert best["value"] == trials["value"].max() and best["trial"] == int(trials["value"].idxmax())
    options = yaml.safe_load((out / "best.yaml").read_text())
    assert options["lr"] == pytest.approx(trials.loc[best["trial"], "params_lr"]) and options["model"] == "test_resnet"
    for name in ("history.png", "importance.png"):
        assert (out / name).stat().st_size > 10_000, name
    # the best config, through train --config, is the best trial again: the same out-of-fold F1
    again = _cli("train", cache.path, "--config", out / "best.yaml", "--out", tmp_path / "repeat", "--threads", 1, "--no-plots")
    assert again.exit_code == 0, again.output
    assert json.loads((tmp_path / "repeat" / "summary.json").read_text())["oof_f1"] == pytest.approx(best["value"], abs=1e-9)
    # resumed: one more trial joins the three; those three are untouched
    more = _cli("tune", cache.path, "--out", out, "--trials", 4, "--epochs", "2", "--lr", "1e-3,2e-2", "--pruner", "none", *FAST)
    assert more.exit_code == 0, more.output
    after = pd.read_csv(out / "trials.csv")
    assert len(after) == 4 and list(after["value"][:3]) == list(trials["value"])
    # the finished trials keep their best weights, not the files only a resume needs
    run = out / "trials" / "trial_000"
    assert len(list(run.glob("fold_*/best.safetensors"))) == 2 and not list(run.glob("fold_*/state.pt"))
    # other settings cannot continue this study: one line, exit 2
    other = _cli("tune", cache.path, "--out", out, "--trials", 5, "--epochs", "2", "--lr", "1e-3,2e-2", *FAST[:4], "--folds", "3",
                 *FAST[6:])
    assert other.exit_code == 2 and "other folds" in other.output and "another --out" in other.output


def test_the_median_pruner_stops_a_bad_trial_through_the_epoch_hook(cache, tmp_path):
    out = tmp_path / "tune"
    out.mkdir()
    study = optuna.create_study(study_name=STUDY, storage=f"sqlite:///{out / DB}", direction="maximize")
    study.enqueue_trial({"lr": 1e-2})   # learns the bands
    study.enqueue_trial({"lr": 1e-6})   # learns nothing: below the first trial's median from its first checked epoch
    space = parse_space("1e-6,1e-2", "0.05", "ce", "none", "32", "test_resnet", "3")
    notes = []

    class Notes:
        def update(self, *a):
            pass

        def note(self, text):
            notes.append(text)

    result = tune(cache, out, space, trials=2, folds=2, batch_size=8, threads=1, startup_trials=1, progress=Notes())
    trials = pd.read_csv(out / "trials.csv")
    assert list(trials["state"]) == ["COMPLETE", "PRUNED"], notes
    pruned = pd.read_csv(out / "trials" / "trial_001" / "metrics.csv")
    assert set(pruned["fold"]) == {0} and len(pruned) == 3  # stopped after fold 0's third epoch (the warm-up), not later
    assert not list((out / "trials" / "trial_001").glob("fold_*/*.safetensors"))
    assert result.best_trial == 0 and result.counts == {"complete": 1, "pruned": 1, "fail": 0}
    assert any("trial 1: pruned at fold 0 epoch 3" in n for n in notes), notes


def test_a_bad_search_space_is_one_line(cache, tmp_path):
    for args, what in ((["--losses", "ce,hinge"], "--losses"), (["--models", "no_such_net"], "--models"),
                       (["--lr", "0.1,0.01"], "--lr"), (["--epochs", "0,3"], "--epochs"), (["--img-sizes", "4"], "--img-sizes")):
        r = _cli("tune", cache.path, "--out", tmp_path / "t", *args)
        assert r.exit_code == 2 and what in r.output, (args, r.output)
    with pytest.raises(InputError, match="--pruner"):
        tune(cache, tmp_path / "t2", parse_space("1e-3", "0.05", "ce", "none", "32", "test_resnet", "1"), pruner="hyperband")
    assert not (tmp_path / "t").exists() and not (tmp_path / "t2").exists()  # refused before anything was written


def test_a_trial_left_running_by_a_killed_tune_is_failed_and_run_again_first(cache, tmp_path):
    out = tmp_path / "tune"
    out.mkdir()
    study = optuna.create_study(study_name=STUDY, storage=f"sqlite:///{out / DB}", direction="maximize")
    stale = study.ask()  # what a kill -9 leaves: a trial still RUNNING in the storage
    lr = stale.suggest_float("lr", 1e-3, 1e-2, log=True)
    space = parse_space("1e-3,1e-2", "0.05", "ce", "none", "32", "test_resnet", "1")
    tune(cache, out, space, trials=1, folds=2, batch_size=8, threads=1, pruner="none")
    trials = pd.read_csv(out / "trials.csv")
    assert list(trials["state"]) == ["FAIL", "COMPLETE"]
    assert trials.loc[1, "params_lr"] == pytest.approx(lr)  # the interrupted values, tried again
    tune(cache, out, space, trials=1, folds=2, batch_size=8, threads=1, pruner="none")  # done: nothing more runs
    assert len(pd.read_csv(out / "trials.csv")) == 2
