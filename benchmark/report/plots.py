"""The leaderboard's plots (PNG): faithfulness along the ranking and vs sparsity, ROC curves,
runtime, recovery and integrated faithfulness vs example count, and KL vs edge sparsity on
large graphs (Bhaskar et al. 2024's Figure 2).

Kept apart so that matplotlib (headless, Agg) is only set up where plots are drawn. The files
are written without timestamps, so the same score rows give the same bytes.
"""
from __future__ import annotations

import io
import itertools
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter  # noqa: E402

from benchmark.core.artifact import atomic_write_bytes  # noqa: E402
from benchmark.core.conventions import CONVENTIONS  # noqa: E402
from benchmark.report.headline import run_table  # noqa: E402
from benchmark.report.outputs import PLOTS  # noqa: E402
from benchmark.report.scaling_table import FIGURE_MIN_SPARSITY, MIN_EDGES, figure_points  # noqa: E402
from benchmark.report.summary import prepare, rows_convention  # noqa: E402

FAITH_FLOOR = 1e-6  # plots only: faithfulness below this (exact circuits, float noise) sits here


def _save(fig, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def _empty_plot(path: Path, message: str) -> None:
    fig, ax = plt.subplots(figsize=(4, 2))
    ax.text(0.5, 0.5, message, ha="center", va="center")
    ax.axis("off")
    _save(fig, path)


def plot_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The ok rows (numeric) with the ROC point of the convention matching their ablation."""
    ok = prepare(df)
    ok = ok[ok.status == "ok"].copy()
    ok["n_examples"] = pd.to_numeric(ok.n_examples, errors="coerce").astype(np.float64)
    ok["convention"] = ""
    for (_, ablation), rows in ok.groupby(["task", "ablation"]):
        ok.loc[rows.index, "convention"] = rows_convention(rows, ablation)
    for m in ("fpr", "tpr"):
        ok[m] = np.nan
        for c in CONVENTIONS:
            here = ok.convention == c
            ok.loc[here, m] = ok.loc[here, f"{m}_{c}"]
    return ok


def _relplot(data: pd.DataFrame, x: str, y: str, palette: dict):
    """Scatter panels, one per task (wrapped at 4): hue method, marker ablation.

    Methods often land on the same points (EAP and EAP-IG on Tracr): each method is drawn
    smaller than, and on top of, the ones before it, so every method stays visible.
    """
    tasks = sorted(data.task.unique())
    order = sorted(palette)
    sizes = {m: 130 * 0.6 ** i for i, m in enumerate(order)}
    data = data.sort_values("method", key=lambda m: m.map(order.index), kind="stable")
    g = sns.relplot(data=data, x=x, y=y, hue="method", hue_order=order, palette=palette,
                    size="method", sizes=sizes, size_order=order,
                    style="ablation", style_order=sorted(data.ablation.unique()),
                    col="task", col_order=tasks, col_wrap=min(4, len(tasks)), kind="scatter",
                    height=3.4, aspect=1.15, alpha=0.8,
                    facet_kws={"sharex": False, "sharey": False})
    g.set_titles("{col_name}")
    return g


def _is_curve(ok: pd.DataFrame) -> pd.Series:
    return ok.circuit.astype(str).str.startswith("top=")


def plot_faithfulness(ok: pd.DataFrame, path: Path, palette: dict) -> None:
    """Faithfulness vs sparsity: each discovered or fixed-sparsity circuit as a point; a score
    method's whole ranking as a line (median over seeds of its top-k circuits)."""
    data = ok.dropna(subset=["sparsity", "faithfulness"]).copy()
    if data.empty:
        return _empty_plot(path, "no faithfulness values")
    data["faith_plot"] = data.faithfulness.clip(lower=FAITH_FLOOR)
    log = bool((data.faithfulness > FAITH_FLOOR).any())
    g = _relplot(data[~_is_curve(data)], "sparsity", "faith_plot", palette)
    lines = data[_is_curve(data)]
    # methods often agree exactly (EAP and EAP-IG on Tracr): a dash per method keeps both visible
    patterns = itertools.cycle([(None, None), (4, 2), (1, 1.5), (6, 2, 1, 2)])
    dash = dict(zip(sorted(palette), patterns))
    for task, ax in g.axes_dict.items():
        for (method, _), a in lines[lines.task == task].groupby(["method", "ablation"]):
            m = a.groupby("sparsity").faith_plot.median()
            ax.plot(m.index, m.values, color=palette[method], lw=1.4, alpha=0.8,
                    dashes=dash[method])
        if log:
            ax.set_yscale("log")
        ax.axhline(FAITH_FLOOR if log else 0, color="#999", lw=0.6, zorder=0)
    g.set_axis_labels("sparsity", f"faithfulness (floored at {FAITH_FLOOR:g})" if log
                      else "faithfulness")
    g.figure.suptitle("Faithfulness vs sparsity, lower is better (lines: score methods along "
                      "their whole ranking, median over seeds)", y=1.03)
    _save(g.figure, path)


def plot_roc(ok: pd.DataFrame, path: Path, palette: dict) -> None:
    """ROC against the convention matching each row's ablation, per task: a score method's
    curve from its ranking (one line per seed), a circuit method's circuits as points."""
    data = ok.dropna(subset=["fpr", "tpr"])
    if data.empty:
        return _empty_plot(path, "no ROC points")
    points = data[~_is_curve(data)]
    g = _relplot(points if len(points) else data, "fpr", "tpr", palette)
    curves = data[_is_curve(data)]
    for task, ax in g.axes_dict.items():
        for (method, _, _, _), c in curves[curves.task == task].groupby(
                ["method", "ablation", "seed", "n_examples"]):
            c = c.sort_values(["fpr", "tpr"])
            ax.plot(c.fpr, c.tpr, color=palette[method], lw=1, alpha=0.5,
                    drawstyle="steps-post")
        ax.plot([0, 1], [0, 1], color="#999", lw=0.8, ls="--", zorder=0)
        ax.set(xlim=(-0.03, 1.03), ylim=(-0.03, 1.03), aspect="equal")
    g.set_axis_labels("false positive rate", "true positive rate")
    g.figure.suptitle("ROC vs the ground truth matching the ablation (zero, mean -> zero; "
                      "resample -> resample); lines: score methods' rankings, one per seed",
                      y=1.03)
    _save(g.figure, path)


def plot_runtime(ok: pd.DataFrame, path: Path, palette: dict) -> None:
    """Discovery wall time vs example count, one point per run, median line per method."""
    keys = ["task", "method", "params", "seed", "n_examples", "ablation"]
    runs = ok.drop_duplicates(keys).dropna(subset=["n_examples", "runtime_s"])
    runs = runs[(runs.n_examples > 0) & (runs.runtime_s > 0)]
    if runs.empty:
        return _empty_plot(path, "no runtimes")
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    order = sorted(palette)
    sns.scatterplot(data=runs, x="n_examples", y="runtime_s", hue="method", hue_order=order,
                    palette=palette, alpha=0.35, s=24, ax=ax, legend=False)
    sns.lineplot(data=runs, x="n_examples", y="runtime_s", hue="method", hue_order=order,
                 palette=palette, estimator="median", errorbar=None, marker="o", ax=ax)
    ax.set(xscale="log", yscale="log", xlabel="discovery examples (n_examples)",
           ylabel="wall seconds (runtime_s)")
    ns = sorted(runs.n_examples.unique())
    ax.set_xlim(ns[0] / 2, ns[-1] * 2)
    ax.set_xticks(ns)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_title("Runtime vs example count (points: runs; lines: median over tasks and seeds)")
    ax.legend(title="method", bbox_to_anchor=(1.02, 1), loc="upper left", frameon=False)
    _save(fig, path)


def plot_scaling(df: pd.DataFrame, path: Path, palette: dict) -> None:
    """Recovery (ROC AUC) and integrated faithfulness of each run vs its example count, on
    tasks run at more than one count: median over seeds with a 95% bootstrap band."""
    runs = run_table(df)
    counts = runs.groupby("task").n_examples.nunique()
    runs = runs[runs.task.isin(counts[counts > 1].index)]
    runs = runs.melt(id_vars=["task", "method", "ablation", "n_examples", "seed"],
                     value_vars=["recovery", "faith_area"], var_name="measure").dropna()
    if runs.empty:
        return _empty_plot(path, "no task was run at more than one example count")
    runs["measure"] = runs.measure.map({"recovery": "recovery (ROC AUC)",
                                        "faith_area": "integrated faithfulness"})
    runs["n_examples"] = runs.n_examples.astype(float)
    order = sorted(palette)
    g = sns.relplot(data=runs, x="n_examples", y="value", hue="method", hue_order=order,
                    palette=palette, style="ablation", row="measure", col="task",
                    kind="line", estimator="median", errorbar=("ci", 95), marker="o",
                    height=3.0, aspect=1.2, facet_kws={"sharey": False},
                    err_kws={"alpha": 0.15}, n_boot=1000, seed=0)
    g.set(xscale="log")
    g.set_titles("{col_name}: {row_name}")
    g.set_axis_labels("discovery examples (log)", "")
    single = runs.groupby(["task", "method", "ablation", "n_examples"]).seed.nunique().eq(1)
    note = "; no band where one seed ran" if single.any() else ""
    g.figure.suptitle("Recovery and integrated faithfulness vs example count (median over "
                      f"seeds, 95% bootstrap band{note}); higher is better", y=1.03)
    _save(g.figure, path)


def _log_y(ax) -> None:
    """Log y with plain numbers (0.2, 1, 3), and labelled 2s and 5s when it spans < 2 decades."""
    ax.set_yscale("log")
    lo, hi = ax.get_ylim()
    plain = FuncFormatter(lambda v, _: f"{v:g}")
    ax.yaxis.set_major_formatter(plain)
    ax.yaxis.set_minor_locator(LogLocator(subs=(2, 5) if hi / lo < 100 else (), numticks=12))
    ax.yaxis.set_minor_formatter(plain if hi / lo < 100 else NullFormatter())


def draw_kl_vs_sparsity(points: pd.DataFrame, palette: dict):
    """Figure 2 of Bhaskar et al. 2024 from scaling_table.figure_points: a panel per task (and
    ablation) in columns, a row per example count (KL of one count is not that of another); a
    line per method through its median KL at each sparsity (circles: a score method's fixed
    sparsities; squares: a circuit method's settings, in order of their reached sparsity)."""
    columns = sorted(set(zip(points.task, points.ablation)))
    counts = sorted(points.n_examples.unique())
    fig, axes = plt.subplots(len(counts), len(columns), squeeze=False, sharex=True,
                             figsize=(3.6 * len(columns) + 1.5, 2.9 * len(counts) + 0.6),
                             layout="constrained")
    several = points.ablation.nunique() > 1
    for (i, n), (j, (task, ablation)) in itertools.product(enumerate(counts),
                                                           enumerate(columns)):
        ax = axes[i][j]
        here = points[(points.task == task) & (points.ablation == ablation)
                      & (points.n_examples == n)]
        for method, m in here.groupby("method", sort=True):
            m = m.sort_values("sparsity", kind="stable")
            ax.plot(m.sparsity, m.kl.clip(lower=FAITH_FLOOR), color=palette[method], lw=1.4,
                    marker="o" if m.kind.iloc[0] == "scores" else "s", ms=4, label=method)
        if here.empty:  # e.g. a count run on one task only: no empty frame for the others
            ax.set_visible(False)
            continue
        _log_y(ax)
        ax.set_xlim(FIGURE_MIN_SPARSITY - 0.003, 1.0)
        ax.set_title(f"{task}{f' ({ablation})' if several else ''}, n={n:,}", fontsize=10)
        ax.set_xlabel(f"edge sparsity (>= {FIGURE_MIN_SPARSITY:g}, the paper's range)")
        ax.tick_params(labelbottom=True)
        ax.set_ylabel(f"KL (log, floored at {FAITH_FLOOR:g})")
    handles = {m: plt.Line2D([], [], color=palette[m], lw=1.4,
                             marker="o" if k == "scores" else "s", ms=4)
               for m, k in sorted(set(zip(points.method, points.kind)))}
    fig.legend(handles.values(), handles.keys(), title="method", loc="outside right center",
               frameon=False)
    fig.suptitle(f"KL vs edge sparsity, graphs of >= {MIN_EDGES:,} edges (Bhaskar et al. 2024, "
                 "Fig. 2); lower is better\nmedian over seeds; circles: score methods' fixed "
                 "sparsities, squares: circuit methods' settings", fontsize=10)
    return fig


def plot_kl_vs_sparsity(df: pd.DataFrame, path: Path, palette: dict) -> None:
    """KL vs edge sparsity on the large KL tasks (draw_kl_vs_sparsity), or a one-line note."""
    points = figure_points(df)
    if points.empty:
        return _empty_plot(path, f"no KL task with >= {MIN_EDGES:,} edges and a circuit at "
                                 f"sparsity >= {FIGURE_MIN_SPARSITY:g}")
    _save(draw_kl_vs_sparsity(points, palette), path)


def plot_all(df: pd.DataFrame, out: Path) -> list[str]:
    """The PNGs (a placeholder image when nothing can be plotted); their file names."""
    ok = plot_rows(df)
    methods = sorted(ok.method.dropna().unique())
    palette = dict(zip(methods, sns.color_palette("tab10", max(len(methods), 1))))
    if ok.empty:
        for name in PLOTS:
            _empty_plot(out / name, "no successful runs")
        return list(PLOTS)
    with sns.axes_style("whitegrid"), plt.rc_context({"figure.max_open_warning": 0}):
        plot_faithfulness(ok, out / PLOTS[0], palette)
        plot_roc(ok, out / PLOTS[1], palette)
        plot_runtime(ok, out / PLOTS[2], palette)
        plot_scaling(df, out / PLOTS[3], palette)
        plot_kl_vs_sparsity(df, out / PLOTS[4], palette)
    return list(PLOTS)
