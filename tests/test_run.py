"""The grid runner: outputs, provenance, skip-when-done, --force, failures, atomicity, shards, early errors."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from synscale.orchestration import params as P
from synscale.orchestration.run import main, plan, shard, status
from synscale.runtime import results as R
from synscale.runtime.integrity import write_json


def prov(d):
    return json.loads((d / "provenance.json").read_text())


def runs_of(out, profile="smoke"):
    base = out / "toy" / profile
    return sorted(d for d in base.iterdir() if d.is_dir()) if base.exists() else []


def test_runs_write_everything_then_skip_then_force(toy_world, capsys):
    out = toy_world
    assert main(["toy", "--profile", "smoke"]) == 0
    dirs = runs_of(out)
    assert [d.name.split("__")[0] for d in dirs] == ["x=1", "x=2"]
    d = dirs[1]
    assert json.loads((d / "metrics.json").read_text()) == {"y": 2.0, "label": "a"}
    assert yaml.safe_load((d / "params.yaml").read_text())["x"] == 2
    p = prov(d)
    assert p["status"] == "done" and p["profile"] == "smoke" and p["stem"] == "toy" and p["run"] == d.name
    for key in ("git_sha", "git_dirty", "python", "torch", "cuda", "device", "packages", "start", "end",
                "duration_s", "run_key", "seed"):
        assert key in p
    assert p["duration_s"] > 0 and p["packages"]["papermill"]
    assert (d / "notebook.ipynb").exists() and (d / "run.log").exists()
    report = (d / "report.html").read_text()
    assert "<html" in report and "Traceback" not in report and "Toy notebook for runner tests" in report
    # a report, not a notebook: titled by its heading, its parameters once (folded), no code, no temp paths
    assert "<title>Toy notebook for runner tests</title>" in report
    assert "Parameters of this run" in report and report.count("sleep_s") == 1
    assert 'record("y", x * scale)' not in report and "import time" not in report and ".tmp-" not in report
    assert (d / "figures").is_dir() and (d / "tables").is_dir()
    # progress bars, warnings, library logs and C-level stderr go to run.log; the report keeps what cells print
    nb = json.loads((d / "notebook.ipynb").read_text())
    streams = [o for c in nb["cells"] for o in c.get("outputs", []) if o.get("output_type") == "stream"]
    assert [o["name"] for o in streams if "toy-" in "".join(o["text"])] == ["stdout"]
    assert not [o for c in nb["cells"] for o in c.get("outputs", []) if o.get("name") == "stderr"]
    log = (d / "run.log").read_text()
    for marker in ("toy-progress", "toy-warning", "toy-log", "toy-stderr", "toy-fd2"):
        assert marker in log, marker
    assert "without encryption" not in log  # the kernel talks over IPC, not TCP
    index = (out / "index.html").read_text()
    assert all(x.name in index for x in dirs) and "y=2" in index
    summary = (out / "toy" / "smoke" / "summary.csv").read_text().splitlines()
    assert len(summary) == 3 and "param.x" in summary[0]
    assert not list((out / "toy" / "smoke").glob(".tmp-*"))

    starts = [prov(x)["start"] for x in dirs]
    capsys.readouterr()
    time.sleep(1.1)
    assert main(["toy", "--profile", "smoke"]) == 0
    assert "2 already done, 0 to run" in capsys.readouterr().err
    assert [prov(x)["start"] for x in dirs] == starts

    assert main(["toy", "--profile", "smoke", "--force"]) == 0
    assert all(prov(x)["start"] != s for x, s in zip(dirs, starts))


def test_changed_code_makes_runs_stale_and_reruns_them(toy_world, tmp_path, capsys):
    assert main(["toy", "--profile", "smoke"]) == 0
    nb = tmp_path / "notebooks" / "toy.ipynb"
    nb.write_text(nb.read_text().replace('record(\\"label\\", label)', 'record(\\"label\\", label * 2)'))
    assert all(status(r, toy_world) == "stale" for r in plan(["toy"], "smoke"))
    capsys.readouterr()
    assert main(["toy", "--profile", "smoke"]) == 0
    assert "0 already done, 2 to run" in capsys.readouterr().err
    assert json.loads((runs_of(toy_world)[0] / "metrics.json").read_text())["label"] == "aa"


def test_failed_runs_are_kept_marked_and_listed(toy_world, capsys):
    assert main(["toy", "--profile", "fail"]) == 1
    err = capsys.readouterr().err
    ok, bad = runs_of(toy_world, "fail")
    assert "fail=false" in ok.name and "fail=true" in bad.name
    assert prov(ok)["status"] == "done"
    p = prov(bad)
    assert p["status"] == "failed" and "asked to fail" in p["error"]
    assert (bad / "FAILED").exists() and (bad / "notebook.ipynb").exists() and (bad / "report.html").exists()
    assert "1 run(s) failed" in err and str(bad) in err
    assert "failed" in (toy_world / "index.html").read_text()
    # the next invocation redoes the failed run only
    assert main(["toy", "--profile", "fail"]) == 1
    assert "1 already done, 1 to run" in capsys.readouterr().err


def test_a_rebuilt_mini_world_makes_its_runs_stale(toy_world, tmp_path, monkeypatch):
    world = tmp_path / "world"
    world.mkdir()
    (world / "MANIFEST.json").write_text('{"components": {"oracle": {"files": {"a": "1"}}}}')
    monkeypatch.setenv("SYNSCALE_WORLD", str(world))
    assert main(["toy", "--profile", "smoke"]) == 0
    assert all(status(r, toy_world) == "done" for r in plan(["toy"], "smoke"))
    (world / "MANIFEST.json").write_text('{"components": {"oracle": {"files": {"a": "2"}}}}')
    assert all(status(r, toy_world) == "stale" for r in plan(["toy"], "smoke"))


def test_a_failed_rerun_never_replaces_a_finished_run(toy_world, monkeypatch):
    assert main(["toy", "--profile", "smoke"]) == 0
    first = runs_of(toy_world)[0]
    before = prov(first)
    monkeypatch.setenv("TOY_FAIL", "1")
    assert main(["toy", "--profile", "smoke", "--force"]) == 1
    assert prov(first) == before
    failed = first.with_name(first.name + ".failed")
    assert prov(failed)["status"] == "failed"
    run = plan(["toy"], "smoke")[0]
    assert status(run, toy_world) == "done"
    monkeypatch.delenv("TOY_FAIL")
    assert main(["toy", "--profile", "smoke", "--force"]) == 0
    assert not failed.exists()


def test_a_run_killed_midway_leaves_nothing_finished_and_is_redone(toy_world, monkeypatch):
    base = toy_world / "toy" / "slow"
    proc = subprocess.Popen([sys.executable, "-m", "synscale", "run", "toy", "--profile", "slow"],
                            env=os.environ.copy(), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 90
        while time.time() < deadline and not list(base.glob(".tmp-*/run.log")):
            time.sleep(0.5)
        time.sleep(3)  # let the kernel start executing the sleeping cell
        assert list(base.glob(".tmp-*")), "the runner never started the run"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert [d for d in base.iterdir() if not d.name.startswith(".")] == []
    run = plan(["toy"], "slow")[0]
    assert status(run, toy_world) == "todo"
    monkeypatch.setenv("TOY_SKIP_SLEEP", "1")
    assert main(["toy", "--profile", "slow"]) == 0
    assert prov(run.dir(toy_world))["status"] == "done"
    assert not list(base.glob(".tmp-*"))


def test_a_shard_waits_for_its_after_notebooks_on_other_shards(toy_world, tmp_path, monkeypatch):
    """``--shard`` splits the plan across machines sharing the outputs folder: a run whose ``after:`` notebook has
    runs on another shard starts only once those have finished there."""
    nbs, params = tmp_path / "notebooks", tmp_path / "params"
    (nbs / "later.ipynb").write_bytes((nbs / "toy.ipynb").read_bytes())
    (params / "later.yaml").write_text("after: [toy]\ndefaults: {x: 9}\nprofiles: {smoke: {grid: [{x: [8, 9]}]}}\n")
    full = plan(["toy", "later"], "smoke")
    assert [r.stem for r in shard(full, "1/2")] == ["toy", "later"]  # each shard holds one toy and one later run
    env = {**os.environ, "SYNSCALE_SHARD_POLL_S": "0.5", "TOY_SKIP_SLEEP": "1"}
    other = subprocess.Popen([sys.executable, "-m", "synscale", "run", "toy", "later", "--profile", "smoke",
                              "--shard", "1/2", "--no-html"], env=env, stderr=subprocess.PIPE, text=True)
    waited = ""
    for line in other.stderr:  # it runs its toy run, then waits for shard 0's
        waited += line
        if "waiting for toy on other shards" in line:
            break
    assert "waiting for toy" in waited, waited
    assert main(["toy", "later", "--profile", "smoke", "--shard", "0/2", "--no-html"]) == 0
    assert other.wait(timeout=300) == 0, other.stderr.read()[-2000:]
    ends = {r.stem + r.name: prov(r.dir(toy_world)) for r in full}
    assert all(p["status"] == "done" for p in ends.values())
    toy_done = max(p["end"] for k, p in ends.items() if k.startswith("toy"))
    assert all(p["start"] >= toy_done for k, p in ends.items() if k.startswith("later"))


def test_shards_partition_the_plan(toy_world):
    runs = plan(["toy"], "mini")
    assert len(runs) == 5
    for n in (1, 2, 3, 7):
        parts = [shard(runs, f"{i}/{n}") for i in range(n)]
        names = [r.name for p in parts for r in p]
        assert sorted(names) == sorted(r.name for r in runs) and len(names) == len(set(names))
        assert parts == [shard(runs, f"{i}/{n}") for i in range(n)]  # deterministic
    for bad in ("2/2", "x", "1/0", "-1/3"):
        with pytest.raises(Exception, match=r"--shard .*expected i/n"):
            shard(runs, bad)


def test_dry_run_prints_plan_status_and_what_paper_misses(toy_world, capsys):
    assert main(["toy", "--profile", "smoke"]) == 0
    capsys.readouterr()
    assert main(["toy", "--profile", "smoke", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.count("done   toy/smoke/") == 2 and "2 runs: 2 done, 0 stale, 0 failed, 0 todo" in out
    assert main(["toy", "--profile", "paper", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.count("todo   toy/paper/x=") == 5 and "profile paper: no A100-hours for toy" in out
    assert "missing for this profile (1):\n  toy: weights (/nonexistent/toy-weights)" in out
    assert not (toy_world / "toy" / "paper").exists()


def test_missing_paper_files_fail_one_line_each_before_any_kernel(toy_world, capsys):
    assert main(["toy", "--profile", "paper"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0] == "error: profile 'paper' needs what is not on this machine (1):"
    assert err[1] == "  toy: weights (/nonexistent/toy-weights)" and len(err) == 3
    assert not (toy_world / "toy").exists()


def test_bad_params_fail_in_one_line_before_any_kernel(toy_world, tmp_path, capsys):
    (tmp_path / "params" / "toy.yaml").write_text("profiles:\n  smoke: {scale: fast}\n")
    assert main(["toy", "--profile", "smoke"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    where = tmp_path / "params" / "toy.yaml"
    assert err.startswith(f"error: {where}: profiles.smoke.scale: wrong type: expected float")
    assert "allowed keys: fail, flags, label, scale, sleep_s, x" in err
    assert not toy_world.exists() or not (toy_world / "toy").exists()


@pytest.mark.parametrize("args, msg", [
    (["nope"], "no notebook matches 'nope'; available: toy"),
    (["toy", "--profile", "smoke", "--kernel", "no-such-kernel"], "Jupyter kernel 'no-such-kernel' is not installed"),
    (["toy", "--profile", "big"], "unknown profile 'big'; allowed profiles: fail, mini, paper, slow, smoke"),
    (["toy", "--shard", "3/3"], "--shard '3/3': expected i/n"),
])
def test_request_errors_are_one_line(toy_world, capsys, args, msg):
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and msg in err


def test_collect_builds_one_row_per_finished_run(toy_world):
    assert main(["toy", "--profile", "fail"]) == 1
    df = R.collect("toy", "fail", toy_world, write=False)
    assert list(df["param.fail"]) == [False] and list(df["y"]) == [1.0]


def test_stale_tmp_dirs_of_dead_processes_are_removed(tmp_path):
    from synscale.orchestration.run import clean_stale_tmp

    dead = tmp_path / ".tmp-a-host-1"
    dead.mkdir()
    write_json(dead / ".owner", {"host": __import__("socket").gethostname(), "pid": 2**22 + 12345})
    alive = tmp_path / ".tmp-b-host-2"
    alive.mkdir()
    write_json(alive / ".owner", {"host": __import__("socket").gethostname(), "pid": os.getpid()})
    assert clean_stale_tmp(tmp_path) == [dead]
    assert alive.exists() and not dead.exists()


def test_plan_orders_runs_and_keys_match_params_module(toy_world):
    from synscale.runtime.paths import world_dir

    runs = plan(["toy"], "mini")
    nb = toy_world.parent / "notebooks" / "toy.ipynb"
    again = P.load(toy_world.parent / "params" / "toy.yaml", nb)
    manifest = (world_dir() / "MANIFEST.json").read_text()  # the toy has no `world` parameter: a mini-world run
    assert [r.key for r in runs] == [r.key for r in again.runs("mini", P.code_source(nb), manifest)]


def test_ready_respects_after_and_plan_order():
    from synscale.orchestration.run import ready

    mk = lambda stem, after=(): P.Run(stem, "mini", {}, stem, stem, {}, after)
    b1, b2, c = mk("b", ("a",)), mk("b", ("a",)), mk("c")
    assert ready([b1, c], {"a", "b", "c"}) is c            # b waits for a's runs
    assert ready([b1, b2, c], {"b", "c"}) is b1            # a finished: plan order again
    assert ready([b2], {"b"}) is b2                        # runs of one notebook never wait for each other
    assert ready([], set()) is None and ready([b1], {"a", "b"}) is None


def test_parallel_jobs_finish_every_run_like_the_serial_runner(toy_world, capsys):
    out = toy_world
    assert main(["toy", "--profile", "smoke", "--jobs", "2"]) == 0
    dirs = runs_of(out)
    assert [d.name.split("__")[0] for d in dirs] == ["x=1", "x=2"] and all(prov(d)["status"] == "done" for d in dirs)
    assert json.loads((dirs[1] / "metrics.json").read_text()) == {"y": 2.0, "label": "a"}
    assert (out / "index.html").exists() and not list((out / "toy" / "smoke").glob(".tmp-*"))
    assert main(["toy", "--profile", "fail", "--jobs", "2"]) == 1  # a failed run is reported as in serial mode
    assert "1 run(s) failed" in capsys.readouterr().err


def test_after_names_existing_notebooks(toy_world, capsys):
    pfile = os.environ["SYNSCALE_PARAMS"] + "/toy.yaml"
    raw = yaml.safe_load(open(pfile).read())
    raw["after"] = ["nonexistent_nb"]
    open(pfile, "w").write(yaml.safe_dump(raw))
    assert main(["toy", "--profile", "smoke"]) == 2
    err = capsys.readouterr().err
    assert "after: no notebook named nonexistent_nb" in err and len(err.strip().splitlines()) == 1
