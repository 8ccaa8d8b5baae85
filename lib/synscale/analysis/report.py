"""Rendered reports: each executed notebook as HTML, and ``outputs/index.html`` listing every run."""
from __future__ import annotations

import html
from pathlib import Path

from synscale.analysis.findings import ABOUT, COLOURS, collect, counts, html_table, leaderboards, ours, summary
from synscale.runtime import results as R
from synscale.runtime.integrity import atomic_write

INDEX_METRICS = 6  # scalar metrics shown per run in the index


def export_html(notebook: Path, out: Path, code: bool = False) -> Path:
    """Render an executed notebook as a report (nbconvert's lab template): titled by the notebook's heading, the
    run's verdicts first (``tables/findings.csv`` beside the notebook), its parameters once, folded, and no code
    unless ``code`` (the executed ``notebook.ipynb`` beside it keeps the code)."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(str(notebook), as_version=4)
    nb.cells = [c for c in nb.cells if "interactive-only" not in c.get("metadata", {}).get("tags", [])]
    title = next((line.lstrip("# ").strip() for c in nb.cells if c.cell_type == "markdown"
                  for line in c.source.splitlines() if line.startswith("# ")), Path(notebook).stem)
    run = Path(notebook).parent
    front = nbformat.v4.new_markdown_cell(_front(run, code))
    if nb.cells and nb.cells[0].cell_type == "markdown":  # the title and the question, then the answer: the rest after
        head, rest = _question(nb.cells[0].source)
        nb.cells[0].source = head
        nb.cells[1:1] = [front] + ([nbformat.v4.new_markdown_cell(rest)] if rest.strip() else [])
    else:
        nb.cells.insert(0, front)
    exporter = HTMLExporter(template_name="lab", exclude_input=not code, exclude_input_prompt=not code,
                            exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
    return atomic_write(out, body)


def _question(source: str) -> tuple[str, str]:
    """A notebook's first text split after its title and first paragraph (the question), so that the verdicts come
    on the first screen, before the setting and the differences from the paper."""
    paras = source.split("\n\n")
    n = 2 if paras and paras[0].lstrip().startswith("# ") and len(paras) > 1 else 1
    return "\n\n".join(paras[:n]), "\n\n".join(paras[n:])


def _front(run: Path, code: bool) -> str:
    """The report's first screen below its title and question: this run's verdicts, its parameters (folded), where
    the code is."""
    parts = []
    claims = run / "tables" / "findings.csv"
    if claims.exists():
        import pandas as pd

        df = pd.read_csv(claims)
        if len(df):
            rows = "".join(
                f'<tr style="background:{COLOURS.get(r.verdict, "#fff")}"><td>{html.escape(str(r.statement))}</td>'
                f"<td>{html.escape(str(r.measure))}</td><td>{ours(r.effect, r.lo, r.hi)}</td>"
                f"<td><b>{html.escape(str(r.verdict))}</b></td><td>{html.escape(str(getattr(r, 'why', '')))}</td>"
                "</tr>" for r in df.itertuples(index=False))
            parts.append(f"<h2>What this run found: {counts(df)}</h2><table><tr><th>the paper's claim</th>"
                         f"<th>effect (&gt; 0 supports it)</th><th>ours [95% interval]</th><th>verdict</th>"
                         f"<th>why</th></tr>"
                         f"{rows}</table><p>Each verdict comes from the 95% interval of its effect: holds above zero, "
                         f"contradicted below, unresolved across it. The sections below show how.</p>")
    params = run / "params.yaml"
    if params.exists():
        parts.append(f"<details><summary>Parameters of this run</summary><pre>{html.escape(params.read_text())}"
                     f"</pre></details>")
    if not code:
        parts.append('<p><small>Code is hidden; the executed notebook with its code is '
                     '<a href="notebook.ipynb">notebook.ipynb</a>.</small></p>')
    return "\n\n".join(parts)


def _runs(outputs: Path):
    for exp in sorted(p for p in outputs.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))):
        for prof in sorted(p for p in exp.iterdir() if p.is_dir()):
            for run in sorted(p for p in prof.iterdir() if p.is_dir() and not p.name.startswith(".")):
                yield exp.name, prof.name, run


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else html.escape(str(v))


def _headlines(outputs: Path, profile: str) -> str:
    """Each experiment's headline figure (``savefig(..., headline=True)``) of its newest finished run."""
    cells = []
    for stem in sorted(p.name for p in outputs.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))):
        runs = sorted(R.finished_runs(stem, profile, outputs), key=lambda d: (d / R.PROVENANCE).stat().st_mtime)
        for run in reversed(runs):
            f = run / "figures" / R.HEADLINE
            if f.exists():
                rel = (run / "figures" / f.read_text().strip()).relative_to(outputs)
                report = run.relative_to(outputs) / "report.html"
                cells.append(f'<figure><a href="{report}"><img src="{rel}" style="max-width:100%"></a>'
                             f"<figcaption>{html.escape(stem)} ({html.escape(run.name)})</figcaption></figure>")
                break
    return "".join(cells)


def write_index(outputs: Path) -> Path:
    """One page: what the study found (every claim with its interval and verdict, ``synscale.analysis.findings``), each
    experiment's headline figure, then every run: experiment, profile, status, duration, key metrics, links."""
    rows = []
    for stem, profile, run in _runs(outputs):
        prov = R.read_json(run / R.PROVENANCE)
        metrics = R._flat_scalars(R.read_json(run / R.METRICS))
        shown = "<br>".join(f"{html.escape(k)}={_fmt(v)}" for k, v in list(metrics.items())[:INDEX_METRICS])
        status = prov.get("status", "?")
        links = " ".join(
            f'<a href="{run.relative_to(outputs) / f}">{label}</a>'
            for f, label in (("report.html", "report"), ("notebook.ipynb", "ipynb"), ("run.log", "log"))
            if (run / f).exists()
        )
        rows.append(
            f'<tr class="{html.escape(status)}"><td>{stem}</td><td>{profile}</td><td>{html.escape(run.name)}</td>'
            f"<td>{html.escape(status)}</td><td>{_fmt(prov.get('duration_s', ''))}</td>"
            f"<td>{html.escape(str(prov.get('git_sha') or '')[:10])}{'+dirty' if prov.get('git_dirty') else ''}</td>"
            f"<td>{shown}</td><td>{links}</td></tr>"
        )
    profiles = sorted({prof for _, prof, _ in _runs(outputs)}, key=lambda p: (p != "mini", p))
    found = ""
    for prof in profiles:
        df = collect(outputs, prof)
        if len(df):
            found += (f"<h2>What the study found ({html.escape(prof)} profile): {counts(df)}</h2>{summary(df, prof)}"
                      f"<p>Also as <code>findings.csv</code> and <a href=\"findings.html\">findings.html</a>.</p>"
                      f"{html_table(df)}{leaderboards(outputs, prof)}<h2>Headline figures</h2>"
                      f"{_headlines(outputs, prof)}")
            break
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>synscale outputs</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;
padding:4px 8px;vertical-align:top;font-size:13px}}tr.failed{{background:#fdd}}
tr.done td:nth-child(4){{color:#070}}</style>
</head><body><h1>synscale</h1><p>{ABOUT}</p>{found}
<h2>Runs</h2><p>{len(rows)} runs under <code>{html.escape(str(outputs))}</code>.
Per-experiment tables: <code>&lt;stem&gt;/&lt;profile&gt;/summary.csv</code>.</p>
<table><tr><th>experiment</th><th>profile</th><th>run</th><th>status</th><th>seconds</th><th>git</th>
<th>metrics</th><th>files</th></tr>{''.join(rows)}</table></body></html>"""
    path = outputs / "index.html"
    return atomic_write(path, page)
