"""Rewrite README.md's cost table, rates and the two totals from ``synscale costs`` (run after a params change)."""
from __future__ import annotations

import re
from pathlib import Path

from synscale.orchestration import costs

README = Path(__file__).resolve().parents[1] / "README.md"


def main() -> None:
    text = README.read_text()
    paper, lite = costs.paper_costs(), costs.paper_costs("paper-lite")
    total = int(paper.set_index("notebook").loc["total", "A100-h"])
    lite_total = int(lite.set_index("notebook").loc["total", "A100-h"])
    text = re.sub(r"\| notebook \| SD images \|.*?\n\n", lambda _: costs.markdown(paper) + "\n\n", text, count=1,
                  flags=re.S)
    text = re.sub(r"A100 rates:\n\n.*?\n\n", lambda _: "A100 rates:\n\n" + costs.rates_markdown() + "\n\n", text,
                  count=1, flags=re.S)
    text = re.sub(r"need about [\d,]+ A100-hours in all", f"need about {total:,} A100-hours in all", text)
    text = re.sub(r"about [\d,]+ A100-hours in all at the rates above",
                  f"about {lite_total:,} A100-hours in all at the rates above", text)
    README.write_text(text)
    print(f"README: paper {total:,} A100-h, paper-lite {lite_total:,} A100-h")


if __name__ == "__main__":
    main()
