"""Table and figure writers shared by `evaluate` and `report`: Markdown tables and atomically written PNGs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from fer_lightning.atomicio import atomic_open


def markdown_table(frame: pd.DataFrame, label_columns: int = 1) -> str:
    """GitHub Markdown (no `tabulate` dependency): the first `label_columns` left-aligned, the rest right."""
    def cell(value: Any) -> str:
        return "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value).replace("|", r"\|")

    columns = [str(c) for c in frame.columns]
    align = ["---" if i < label_columns else "---:" for i in range(len(columns))]
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def save_figure(fig: Figure, path: str | Path) -> None:
    """PNG written atomically: no half-written image is ever visible."""
    with atomic_open(path) as handle:
        fig.savefig(handle, format="png", dpi=120)
