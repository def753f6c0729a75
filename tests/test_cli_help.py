"""Every command's --help shows every option's whole help text and its default; -h, --version, the usage line,
old option spellings, --config files (a run's own config.json repeats it), --quiet."""
from __future__ import annotations

import json
import re

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from facecurate import __version__
from facecurate.cli import app

WIDE = {"TERMINAL_WIDTH": "4000", "COLUMNS": "4000"}  # one line per option: nothing wraps
COMMAND = typer.main.get_command(app)
COMMANDS = sorted(COMMAND.commands)


def _help(*args: str) -> str:
    r = CliRunner(env=WIDE).invoke(app, [*args, "--help"])
    assert r.exit_code == 0, r.output
    return r.output


def _text(s: str) -> str:
    return " ".join(s.replace("│", " ").split())


@pytest.mark.parametrize("name", COMMANDS)
def test_every_option_help_and_default_reach_the_screen(name):
    out = _text(_help(name))
    cmd = COMMAND.commands[name]
    shown = 0
    for p in cmd.params:
        if getattr(p, "hidden", False) or p.name == "help":
            continue
        assert p.help and _text(p.help) in out, f"{name} --{p.name}: help text lost"
        default = p.show_default if isinstance(p.show_default, str) else p.default
        if getattr(p, "is_flag", False) and getattr(p, "secondary_opts", None):
            default = p.opts[0].lstrip("-") if p.default else p.secondary_opts[0].lstrip("-")
        if default not in (None, "", False) and p.show_default is not False and not getattr(p, "required", False):
            assert f"[default: {default}" in out or f"[default: ({default})]" in out, f"{name} --{p.name}: default {default!r} not shown"
        shown += 1
    assert shown >= 3
    assert "<bool>" not in out and "{" not in out.split("Usage:")[1].split("[OPTIONS]")[1][:60]


def test_short_help_version_and_usage():
    assert "Usage:" in CliRunner(env=WIDE).invoke(app, ["train", "-h"]).output
    r = CliRunner().invoke(app, ["--version"])
    assert r.exit_code == 0 and r.output.strip() == f"facecurate {__version__}"
    usage = [ln for ln in _help("predict").splitlines() if "Usage:" in ln][0]
    assert re.search(r"predict \[OPTIONS\] RUN DATA\b", usage), usage
    assert "--install-completion" in _help()


def _tiny_cache(tmp_path):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from _train_data import make_cache

    return make_cache(tmp_path / "cache", n_people=8, seed=2)


TINY = ["--model", "test_resnet", "--batch-size", "8", "--ema", "0", "--patience", "0", "--drop-rate", "0",
        "--threads", "1", "--val-ratio", "0.25", "--epochs", "2", "--no-plots"]


def test_train_config_json_repeats_a_run_and_the_command_line_wins(tmp_path):
    cache = _tiny_cache(tmp_path)
    r = CliRunner().invoke(app, ["train", str(cache.path), "--out", str(tmp_path / "a"), *TINY, "--lr", "0.003"])
    assert r.exit_code == 0, r.output
    again = CliRunner().invoke(app, ["train", "--config", str(tmp_path / "a" / "config.json"), "--out", str(tmp_path / "b")])
    assert again.exit_code == 0, again.output
    timing = ["images_per_s", "epoch_s"]
    ma, mb = (pd.read_csv(tmp_path / x / "metrics.csv").drop(columns=timing) for x in ("a", "b"))
    pd.testing.assert_frame_equal(ma, mb)  # the same run, from its own config.json (the cache path included)
    cfg_b = json.loads((tmp_path / "b" / "config.json").read_text())
    assert cfg_b["lr"] == 0.003 and cfg_b["model"] == "test_resnet"
    yaml_cfg = tmp_path / "opts.yaml"
    yaml_cfg.write_text("epochs: 1\nlr: 0.01\nmodel: test_resnet\nbatch-size: 8\nthreads: 1\nval_ratio: 0.25\nplots: false\n")
    third = CliRunner().invoke(app, ["train", str(cache.path), "--config", str(yaml_cfg), "--out", str(tmp_path / "c"), "--lr", "0.02"])
    assert third.exit_code == 0, third.output
    cfg_c = json.loads((tmp_path / "c" / "config.json").read_text())
    assert cfg_c["epochs"] == 1 and cfg_c["lr"] == 0.02  # the file's epochs, the command line's lr


def test_bad_config_files_are_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochs: [1\n")
    r = CliRunner().invoke(app, ["train", "x", "--config", str(bad)])
    assert r.exit_code == 2 and "bad.yaml" in r.output and "YAML" in r.output
    unknown = tmp_path / "u.json"
    unknown.write_text('{"epoch": 3}')
    r = CliRunner().invoke(app, ["inspect", "x", "--config", str(unknown)])
    assert r.exit_code == 2 and "'epoch' is not an option of `inspect`" in r.output


def test_old_spellings_work_with_a_notice_and_quiet_prints_only_the_result(tmp_path):
    from _crop_data import astronaut_person, train_layout

    root = train_layout(tmp_path / "data", {"000001_female_Asian_45": astronaut_person(2)[0]})
    r = CliRunner().invoke(app, ["crop", str(root), "--out", str(tmp_path / "c"), "--detector", "mediapipe",
                                 "--batch", "1", "--workers", "1"])
    assert r.exit_code == 0, r.output
    assert "--batch is now --batch-size" in r.stderr and "--workers is now --decode-threads" in r.stderr
    meta = json.loads((tmp_path / "c" / "meta.json").read_text())
    assert meta["params"]["batch"] == 1 and meta["params"]["workers"] == 1
    q = CliRunner().invoke(app, ["crop", str(root), "--out", str(tmp_path / "q"), "--detector", "mediapipe", "--quiet"])
    assert q.exit_code == 0 and q.stdout.strip() == f"cache: {tmp_path / 'q'}"


def test_synth_old_workers_spelling_and_quiet(tmp_path):
    from PIL import Image

    from facecurate.curate.synth import astronaut_variants

    faces = tmp_path / "faces"
    faces.mkdir()
    for img, name in zip(astronaut_variants(2, seed=4), ("25_0_0_20170101.jpg.chip.jpg", "67_1_2_20170102.jpg.chip.jpg")):
        Image.fromarray(img).save(faces / name)
    out = tmp_path / "synth"
    r = CliRunner().invoke(app, ["synth", str(faces), str(out), "--workers", "1", "--contact", "0", "--no-dedup",
                                 "--photos", "normal", "--quiet"])
    assert r.exit_code == 0, r.output
    assert "--workers is now --render-threads" in r.stderr
    assert r.stdout.strip() == f"synth: {out}"
    assert len(pd.read_csv(out / "train.csv")) == 2


def test_train_says_what_happens_to_a_partial_batch_and_names_its_pictures_and_next_commands(tmp_path):
    from _train_data import make_cache

    cache = make_cache(tmp_path / "cache", n_people=8, seed=2).path  # 56 photos: 2 folds of 28 training photos
    run = tmp_path / "run"
    r = CliRunner(env=WIDE).invoke(app, ["train", str(cache), "--out", str(run), "--model", "test_resnet", "--epochs", "1",
                                         "--folds", "2", "--batch-size", "5", "--threads", "1"])
    assert r.exit_code == 0, r.output
    text = _text(r.output)
    assert re.search(r"fold 0: 5 batch\(es\) of 5 per epoch; the last 3 shuffled photos of each epoch wait for the next one", text)
    for name in ("confusion.png", "curves.png", "per_class.csv"):
        assert (run / name).is_file() and str(run / name) in text
    assert f"next: facecurate relabel-report {cache} --oof {run / 'oof.parquet'}" in text
    assert f"facecurate predict {run} DATA" in text


def test_train_options_and_the_config_record_are_one_set_of_names_and_defaults(tmp_path):
    """Every TrainConfig / AugmentParams field is a `train` option whose default is the record's; a config handed to
    the processes of `train --ddp` (``option_args``) or read from config.json (``config_options``) parses back to the
    same config through the real command line."""
    import subprocess
    import sys
    from dataclasses import asdict, fields

    from facecurate.train.config import (AUGMENT_OF_OPTION, FIELD_OF_OPTION, AugmentParams, TrainConfig, config_options,
                                         option_args)

    train = COMMAND.commands["train"]
    params = {p.name: p for p in train.params}
    option_of_field = {v: k for k, v in FIELD_OF_OPTION.items()}
    for f in fields(TrainConfig):
        if f.name != "augment":
            assert option_of_field.get(f.name, f.name) in params, f.name
    assert {f.name for f in fields(AugmentParams)} == set(AUGMENT_OF_OPTION.values()) and set(AUGMENT_OF_OPTION) <= set(params)
    base = TrainConfig.from_options({n: p.default for n, p in params.items()})
    assert base == TrainConfig()  # the command line's defaults are the record's

    cfg = TrainConfig(model="resnet10t", img_size=(64, 48), epochs=3, lr=0.003, head_weights=(1.0, 0.5, 2.0), fold="1",
                      val_ratio=0.25, class_weights=True, channels_last=False, device="cpu", threads=1, extra=("a", "b"),
                      extra_weight=0.3, overrides="fix/overrides.csv", weights="runs/r1", resume=True,
                      augment=AugmentParams(enabled=False, scale=(0.5, 1.0), mixup=0.2))
    args = option_args(cfg)
    assert "--resume" in args and "--no-augment" in args and "--epochs" in args and "--batch-size" not in args
    ctx = train.make_context("train", ["cache", *args])
    assert TrainConfig.from_options(ctx.params) == cfg
    json_cfg = json.loads(json.dumps(asdict(cfg)))  # as config.json holds it (lists for tuples)
    assert TrainConfig.from_options(config_options(json_cfg)) == TrainConfig(**{**asdict(cfg), "resume": False,
                                                                                   "augment": cfg.augment})
    # the defaults come from the records without loading the trainer: --help stays fast
    probe = "import sys, facecurate.cli; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip() == "False"
