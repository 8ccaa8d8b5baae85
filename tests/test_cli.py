"""The ``synscale`` command: one entry point whose every command says what it makes, and jobs that a person runs
with flags reach the same cached result a notebook's spec does."""
import json
import subprocess
import sys

import pytest

from synscale.orchestration import cli

RECIPE = {"arch": "resnet18", "model_args": {"channels": [8, 16, 16, 16]}, "img_size": 32, "batch_size": 8,
          "base_size": 200, "base_iters": 12, "base_warmup": 2, "mixup": 0.0, "randaug": "", "ckpt_every": 6}


def test_help_lists_every_command(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in cli.COMMANDS:
        assert f"  {name} " in out
    assert {"run", "check", "generate", "train", "clip", "finetune", "caption", "llm", "metrics", "costs",
            "findings", "rehearsal"} <= set(cli.COMMANDS)


@pytest.mark.parametrize("name", [n for n in cli.COMMANDS if n != "clip"])
def test_every_command_says_what_it_makes(name, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main([name, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: synscale {name}"), out[:200]
    if name in ("generate", "train", "finetune", "llm", "metrics"):  # jobs: real flags and the notebook's spec
        assert "--spec" in out and out.count("--") >= 5, out


def test_unknown_command_is_one_line(capsys):
    assert cli.main(["trian"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'trian'" in err and "train" in err


def test_module_entry_point_runs_the_command():
    out = subprocess.run([sys.executable, "-m", "synscale", "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "finetune" in out.stdout


def test_train_from_flags_is_the_notebooks_classifier(tmp_path, monkeypatch, capsys):
    """``synscale train`` with flags trains the classifier Study.classifier would, in the same cache folder; a
    second call finds it."""
    from synscale.data.world import open_world
    from synscale.methods import train
    from synscale.studies.supervised import DataSpec, Study

    monkeypatch.setenv("SYNSCALE_CACHE", str(tmp_path))
    monkeypatch.setenv("SYNSCALE_LAUNCHER", "inprocess")
    argv = ["train", "--data", "real", "--size", "40", "--recipe", json.dumps(RECIPE)]
    assert cli.main(argv) == 0
    folder = capsys.readouterr().out.strip().splitlines()[-1]
    study = Study(open_world("mini", 0, None), train.Recipe.from_dict(RECIPE))
    _, stats = study.classifier(DataSpec.parse("real"), 40, None, 0)
    assert stats["cached"] and stats["dir"] == folder
    assert cli.main(argv) == 0 and capsys.readouterr().out.strip().splitlines()[-1] == folder


def test_finetune_from_flags_is_the_notebooks_finetuning(tmp_path, monkeypatch, capsys):
    """``synscale finetune`` with flags makes the run notebook 07's finetune() call would: that call then finds it
    finished in the shared cache and trains nothing."""
    from synscale.data.world import open_world
    from synscale.data.world import text as T
    from synscale.methods import clip as C
    from synscale.methods.evaluate import zero_shot_classifier
    from synscale.studies import retrieval as R

    monkeypatch.setenv("SYNSCALE_CACHE", str(tmp_path))
    monkeypatch.setenv("SYNSCALE_LAUNCHER", "inprocess")
    assert cli.main(["finetune", "--split", "val", "--epochs", "0.05", "--batch-size", "64", "--warmup", "1"]) == 0
    info = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    world = open_world(seed=0)
    model, _, tok = C.create(pretrained=str(world.path("clip")))
    x, y = world.split("val")
    classifier = zero_shot_classifier(model, tok, list(world.classes), T.clip_templates(80))
    _, again = R.finetune(model, classifier, x, y, R.FinetuneConfig(epochs=0.05, batch_size=64, warmup=1))
    assert again["resumed_from"] == again["steps"] == info["steps"] > 0 and again["n"] == info["n"] == len(y)
