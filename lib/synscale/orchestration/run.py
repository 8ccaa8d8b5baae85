"""The grid runner: ``synscale run [NOTEBOOK ...] --profile mini`` (driven by ``run_all.sh``).

Expands each notebook's params grid, executes every run with papermill and a named kernel into
``outputs/<stem>/<profile>/<k=v>__…__<hash8>/`` and skips runs already finished with the same run key
(hash of the resolved params and the notebook's code cells). Runs execute in a hidden temporary
directory that is renamed on success; failures are kept, marked failed, and listed at the end.

``--jobs N`` executes N runs at once, each in its own process; every kernel computes with the same thread count
(``SYNSCALE_THREADS``, default 1), so a result does not depend on ``--jobs``: small-model work keeps a core busy
with one thread, and two notebooks side by side finish sooner than one after the other. A run starts once the runs
of the notebooks its params file lists under ``after:`` (whose caches it reuses) have finished.
"""
from __future__ import annotations

import argparse
import logging
import os
import shutil
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from synscale.data.world import MANIFEST
from synscale.orchestration import params as P
from synscale.runtime import logs
from synscale.runtime import results as R
from synscale.runtime.distributed import dist_env
from synscale.runtime.integrity import write_json
from synscale.runtime.launch import Launcher, LaunchError
from synscale.runtime.logs import route
from synscale.runtime.paths import notebooks_dir, outputs_dir, params_dir, world_dir
from synscale.runtime.threads import ISA_ENV, isa_env

KERNEL = "synscale"
DEFAULT_PROFILE = "mini"
log = logs.logger(__name__)


class RunnerError(RuntimeError):
    """A request the runner refuses before any kernel starts; one line."""


# -- planning -------------------------------------------------------------------------------------------
def experiments(selectors: list[str] | None = None) -> list[str]:
    """Notebook stems to run: all numbered notebooks, or those matching the selectors (stem or prefix)."""
    every = sorted(p.stem for p in notebooks_dir().glob("*.ipynb"))
    stems = [s for s in every if not s.startswith("_")]  # _template etc. run only when named
    if not selectors:
        return stems
    out: list[str] = []
    for sel in selectors:
        sel = Path(sel).stem
        hit = [s for s in every if s == sel] or [s for s in stems if s.startswith(sel)]
        if not hit:
            raise RunnerError(f"no notebook matches '{sel}'; available: {', '.join(every)}")
        out += [s for s in hit if s not in out]
    return out


def plan(stems: list[str], profile: str) -> list[P.Run]:
    """Every run of the selected notebooks, validated; raises ParamsError before anything executes."""
    runs: list[P.Run] = []
    manifest = world_dir() / MANIFEST
    world = manifest.read_text() if manifest.exists() else ""  # a rebuilt mini world makes its runs stale
    for stem in stems:
        nb = notebooks_dir() / f"{stem}.ipynb"
        pfile = params_dir() / f"{stem}.yaml"
        if not pfile.exists():
            raise RunnerError(f"{nb}: no params file {pfile}; every notebook needs params/<stem>.yaml")
        runs += P.load(pfile, nb).runs(profile, P.code_source(nb), world)
    every = {p.stem for p in notebooks_dir().glob("*.ipynb")}
    for r in runs:
        if set(r.after) - every:
            unknown = ", ".join(sorted(set(r.after) - every))
            raise RunnerError(f"params/{r.stem}.yaml: after: no notebook named {unknown}; "
                              f"available: {', '.join(sorted(every))}")
    return runs


def shard(runs: list[P.Run], spec: str | None) -> list[P.Run]:
    """``i/n``: every n-th run starting at i (0-based) of the full, ordered plan."""
    if not spec:
        return runs
    try:
        i, n = (int(x) for x in spec.split("/"))
        assert 0 <= i < n
    except (ValueError, AssertionError):
        raise RunnerError(f"--shard '{spec}': expected i/n with 0 <= i < n, e.g. --shard 0/4") from None
    return runs[i::n]


def status(run: P.Run, outputs: Path) -> str:
    """'done' (same key finished), 'stale' (finished with another key), 'failed', or 'todo'."""
    prov = R.read_json(run.dir(outputs) / R.PROVENANCE)
    st = prov.get("status")
    if st == "done":
        return "done" if prov.get("run_key") == run.key else "stale"
    if st == "failed" or R.read_json(_failed_dir(run.dir(outputs)) / R.PROVENANCE):
        return "failed"
    return "todo"


def missing_requirements(run: P.Run) -> list[str]:
    """What a run needs and this machine lacks, one line each: its profile's ``requires`` paths and every model
    and data folder its params name (``synscale.orchestration.preflight``)."""
    from synscale.orchestration.preflight import problems

    return [f"{k} ({v})" for k, v in run.requires.items() if not Path(v).exists()] + problems(run.stem, run.params)


def param_problems(run: P.Run) -> list[str]:
    """What the notebook's own parameter check (``synscale.orchestration.checks``) would reject in a run's params,
    one line each."""
    from synscale.orchestration.checks import (
        problems,  # local: it imports the studies (torch, open_clip), which plan and --help don't need
    )

    return problems(run.stem, run.params)


def check_kernel(kernel: str) -> None:
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec(kernel)
    except NoSuchKernel:
        raise RunnerError(
            f"Jupyter kernel '{kernel}' is not installed; run ./run_all.sh once (it installs it) "
            f"or: python -m ipykernel install --sys-prefix --name {kernel}"
        ) from None


# -- execution ------------------------------------------------------------------------------------------
def _failed_dir(final: Path) -> Path:
    return final.with_name(final.name + ".failed")


def _tmp_dir(final: Path) -> Path:
    return final.with_name(f".tmp-{final.name}-{socket.gethostname()}-{os.getpid()}")


def clean_stale_tmp(base: Path) -> list[Path]:
    """Remove temp dirs of runs whose process is gone (killed mid-way); they are redone."""
    removed = []
    if not base.is_dir():
        return removed
    host = socket.gethostname()
    for d in base.glob(".tmp-*"):
        owner = R.read_json(d / ".owner")
        alive = owner.get("host") == host and _pid_alive(owner.get("pid", -1))
        if not alive and (owner.get("host") in (host, None)):
            shutil.rmtree(d, ignore_errors=True)
            removed.append(d)
    return removed


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _swap_in(src: Path, dst: Path) -> None:
    """Atomically put ``src`` at ``dst`` (an existing ``dst`` is moved aside first, then removed)."""
    trash = None
    if dst.exists():
        trash = dst.with_name(f".trash-{dst.name}-{os.getpid()}")
        os.replace(dst, trash)
    os.replace(src, dst)
    if trash is not None:
        shutil.rmtree(trash, ignore_errors=True)


@dataclass
class Result:
    run: P.Run
    ok: bool
    path: Path
    duration_s: float
    error: str = ""


def execute(run: P.Run, outputs: Path, kernel: str = KERNEL, html: bool = True) -> Result:
    import papermill as pm

    from synscale.analysis.report import export_html

    final = run.dir(outputs)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_dir(final)
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "figures").mkdir(parents=True)
    (tmp / "tables").mkdir()
    write_json(tmp / ".owner", {"host": socket.gethostname(), "pid": os.getpid()})
    (tmp / R.PARAMS).write_text(yaml.safe_dump(run.params, sort_keys=True))
    write_json(tmp / R.METRICS, {})
    start = time.time()
    prov = {
        "status": "running", "stem": run.stem, "profile": run.profile, "run": run.name, "run_key": run.key,
        "seed": run.params.get("seed"), "start": R.now(), "notebook": f"notebooks/{run.stem}.ipynb",
        "kernel": kernel, "cpu_isa": isa_env()[ISA_ENV], **R.git_state(), **_env_once(),
    }
    write_json(tmp / R.PROVENANCE, prov)

    handler = logging.FileHandler(tmp / "run.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    pm_log = logging.getLogger("papermill")
    pm_log.addHandler(handler)
    pm_log.setLevel(logging.INFO)
    kernel_env = {**_KERNEL_ENV, **thread_env(), **isa_env()}
    old_env = {k: os.environ.get(k) for k in kernel_env}
    os.environ.update({**kernel_env, "SYNSCALE_RUN_DIR": str(tmp)})
    error = ""
    try:
        pm.execute_notebook(
            str(notebooks_dir() / f"{run.stem}.ipynb"), str(tmp / "notebook.ipynb"), parameters=run.params,
            kernel_name=kernel, cwd=str(tmp), log_output=True, progress_bar=False,
            kernel_manager_class=ipc_kernel_manager(), extra_arguments=KERNEL_ARGS,
        )
    except Exception as e:  # papermill raises PapermillExecutionError with the cell's traceback
        error = f"{type(e).__name__}: {str(e).strip().splitlines()[-1] if str(e).strip() else ''}"
    finally:
        pm_log.removeHandler(handler)
        handler.close()
        os.environ.pop("SYNSCALE_RUN_DIR", None)
        for k, v in old_env.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    duration = time.time() - start
    if html and (tmp / "notebook.ipynb").exists():
        try:
            export_html(tmp / "notebook.ipynb", tmp / "report.html")
        except Exception as e:  # a report that cannot render must not lose the run
            error = error or f"HTML export failed: {e}"
    prov.update(status="failed" if error else "done", end=R.now(), duration_s=round(duration, 2), error=error or None)
    write_json(tmp / R.PROVENANCE, prov)
    (tmp / ".owner").unlink()
    dest = final
    if error:
        (tmp / "FAILED").write_text(error + "\n")
        if R.read_json(final / R.PROVENANCE).get("status") == "done":
            dest = _failed_dir(final)  # never replace a finished result by a failed one
    elif _failed_dir(final).exists():
        shutil.rmtree(_failed_dir(final))
    _swap_in(tmp, dest)
    return Result(run, not error, dest, duration, error)


_KERNEL_ENV = {
    "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
    "SYNSCALE_BATCH": "1",     # progress bars as throttled text (synscale.runtime.progress), not widgets
    "TQDM_MININTERVAL": "30",  # a tqdm line per update would flood the run log (papermill #765)
    "PYDEVD_DISABLE_FILE_VALIDATION": "1",
}
#: The kernel's start-up in batch runs: stderr (progress, warnings, library logs, C-level writes) goes to run.log
#: (``nb.batch_mode``) instead of the rendered notebook; ipykernel's fd capture is off so fd 2 is ours to redirect.
KERNEL_ARGS = ["--IPKernelApp.capture_fd_output=False",
               "--IPKernelApp.exec_lines=from synscale.orchestration.nb import batch_mode; batch_mode()"]


def thread_env() -> dict[str, str]:
    """Every kernel computes with the same thread count (``SYNSCALE_THREADS``, default 1: ``synscale.runtime.threads``),
    whatever ``--jobs``: results do not depend on how runs share the cores."""
    from synscale.runtime.threads import ENV, count

    n = str(count())
    return {ENV: n, "OMP_NUM_THREADS": n, "MKL_NUM_THREADS": n, "OPENBLAS_NUM_THREADS": n}


def ipc_kernel_manager():
    """jupyter_client's KernelManager on IPC (Unix sockets beside the connection file) instead of TCP on localhost:
    a kernel on one machine needs no ports, and ipykernel's "running over TCP without encryption" warning goes."""
    from jupyter_client.manager import KernelManager
    from traitlets import CaselessStrEnum

    class IPCKernelManager(KernelManager):
        transport = CaselessStrEnum(["tcp", "ipc"], default_value="ipc", config=True)

    return IPCKernelManager
_ENV_CACHE: dict = {}


def _env_once() -> dict:
    if not _ENV_CACHE:
        _ENV_CACHE.update(R.environment())
    return _ENV_CACHE


# -- parallel execution ---------------------------------------------------------------------------------
def unfinished_elsewhere(others: list[P.Run], outputs: Path) -> set[str]:
    """Notebooks with runs on other shards (``--shard``) that have not finished yet (done or failed), read from the
    shared outputs folder: a shard's run waits for its ``after`` notebooks wherever they run."""
    return {r.stem for r in others if status(r, outputs) not in ("done", "failed")}


def ready(pending: list[P.Run], unfinished: set[str]) -> P.Run | None:
    """The first pending run (plan order) none of whose ``after`` notebooks still has unfinished runs."""
    for run in pending:
        if not set(run.after) & (unfinished - {run.stem}):
            return run
    return None


def execute_all(todo: list[P.Run], outputs: Path, kernel: str, html: bool, jobs: int, on_done,
                others: list[P.Run] = (), poll_s: float | None = None) -> None:
    """Every run of ``todo``, ``jobs`` at a time in worker processes, honouring ``after`` — also across shards:
    ``others`` are the plan's runs on other shards, polled every ``poll_s`` seconds (``SYNSCALE_SHARD_POLL_S``,
    default 30) until finished; ``on_done(result)`` as each finishes (a failed run does not hold back the runs
    after it: they run without its cache)."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    poll_s = float(poll_s or os.environ.get("SYNSCALE_SHARD_POLL_S", 30))
    pending, running, said = list(todo), {}, set()
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        while pending or running:
            elsewhere = unfinished_elsewhere(list(others), outputs) if others else set()
            unfinished = {r.stem for r in pending} | {r.stem for r in running.values()} | elsewhere
            while pending and len(running) < jobs and (run := ready(pending, unfinished)) is not None:
                pending.remove(run)
                running[pool.submit(execute, run, outputs, kernel, html)] = run
            if not running:  # every pending run waits for notebooks running on other shards
                blocked = sorted(set().union(*(set(r.after) & elsewhere for r in pending)) - said)
                if blocked:
                    log.info(f"waiting for {', '.join(blocked)} on other shards (polling every {poll_s:g} s)")
                    said.update(blocked)
                time.sleep(poll_s)
                continue
            finished, _ = wait(running, timeout=poll_s if elsewhere else None, return_when=FIRST_COMPLETED)
            for fut in finished:
                running.pop(fut)
                on_done(fut.result())


# -- CLI ------------------------------------------------------------------------------------------------
def build_parser(prog: str = "synscale run") -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    ap.add_argument("notebooks", nargs="*", help="stems or prefixes (e.g. 01 04_scaling); default: all")
    ap.add_argument("--profile", default=DEFAULT_PROFILE,
                    help="a profile of the params files: smoke | mini | rehearsal | paper | paper-lite (default: mini)")
    ap.add_argument("--force", action="store_true", help="rerun runs already finished with the same key")
    ap.add_argument("--dry-run", action="store_true", help="print the plan and what is done/missing; run nothing")
    ap.add_argument("--shard", metavar="i/n", help="run only shard i of n (0-based) of the ordered plan")
    ap.add_argument("--outputs", type=Path, help="outputs root (default: $SYNSCALE_OUTPUTS or ./outputs)")
    ap.add_argument("--kernel", default=KERNEL, help=f"Jupyter kernel name (default: {KERNEL})")
    ap.add_argument("--no-html", action="store_true", help="skip the HTML reports")
    ap.add_argument("--jobs", type=int, default=int(os.environ.get("SYNSCALE_JOBS", "2")),
                    help="runs executed at once (default: $SYNSCALE_JOBS or 2); each computes with $SYNSCALE_THREADS "
                         "threads (default 1), so results do not depend on it")
    return ap


def main(argv: list[str] | None = None, prog: str = "synscale run") -> int:
    args = build_parser(prog).parse_args(argv)
    route()  # the runner's lines (and the library's) on stderr
    if args.outputs:
        os.environ["SYNSCALE_OUTPUTS"] = str(args.outputs.resolve())
    outputs = outputs_dir()
    try:
        if dist_env()[1] > 1:
            raise RunnerError("the runner executes each notebook once: start it without torchrun/srun and set "
                              "SYNSCALE_LAUNCHER=torchrun:N (or slurm:NxM) so that its jobs run on N processes")
        Launcher.from_env()  # a bad SYNSCALE_LAUNCHER fails here, before any notebook starts
        full = plan(experiments(args.notebooks), args.profile)
        runs = shard(full, args.shard)
        others = [r for r in full if r not in runs]
        states = {(r.stem, r.name): status(r, outputs) for r in runs}
        todo = [r for r in runs if args.force or states[(r.stem, r.name)] != "done"]
        wrong = [f"{r.stem}/{r.profile}/{r.name}: {m}" for r in todo for m in param_problems(r)]
        missing = sorted({f"{r.stem}: {m}" for r in todo for m in missing_requirements(r)})
        if args.dry_run:
            return _print_plan(runs, states, outputs, [f"parameters {w}" for w in wrong] + missing, args.profile)
        if wrong:
            raise RunnerError(f"parameters the notebooks would reject ({len(wrong)}):\n  " + "\n  ".join(wrong)
                              + "\nfix them in params/<notebook>.yaml (or the --profile's overrides) and run again")
        if missing:
            raise RunnerError(
                f"profile '{args.profile}' needs what is not on this machine ({len(missing)}):\n  "
                + "\n  ".join(missing) + "\nprovide them (README: 'Running the paper profiles') and run again"
            )
        if args.jobs < 1:
            raise RunnerError(f"--jobs {args.jobs}: give a number of runs at once >= 1")
        if todo:
            check_kernel(args.kernel)
    except (P.ParamsError, RunnerError, LaunchError) as e:
        log.error(f"error: {e}")
        return 2

    from tqdm import tqdm  # text bars: they render in papermill reports; tqdm.auto warns without ipywidgets

    from synscale.analysis.report import write_index

    for base in {r.dir(outputs).parent for r in todo}:
        for d in clean_stale_tmp(base):
            log.info(f"removed unfinished run {d}")
    log.info(f"{len(runs)} runs in plan, {len(runs) - len(todo)} already done, {len(todo)} to run "
             f"(profile {args.profile}, outputs {outputs})")
    failed: list[Result] = []
    bar = tqdm(total=len(todo), desc="runs", unit="run", file=sys.stderr, disable=not todo)

    def done(res: Result) -> None:
        tag = "ok    " if res.ok else "FAILED"
        bar.write(f"{tag} {res.duration_s:7.1f}s  {res.path.relative_to(outputs)}", file=sys.stderr)
        bar.update(1)
        if not res.ok:
            failed.append(res)

    if (args.jobs > 1 and len(todo) > 1) or (others and any(r.after for r in todo)):
        execute_all(todo, outputs, args.kernel, not args.no_html, args.jobs, done, others)
    else:
        for run in todo:
            bar.set_postfix_str(f"{run.stem}/{run.name}"[:60])
            done(execute(run, outputs, args.kernel, html=not args.no_html))
    bar.close()
    for stem in dict.fromkeys(r.stem for r in runs):
        R.collect(stem, args.profile, outputs)
    from synscale.analysis.findings import write_page

    if write_page(outputs, args.profile):
        log.info(f"findings: {outputs / 'findings.html'}")
    write_index(outputs)
    log.info(f"index: {outputs / 'index.html'}")
    if failed:
        log.error(f"{len(failed)} run(s) failed:")
        for res in failed:
            log.error(f"  {res.path}  {res.error}  (log: {res.path / 'run.log'})")
        return 1
    return 0


def _print_plan(runs: list[P.Run], states: dict[tuple[str, str], str], outputs: Path, missing: list[str],
                profile: str = "") -> int:
    stems = list(dict.fromkeys(r.stem for r in runs))
    if profile.startswith("paper"):  # GPU-hours before anything is asked for (synscale costs: rates and sources)
        from synscale.orchestration.costs import COSTED, paper_costs

        if set(stems) <= set(COSTED):  # other notebooks (yours, a test's) have no cost model
            hours = paper_costs(profile).set_index("notebook")["A100-h"]
            print(f"profile {profile}: about {int(hours.reindex(stems).fillna(0).sum()):,} A100-hours for these "
                  "notebooks (" + ", ".join(f"{s[:2]} {int(hours.get(s, 0)):,}" for s in stems)
                  + "; `synscale costs` for the rates)")
        else:
            print(f"profile {profile}: no A100-hours for {', '.join(sorted(set(stems) - set(COSTED)))} "
                  "(synscale costs knows the study's notebooks only)")
    for r in runs:
        print(f"{states[(r.stem, r.name)]:6s} {r.stem}/{r.profile}/{r.name}")
    counts = {s: list(states.values()).count(s) for s in ("done", "stale", "failed", "todo")}
    print(f"{len(runs)} runs: " + ", ".join(f"{n} {s}" for s, n in counts.items()) + f"  (outputs {outputs})")
    if missing:
        print(f"wrong or missing for this profile ({len(missing)}):\n  " + "\n  ".join(missing))
    return 0


if __name__ == "__main__":
    sys.exit(main())
