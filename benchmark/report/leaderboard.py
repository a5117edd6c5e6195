"""The leaderboard, built only from score rows: tables (CSV, Markdown, HTML) and plots.

This module only composes the steps, each in its own module: score_files reads the rows,
summary computes the per-setting and sweep lines, headline the one-row-per-method answer
with intervals and paired tests, scaling_table the KL and runtime at one matched sparsity on
large graphs (Bhaskar et al. 2024's Table 1), render writes Markdown and HTML, plots draws
the PNGs. Entry point: `build_leaderboard(score_files, out_dir, provenance)`; the workflow's
job is `leaderboard_job`, and this module's closure is the report code's key
(benchmark.core.fingerprint.report_code_key).
"""
from __future__ import annotations

from pathlib import Path

from benchmark.core.artifact import atomic_write_text
from benchmark.core.provenance import run_provenance
from benchmark.report.families import by_family
from benchmark.report.headline import headline, pairwise_tests
from benchmark.report.levels import edge_rows
from benchmark.report.plots import plot_all
from benchmark.report.render import to_html, to_markdown
from benchmark.report.scaling_table import scaling_table
from benchmark.report.summary import sparsities_of, split_notes, summarise
from benchmark.scoring.score_files import read_scores


def build_leaderboard(score_files, out_dir, provenance: dict | None = None) -> dict[str, Path]:
    """Read score CSVs and write scores.csv, summary.csv (the headline), pairwise.csv (paired
    tests), scaling_table.csv (matched sparsity; header only when no task qualifies),
    leaderboard.csv/.md/.html and the PNG plots to out_dir, each atomically. Returns
    file name -> path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    df = read_scores(score_files)
    sparsities = sparsities_of(df)
    table = summarise(df, sparsities)
    # the headline, plots and scaling table are edge-level: node rows are summarised in the
    # table's node columns (benchmark.report.levels)
    edges = edge_rows(df)
    plots = plot_all(edges, out)
    # per task family too (benchmark.report.families): the `all` rows are the pooled headline
    # the headline reads node rows for its node-level numbers, and a node-level method's
    # edge-level numbers from its circuits' edge views (benchmark.report.headline)
    head, tests = by_family(df, headline), by_family(df, pairwise_tests)
    scaling = scaling_table(edges)
    files = {"scores.csv": df.to_csv(index=False),
             "summary.csv": head.to_csv(index=False),
             "pairwise.csv": tests.to_csv(index=False),
             "scaling_table.csv": scaling.to_csv(index=False),
             "leaderboard.csv": table.to_csv(index=False),
             "leaderboard.md": to_markdown(table, sparsities, split_notes(df), scaling),
             "leaderboard.html": to_html(table, df, plots, provenance or {}, sparsities,
                                         head, tests, scaling)}
    for name, text in files.items():
        atomic_write_text(out / name, text)
    return {name: out / name for name in [*files, *plots]}


def leaderboard_job(score_files: list[str], out_dir: str, config: dict) -> None:
    """The workflow's leaderboard job: the tables, with the run's provenance."""
    build_leaderboard(score_files, out_dir, run_provenance(config))
