"""A rendered report reads as a report: title, verdicts and parameters first, no code, no interactive-only notes."""
import nbformat
import pandas as pd

from synscale.analysis import findings as F
from synscale.analysis.report import export_html


def test_a_report_opens_with_its_verdicts_and_hides_code_and_interactive_notes(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# 09 · A question\n\nWhat the notebook asks.\n\n**Differences.** A long"
                                              " list of how the mini world differs from the paper."),
                nbformat.v4.new_markdown_cell("**Interactive use.** Run All …"),
                nbformat.v4.new_code_cell("secret_code = 1 + 1", outputs=[nbformat.v4.new_output(
                    "stream", name="stdout", text="printed by the cell\n")])]
    nb.cells[1].metadata["tags"] = ["interactive-only"]
    nbformat.write(nb, str(tmp_path / "notebook.ipynb"))
    (tmp_path / "params.yaml").write_text("seed: 0\nsizes: [1, 2]\n")
    (tmp_path / "tables").mkdir()
    claim = F.claim("k", "the paper's sentence", "Fan et al. sec. 4", "val loss, a − b", [0.1, 0.2, 0.3], 0.2,
                    "bootstrap over 10 val images (3 resamples)")
    pd.DataFrame([claim.row()]).to_csv(tmp_path / "tables" / "findings.csv", index=False)
    page = export_html(tmp_path / "notebook.ipynb", tmp_path / "report.html").read_text()
    assert "<title>09 · A question</title>" in page
    assert page.index("What the notebook asks") < page.index("What this run found: 1 holds")  # first screen: the
    assert page.index("What this run found: 1 holds") < page.index("A long list")  # question, then the answer
    assert page.index("A long list") < page.index("printed by the cell")
    assert "the whole interval lies above zero" in page and "Parameters of this run" in page
    assert "secret_code" not in page and "Interactive use" not in page
    with_code = export_html(tmp_path / "notebook.ipynb", tmp_path / "code.html", code=True).read_text()
    assert "secret_code" in with_code
