"""Launchers (synscale.runtime.launch): the same job in this process, under torchrun and through submitit's local
executor.

A generated set is byte-identical whatever runs it; one launched task trains exactly the classifier the calling
process trains; 2 ranks (DDP, gloo) train the same CLIP under torchrun and under submitit.
"""
import json
import os
from pathlib import Path

import pytest
import torch

from synscale.data.world import open_world
from synscale.methods import train
from synscale.runtime import launch
from synscale.runtime.launch import Launcher, LaunchError
from synscale.studies import supervised

RECIPE = train.Recipe(arch="resnet18", model_args={"channels": [8, 16, 16, 16]}, img_size=32, batch_size=8, lr=1e-3,
                      randaug="", mixup=0.0, base_size=64, base_iters=6, base_warmup=2, ckpt_every=3)


def test_launcher_strings_parse_and_bad_ones_fail_in_one_line():
    assert Launcher.parse(None) == Launcher() and Launcher.parse("inprocess").inprocess
    assert (Launcher.parse("torchrun:8").kind, Launcher.parse("torchrun:8").nproc) == ("torchrun", 8)
    s = Launcher.parse("slurm:8x4", "partition=gpu, account=abc", 600)
    assert (s.nproc, s.nodes, s.slurm, s.timeout_min, str(s)) == (8, 4, {"partition": "gpu", "account": "abc"}, 600,
                                                                  "slurm:8x4")
    for bad, msg in (("mpirun:2", "must be one of"), ("torchrun:0", "positive"), ("torchrun:2x2", "nodes only"),
                     ("torchrun:two", "expected")):
        with pytest.raises(LaunchError, match=msg) as e:
            Launcher.parse(bad)
        assert "\n" not in str(e.value)
    with pytest.raises(LaunchError, match="key=value"):
        Launcher.parse("slurm:1", "partition")


def _study_point(cache: Path, launcher: str, monkeypatch):
    """A mini-world synthetic set (generated on first use) and a classifier on it, with ``launcher``."""
    monkeypatch.setenv("SYNSCALE_CACHE", str(cache))
    monkeypatch.setenv(launch.ENV, launcher)
    study = supervised.Study(open_world("mini", 0), RECIPE, "mini", n_per_class=2, gen_steps=2, seed=0)
    model, stats = study.classifier(supervised.DataSpec.parse("sd/classnames/2"), 16)
    shards = {p.name: p.read_bytes() for p in sorted(cache.glob("synthetic/*/*/*/shard-*.tar"))}
    return model.state_dict(), stats, shards


@pytest.mark.notebook
def test_jobs_give_the_same_results_in_process_and_through_submitit(tmp_path, monkeypatch):
    """A study point's classifier as a job through submitit: the same weights as in this process, on the set this
    process generated (found in the cache, not made again). Generation as a job is covered where it costs least:
    the generate CLI under torchrun writes one process's bytes, and 03's rehearsal trains its classifiers as
    torchrun:2 jobs (tests/test_rehearsal.py); image metrics run as a torchrun:2 job (below)."""
    import shutil

    ref_w, ref, ref_shards = _study_point(tmp_path / "inprocess", "inprocess", monkeypatch)
    assert ref["ranks"] == 1 and not ref["cached"] and len(ref_shards) == 1
    shutil.copytree(tmp_path / "inprocess" / "synthetic", tmp_path / "submitit" / "synthetic")
    w, stats, shards = _study_point(tmp_path / "submitit", "submitit-local:1", monkeypatch)
    assert shards == ref_shards and not list((tmp_path / "submitit").glob("synthetic/**/.*.job"))  # found, not made
    assert stats["cached"] and stats["ranks"] == 1  # the job trained it; this process reads it
    logs = list((tmp_path / "submitit" / "classifiers").glob("*/*/.n16_seed0.job/spec.json"))
    assert len(logs) == 1 and json.loads(logs[0].read_text())["size"] == 16  # launched, not trained here
    reports = [json.loads(p.read_text()) for p in (tmp_path / "submitit" / "classifiers").glob("**/*.progress.json")]
    assert len(reports) == 1 and all(r["total"] and r["n"] == r["total"] for r in reports), reports
    assert all(torch.equal(a, b) for a, b in zip(ref_w.values(), w.values()))  # one launched task trains what
    # this process trains


def test_a_failing_job_names_its_log(tmp_path):
    with pytest.raises(LaunchError, match=r"job broken failed under torchrun:1 \(exit 1; log .*broken\.log\)") as e:
        launch.run_job("synscale.methods.llm", ["--spec", str(tmp_path / "absent.json")], tmp_path, "broken",
                       Launcher.parse("torchrun:1"))
    assert "absent.json" in str(e.value) and "\n" not in str(e.value)


def test_the_runner_refuses_to_run_under_torchrun(monkeypatch, capsys):
    from synscale.orchestration.run import main

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    assert main(["00", "--dry-run"]) == 2
    assert "SYNSCALE_LAUNCHER=torchrun:N" in capsys.readouterr().err
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv(launch.ENV, "torchrun:x")
    assert main(["00", "--dry-run"]) == 2
    assert "SYNSCALE_LAUNCHER='torchrun:x'" in capsys.readouterr().err
    assert os.environ[launch.ENV] == "torchrun:x"


@pytest.mark.notebook
def test_open_clip_runs_through_every_launcher_and_repeats(tmp_path, monkeypatch):
    """The paper's CLIP trainer (open_clip_train) as a job: two ranks (gloo, CPU DDP) train the same weights under
    torchrun and through submitit (in this process it is another run, which 06's and 08's rehearsals make)."""
    import numpy as np

    from synscale.data import shards
    from synscale.methods import clip

    x = np.random.default_rng(0).integers(0, 256, (16, 32, 32), dtype=np.uint8)
    urls = shards.write_pairs(x, [f"a photo of thing {i % 4}" for i in range(16)], tmp_path / "pool", shard_size=8)
    weights = {}
    for name in ("torchrun:2", "submitit-local:2"):
        monkeypatch.setenv(launch.ENV, name)
        m, _, stats = clip.train_open_clip([urls], 16, tmp_path / name.replace(":", "_"), label="t", epochs=1,
                                           nproc=1, device="cpu", precision="fp32", workers=0, model=clip.MINI_NAME,
                                           batch_scale=1 / 2048)
        assert np.isfinite(stats["final_loss"]) and stats["seconds"] > 0, name
        weights[name] = m.state_dict()
    same = lambda a, b: all(torch.equal(u, v) for u, v in zip(weights[a].values(), weights[b].values()))  # noqa: E731
    assert same("torchrun:2", "submitit-local:2")


@pytest.mark.notebook
def test_llm_captions_are_the_same_in_process_and_as_a_torchrun_job(tmp_path, monkeypatch):
    """SynthCLIP's caption pool from the rehearsal's Mistral stand-in (by folder): two ranks each caption every other
    pass; the pool is the one this process writes alone."""
    from synscale.methods import llm
    from synscale.orchestration.rehearsal import models as RM
    from synscale.studies import synthclip as S

    RM.build_mistral(tmp_path / "hf", tmp_path / "torch")
    folder = next((tmp_path / "hf").glob("hub/models--mistralai--Mistral-7B-Instruct-v0.2/snapshots/*"))
    concepts = ["tench", "lighthouse", "teapot"]
    pools = {}
    for name in ("inprocess", "torchrun:2"):
        monkeypatch.setenv(launch.ENV, name)
        cap = llm.LLMCaptioner(folder, device="cpu", batch_size=2, seed=3, max_new_tokens=6)
        pools[name] = S.generate_captions(cap, concepts, passes=3, cache=tmp_path / name.replace(":", "_"))
        assert (cap._model is None) == (name != "inprocess")  # the job loaded the model, not this process
    assert pools["inprocess"][0] == pools["torchrun:2"][0] and len(pools["inprocess"][0]) == 9
    assert list(pools["torchrun:2"][1]) == [0, 1, 2] * 3
    spec = next((tmp_path / "torchrun_2").glob(".*.job/spec.json"))
    assert json.loads(spec.read_text())["passes"] == 3
    report = json.loads((spec.parent / "captions.progress.json").read_text())
    assert (report["n"], report["total"], report["unit"]) == (2, 2, "pass")  # rank 0: passes 0 and 2


def test_a_slurm_job_submitted_from_an_allocation_inherits_none_of_its_settings(tmp_path, monkeypatch):
    """The runner under ``srun``: the job must not inherit the allocation's SLURM_* (CPU binding, task counts), but
    keeps where slurm.conf lies and gets the job environment (in-process jobs, progress reports)."""
    import submitit

    seen = {}

    class Job:
        job_id = "1"

        def done(self):
            return True

        def results(self):
            return [0]

    class Executor:
        def __init__(self, folder, cluster):
            seen["cluster"] = cluster

        def update_parameters(self, **kw):
            seen["params"] = kw

        def submit(self, fn, *args):
            seen["env"] = dict(os.environ)
            return Job()

    monkeypatch.setattr(submitit, "AutoExecutor", Executor)
    monkeypatch.setenv("SLURM_CPU_BIND", "map_cpu:0,1")
    monkeypatch.setenv("SLURM_CONF", "/etc/site/slurm.conf")
    launch.run_job("synscale.methods.generate", ["--spec", "x"], tmp_path, "gen",
                   Launcher.parse("slurm:8x2", "partition=gpu"))
    env = seen["env"]
    assert "SLURM_CPU_BIND" not in env and env["SLURM_CONF"] == "/etc/site/slurm.conf"
    assert env[launch.ENV] == "inprocess" and env["SYNSCALE_PROGRESS_FILE"].endswith("gen.progress.json")
    assert seen["cluster"] == "slurm" and seen["params"]["nodes"] == 2 and seen["params"]["slurm_partition"] == "gpu"
    assert os.environ["SLURM_CPU_BIND"] == "map_cpu:0,1" and launch.ENV not in os.environ  # this process: as it was


@pytest.mark.notebook
def test_finetuning_runs_on_two_ranks_and_is_read_back(tmp_path, monkeypatch):
    """07's finetuning as a job under torchrun:2 (DDP, each rank half of every batch): another run of the same
    length as this process's, each rank writing its own checkpoints, the result read back, not retrained. One
    launched task training exactly this process's weights: tests/test_retrieval.py (torchrun:1, from its files)."""
    from synscale.methods import clip as C
    from synscale.studies import retrieval as R

    monkeypatch.setenv("SYNSCALE_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(0)
    model, _, _ = C.create(C.MINI_NAME)
    rng = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (16, 32, 32), dtype=torch.uint8, generator=rng).numpy()
    y = torch.arange(16).remainder(4).numpy()
    head = torch.nn.functional.normalize(torch.randn(model.text_projection.shape[1], 4, generator=rng), dim=0)
    cfg = R.FinetuneConfig(epochs=2, batch_size=8, lr=1e-3, warmup=1, crop_pad=2, seed=1, ckpt_every=2)
    runs = {}
    for name in ("inprocess", "torchrun:2"):
        monkeypatch.setenv(launch.ENV, name)
        m, info = R.finetune(model, head, x, y, cfg, ckpt_dir=tmp_path / name.replace(":", "_"), select=(x[:8], y[:8]))
        runs[name] = ({k: v.clone() for k, v in m.state_dict().items()}, info)
    ref, ref_info = runs["inprocess"]
    w2, info2 = runs["torchrun:2"]
    assert info2["steps"] == ref_info["steps"] == 4 and not torch.equal(ref["head.weight"], w2["head.weight"])
    assert (tmp_path / "torchrun_2" / "world2-rank1" / "finetune.ckpt.pt").exists()  # no two ranks write one file
    monkeypatch.setenv(launch.ENV, "torchrun:2")
    again, _ = R.finetune(model, head, x, y, cfg, ckpt_dir=tmp_path / "torchrun_2", select=(x[:8], y[:8]))
    assert torch.equal(again.state_dict()["head.weight"], w2["head.weight"])  # read back, not retrained


@pytest.mark.notebook
def test_image_metrics_are_the_same_in_process_and_as_a_torchrun_job(tmp_path, monkeypatch):
    """01/02's metrics of two sets: measured here, then (the same sets, without their metrics) by one torchrun job whose
    two ranks take a set each — the same bytes; a second run finds them and launches nothing."""
    import shutil

    from synscale.methods import models
    from synscale.methods.imagesets import Sweep

    world = open_world("mini", 0)

    def sweep(launcher: str, cache: Path):
        monkeypatch.setenv("SYNSCALE_CACHE", str(cache))
        monkeypatch.setenv(launch.ENV, launcher)
        sw = Sweep(world, models.oracle("mini", world), "sd", n_per_class=2, steps=2, lpips_pairs=4, oracle_name="mini")
        return sw.run("classnames", [2.0, 7.5])

    rows, per_class, _ = sweep("inprocess", tmp_path / "a")
    files = sorted((tmp_path / "a").glob("synthetic/*/*/*/metrics_*.json"))
    assert len(files) == 2 and list(rows.columns[4:8]) == ["recognizability", "diversity", "fid", "lpips"]
    shutil.copytree(tmp_path / "a", tmp_path / "b", ignore=shutil.ignore_patterns("metrics_*"))
    assert len(list((tmp_path / "a").glob("real_features/world0_val_*_oracle@*.npy"))) == 1
    rows2, per_class2, _ = sweep("torchrun:2", tmp_path / "b")  # the real features read from the cache
    for f in files:
        assert (tmp_path / "b" / f.relative_to(tmp_path / "a")).read_bytes() == f.read_bytes(), f.parent.name
    jobs = list((tmp_path / "b").glob("synthetic/*/*/.metrics_*.job"))
    assert len(jobs) == 1 and len(json.loads((jobs[0] / "spec.json").read_text())["sets"]) == 2
    assert json.loads((jobs[0] / "metrics.progress.json").read_text())["total"] == 1  # rank 0: one of the two sets
    assert rows2.drop(columns="seconds").equals(rows.drop(columns="seconds")) and per_class2.equals(per_class)
    shutil.rmtree(jobs[0])
    sweep("torchrun:2", tmp_path / "b")
    assert not list((tmp_path / "b").glob("synthetic/*/*/.metrics_*.job"))  # measured: no job launched


def test_slurm_params_ask_gpus_only_where_wanted_and_take_cpus_and_memory():
    """``--gres=gpu:N`` on a CPU partition rejects every job: GPUs per node are a setting (default one per task),
    0 asks none; CPUs per task and memory pass through as submitit's shared parameters."""
    p = launch.submitit_params(Launcher.parse("slurm:2", "partition=cpu,gpus_per_node=0,cpus_per_task=11,mem_gb=64"),
                               "gen")
    assert "gpus_per_node" not in p and (p["cpus_per_task"], p["mem_gb"], p["slurm_partition"]) == (11, 64, "cpu")
    assert launch.submitit_params(Launcher.parse("slurm:8x2", "partition=gpu"), "x")["gpus_per_node"] == 8
    assert "gpus_per_node" not in launch.submitit_params(Launcher.parse("submitit-local:2"), "x")
    with pytest.raises(LaunchError, match="whole numbers"):
        launch.submitit_params(Launcher.parse("slurm:1", "mem_gb=lots"), "x")


class _FakeJob:
    def __init__(self, job_id="7", state="RUNNING", interrupt=False):
        self.job_id, self.state, self.interrupt, self.cancelled = job_id, state, interrupt, False

    def done(self):
        if self.interrupt:
            raise KeyboardInterrupt
        return True

    def results(self):
        return [0]

    def cancel(self, check=True):
        self.cancelled = True


def _fake_slurm(monkeypatch, job: _FakeJob, recorded_state: str | None):
    import submitit

    submitted = []

    class Executor:
        def __init__(self, folder, cluster):
            pass

        def update_parameters(self, **kw):
            pass

        def submit(self, fn, *args):
            assert isinstance(fn, submitit.helpers.Checkpointable)  # requeued at its time limit, resumes
            submitted.append(args)
            return job

    monkeypatch.setattr(submitit, "AutoExecutor", Executor)
    monkeypatch.setattr(submitit, "SlurmJob", lambda folder, job_id: _FakeJob(job_id, recorded_state))
    monkeypatch.setattr(launch, "slurm_state", lambda job_id: None)  # the stand-in job's state, not squeue's
    return submitted


@pytest.mark.parametrize("state,resubmits", [("RUNNING", False), ("PENDING", False), ("FAILED", True),
                                             ("CANCELLED by 0", True)])
def test_a_restarted_runner_waits_on_the_job_it_submitted_before(tmp_path, monkeypatch, state, resubmits):
    """The runner died while its job ran: a new runner finds the recorded job id and waits on it while SLURM still
    has it, so no second job writes the same result; a job that ended without one is submitted again."""
    import json

    submitted = _fake_slurm(monkeypatch, _FakeJob("8"), state)
    (tmp_path / "gen.submitted.json").write_text(json.dumps({"job_id": "7"}))
    launch.run_job("synscale.methods.generate", ["--spec", "x"], tmp_path, "gen", Launcher.parse("slurm:1"))
    assert bool(submitted) == resubmits
    assert not (tmp_path / "gen.submitted.json").exists()  # done: nothing left to re-attach to


def test_interrupting_the_wait_cancels_the_job_unless_asked_to_keep_it(tmp_path, monkeypatch):
    job = _FakeJob("9", interrupt=True)
    _fake_slurm(monkeypatch, job, None)
    with pytest.raises(KeyboardInterrupt):
        launch.run_job("synscale.methods.generate", ["--spec", "x"], tmp_path, "gen", Launcher.parse("slurm:1"))
    assert job.cancelled and not (tmp_path / "gen.submitted.json").exists()
    job = _FakeJob("10", interrupt=True)
    _fake_slurm(monkeypatch, job, None)
    monkeypatch.setenv("SYNSCALE_SLURM_KEEP", "1")
    with pytest.raises(KeyboardInterrupt):
        launch.run_job("synscale.methods.generate", ["--spec", "x"], tmp_path, "gen", Launcher.parse("slurm:1"))
    assert not job.cancelled and "10" in (tmp_path / "gen.submitted.json").read_text()
