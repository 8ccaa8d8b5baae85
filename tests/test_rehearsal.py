"""The paper path, rehearsed: every notebook's ``paper`` profile, shrunk in counts, sizes, steps and widths only, runs
end to end against paper-shaped stand-ins (``synscale.orchestration.rehearsal``: the real repo ids, configs, file
layouts and variants in a Hugging Face cache; ImageNet, LAION, FGVC-Aircraft and the downstream sets in their release
layouts),
pointed at by the same environment variables a researcher sets for the real weights and data."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from synscale.orchestration import params as P
from synscale.orchestration.rehearsal import data as D

ROOT = Path(__file__).resolve().parents[1]
STEMS = sorted(p.stem for p in (ROOT / "notebooks").glob("0*.ipynb"))

#: what a rehearsal may change in a paper profile besides counts, sizes, steps and widths: the hardware
HARDWARE = {"workers", "nproc", "precision", "gpu_batch"}
#: the recipe fields a rehearsal may shrink (model widths, batch, schedule)
RECIPE = {"img_size", "model_args", "batch_size", "micro_batch", "base_size", "base_iters", "base_warmup", "ckpt_every"}
#: named architectures and their shrunk stand-ins (same input size, patch, context and vocabulary)
NARROWER = {("ViT-B-16", "ViT-B-16-rehearsal")}


def shrinks(paper, rehearsal) -> bool:
    """Whether ``rehearsal`` is ``paper`` with fewer or smaller things: a number no larger, a sub-list, a mapping
    of such, a recipe changed in widths and schedule only, a named architecture's narrower stand-in."""
    if paper == rehearsal:
        return True
    if isinstance(paper, bool) or isinstance(rehearsal, bool):
        return paper == rehearsal
    if isinstance(paper, (int, float)) and isinstance(rehearsal, (int, float)):
        return rehearsal <= paper
    if isinstance(paper, list) and isinstance(rehearsal, list):
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in paper + rehearsal)
        if numbers and paper and rehearsal:  # a ladder of sizes: no more rungs, none higher
            return len(rehearsal) <= len(paper) and max(rehearsal) <= max(paper)
        tuples = all(isinstance(v, list) and v and all(isinstance(x, int) for x in v) for v in paper + rehearsal)
        if tuples and paper and rehearsal:  # sizes in tuples (08's mixes): fewer, each under the paper's first
            return len(rehearsal) <= len(paper) and all(
                len(r) == len(p) and all(x <= y for x, y in zip(r, p)) for r in rehearsal for p in paper[:1])
        return set(map(json.dumps, rehearsal)) <= set(map(json.dumps, paper))
    if isinstance(paper, dict) and isinstance(rehearsal, dict):
        if set(rehearsal) - set(paper) <= RECIPE and set(paper) - set(rehearsal) == set():
            return all(k not in paper or k in RECIPE or shrinks(paper[k], v) for k, v in rehearsal.items())
        return False
    return (paper, rehearsal) in NARROWER


@pytest.mark.parametrize("stem", STEMS)
def test_rehearsal_is_the_paper_profile_shrunk(stem):
    """A test that the rehearsal proves the paper path: it extends ``paper`` and changes counts, sizes, steps,
    widths and hardware only — never a model, a data root, a prompt, a guidance scale or the grid."""
    pf = P.load(ROOT / "params" / f"{stem}.yaml", ROOT / "notebooks" / f"{stem}.ipynb")
    raw = pf.profiles["rehearsal"]
    assert raw.get("extends") == "paper" and not {"grid", "requires"} & set(raw)
    paper, rehearsal = pf.runs("paper"), pf.runs("rehearsal")
    assert len(paper) == len(rehearsal)
    for a, b in zip(paper, rehearsal):
        changed = {k for k in a.params if a.params[k] != b.params[k]} - {"profile"}
        assert changed == set(raw) - {"extends"}, changed
        for k in changed:
            assert k in HARDWARE or shrinks(a.params[k], b.params[k]), (k, a.params[k], b.params[k])


def test_rehearsal_keeps_the_papers_relations():
    """The real set is smaller than the largest synthetic size, D_I lies above it, Imagen's and Muse's curves stop
    between D_I and SD's end, the larger backbone goes beyond D_I, and every family's curve is there."""
    n_real = D.IMAGENET_SPLITS["train"] * len(D.IMAGENET)
    for stem in ("04_scaling", "05_ood"):
        pf = P.load(ROOT / "params" / f"{stem}.yaml", ROOT / "notebooks" / f"{stem}.ipynb")
        for profile, real in (("paper", 1_281_167), ("rehearsal", n_real)):
            p = pf.runs(profile)[0].params
            assert max(p["sizes"]) > real and p["d_i"] > real, (stem, profile)
            assert {s.split("/")[0] for s in p["specs"]} == {"real", "sd", "if", "muse"}
            caps = p["max_sizes"]  # Imagen and Muse stop before SD (paper: 8M and 64M), above D_I
            assert caps and all(p["d_i"] < c < max(p["sizes"]) for c in caps.values()), (stem, profile)
            if stem == "04_scaling":
                assert max(p["large_sizes"]) > p["d_i"] and set(p["large_specs"]) <= set(p["specs"])


def _runner(args, env, outputs, timeout=1500):
    return subprocess.run([sys.executable, "-m", "synscale", "run", *args], capture_output=True, text=True,
                          env={**os.environ, **env, "SYNSCALE_OUTPUTS": str(outputs)}, timeout=timeout)


def test_dry_run_of_the_paper_profiles_finds_everything_on_the_complete_stand_ins(standins, tmp_path):
    _, env = standins
    res = _runner(["--profile", "paper", "--dry-run"], env, tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "missing for this profile" not in res.stdout, res.stdout[-3000:]


def test_dry_run_names_every_missing_model_and_folder_with_its_fix(standins, tmp_path):
    """Pieces removed from a copy of the cache and data: the plan names each, per notebook, with what to run."""
    root, env = standins
    hub = tmp_path / "hf" / "hub"
    hub.mkdir(parents=True)
    for d in (root / "hf" / "hub").iterdir():  # the cache without DeepFloyd IF and BLIP-2's refs
        if "DeepFloyd" not in d.name:
            shutil.copytree(d, hub / d.name, symlinks=True)
    shutil.rmtree(hub / "models--Salesforce--blip2-opt-2.7b" / "refs")
    env = {**env, "HF_HOME": str(tmp_path / "hf"), "SYNSCALE_PROBES": str(tmp_path / "no-probes"),
           "SYNSCALE_CC3M": str(tmp_path / "no-cc3m"),
           "SYNSCALE_IMAGENET": str(tmp_path / "imagenet")}
    shutil.copytree(root / "data" / "imagenet", tmp_path / "imagenet")
    shutil.rmtree(tmp_path / "imagenet" / "rendition")
    (tmp_path / "imagenet" / "captions" / "train.tsv").unlink()
    res = _runner(["--profile", "paper", "--dry-run"], env, tmp_path / "out")
    assert res.returncode == 0, res.stderr[-2000:]
    out = res.stdout
    assert out.startswith("profile paper: about ") and "A100-hours for these notebooks" in out  # before anything
    for stem in ("02_cfg_sweep", "03_synthetic_1p3m", "04_scaling", "05_ood"):  # 03 trains Tables A4-A6's IF sets
        assert f"{stem}: if weights 'paper:if'" in out and "hf download DeepFloyd/IF-I-XL-v1.0" in out, stem
        assert f"{stem}: if_stage2 weights 'paper:if_stage2'" in out, stem  # IF's super-resolution stage too
    assert "hf download DeepFloyd/IF-II-L-v1.0" in out
    assert "05_ood: the ImageNet world's split" in out and "rendition does not exist" in out
    assert "05_ood: a downstream task (probe_root)" in out and "08_synthclip: a downstream task" in out
    assert "captions/train.tsv (BLIP-2 captions" in out and "synscale caption" in out
    assert "08_synthclip: CC3M (SynthCLIP's 3M real baseline)" in out and "no-cc3m" in out
    res = _runner(["04", "--profile", "paper"], env, tmp_path / "out")
    assert res.returncode == 2 and res.stderr.startswith("error: profile 'paper' needs what is not on this machine")
    assert not (tmp_path / "out" / "04_scaling").exists()  # nothing started


@pytest.mark.notebook
@pytest.mark.parametrize("stem", STEMS)
def test_notebook_runs_its_rehearsal(stem, rehearsal_study):
    out, res = rehearsal_study
    assert res.returncode in (0, 1), res.stderr[-3000:]
    runs = sorted(d for d in (out / stem / "rehearsal").iterdir() if d.is_dir()) if (out / stem).exists() else []
    assert runs, f"{stem} did not run: " + res.stderr[-3000:]
    for d in runs:
        failed = d / "FAILED"
        assert not failed.exists(), failed.read_text() + (d / "run.log").read_text()[-4000:]
        prov = json.loads((d / "provenance.json").read_text())
        assert prov["status"] == "done" and prov["profile"] == "rehearsal"
        params = yaml.safe_load((d / "params.yaml").read_text())
        from synscale.orchestration.preflight import model_needs

        assert all(name.startswith("paper:") for _, name in model_needs(stem, params))  # 00 loads none
        assert params.get("world") != "mini"
        assert json.loads((d / "metrics.json").read_text()).get("wall_time_s", 0) > 0


@pytest.mark.notebook
def test_retrieval_rehearsal_reports_a_class_with_too_few_hits_and_runs_gengs_sizes(rehearsal_study):
    """07 on the stand-in LAION-2B pool, where one variant is named once: the class is reported, not an error; the
    retrieved arm runs the sizes its pool fills and then the whole (unbalanced) pool, the synthetic arm every size
    (the largest beyond the pool: the grey region); the LLaMA-2 captions are written as chunk files."""
    out, _ = rehearsal_study
    (d,) = sorted(p for p in (out / "07_retrieval_baseline" / "rehearsal").iterdir() if p.is_dir())
    m = json.loads((d / "metrics.json").read_text())
    params = yaml.safe_load((d / "params.yaml").read_text())
    assert m["few_hit_classes"] and set(m["few_hit_classes"]) <= {"Cessna 172"}
    pool = m["retrievable_pool"]
    assert m["retrieved_sizes"] == [n for n in params["sizes"] if n < pool] + [pool] and pool < max(params["sizes"])
    assert {f"lp_top1.synthetic.n{n}" for n in params["sizes"]} <= set(m)
    assert set(m["llm_captions"]) == {"resampled", "fallbacks", "problems"}
    assert list((out / "_cache" / "geng_captions").glob("*/chunk-00000.json"))


def _torchrun(args, env, cwd, timeout=900):
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", *args],
                          capture_output=True, text=True, cwd=cwd, env={**os.environ, **env}, timeout=timeout)


@pytest.mark.notebook
def test_generation_under_torchrun_shares_out_shards_and_matches_one_process(standins, tmp_path):
    """``torchrun -m synscale.methods.generate`` on the paper's SD (stand-in) for ImageNet's classes: two ranks write
    their shards, rank 0 the index, and the bytes equal a one-process run's."""
    _, env = standins
    args = ["--family", "sd", "--model", "paper:sd", "--world", env["SYNSCALE_IMAGENET"], "--prompts", "classnames",
            "--cfg", "2", "--n-per-class", "2", "--steps", "2", "--store-size", "64", "--shard-size", "5"]
    two = _torchrun(["-m", "synscale.methods.generate", *args],  # torchrun gives each rank one thread: so does `one`
                    {**env, "SYNSCALE_CACHE": str(tmp_path / "two"), "OMP_NUM_THREADS": "1"}, ROOT)
    assert two.returncode == 0, two.stderr[-3000:]
    one = subprocess.run([sys.executable, "-m", "synscale.methods.generate", *args], capture_output=True, text=True,
                         env={**os.environ, **env, "SYNSCALE_CACHE": str(tmp_path / "one"), "OMP_NUM_THREADS": "1"})
    assert one.returncode == 0, one.stderr[-3000:]
    sets = [Path(r.stdout.strip().splitlines()[-1]) for r in (one, two)]
    digest = [{p.name: p.read_bytes() for p in sorted(s.glob("shard-*.tar"))} for s in sets]
    assert len(digest[0]) == 4 and digest[0] == digest[1]
    index = json.loads((sets[1] / "index.json").read_text())
    assert index["images"] == 20 and index["classes"][0] == "T-shirt" and index["model"] == "paper:sd"


@pytest.mark.notebook
def test_notebook_03_rehearsal_with_its_jobs_under_torchrun(standins, rehearsal_study, tmp_path):
    """As users run a training notebook on one node: ``SYNSCALE_LAUNCHER=torchrun:2 python -m
    synscale.orchestration.run 03
    --profile rehearsal``; the notebook runs once and launches each classifier as a job that DDP trains over both
    ranks (gloo here)."""
    _, env = standins
    out = tmp_path / "outputs"
    # the rehearsal study's generated sets and their metrics: only the training is new
    shutil.copytree(rehearsal_study[0] / "_cache" / "synthetic", out / "_cache" / "synthetic")
    res = subprocess.run([sys.executable, "-m", "synscale", "run", "03", "--profile", "rehearsal", "--no-html"],
                         capture_output=True, text=True, cwd=ROOT, timeout=900,
                         env={**os.environ, **env, "SYNSCALE_OUTPUTS": str(out), "SYNSCALE_LAUNCHER": "torchrun:2"})
    assert res.returncode == 0, res.stderr[-3000:]
    runs = [d for d in (out / "03_synthetic_1p3m" / "rehearsal").iterdir() if d.is_dir()]
    assert len(runs) == 1 and json.loads((runs[0] / "provenance.json").read_text())["status"] == "done"
    stats = [json.loads(f.read_text()) for f in (out / "_cache" / "classifiers").glob("*/*/*/stats.json")]
    assert stats and all((s["ranks"], s["micro_batch"]) == (2, 4) for s in stats)  # batch 8: 4 per rank
    jobs = list((out / "_cache" / "classifiers").glob("*/*/.*.job/classifier.log"))
    assert len(jobs) == len(stats)  # each one launched as a job
    assert not list((out / "_cache" / "synthetic").glob("*/*/.*.job"))  # the sets were found, not regenerated


def test_word2sen_prompts_come_from_the_papers_t5(standins, monkeypatch):
    """The Word2Sen prompt configuration at paper scale: sentences sampled from the T5 (``paper:word2sen``, the
    stand-in under the real repo id), not the mini world's grammar (01's rehearsal keeps to IN-Captions: its tiny
    T5 samples the whole 32k vocabulary for 100 sentences per class, a minute of CPU)."""
    from synscale.data import prompts as P
    from synscale.data.world import open_world

    _, env = standins
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setattr(P, "WORD2SEN_PER_CLASS", 4)
    world = open_world(env["SYNSCALE_IMAGENET"])
    t5 = P.for_world("word2sen", world, 2, seed=0, word2sen="paper:word2sen")
    offline = P.for_world("word2sen", world, 2, seed=0)
    assert len(t5) == 20 and t5.labels.tolist() == offline.labels.tolist()
    grammar = ("in the distance", "next to a", "on a table", "holding a", "lying beside", "in front of")
    assert not any(g in p for p in t5.prompts for g in grammar)  # no sentence of the offline grammar
    assert any(g in p for p in offline.prompts for g in grammar)
