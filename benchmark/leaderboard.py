"""The leaderboard, built only from score rows: tables (CSV, Markdown, HTML) and plots.

Per task, one line per (ablation, method, example count, hyper-parameter setting): medians and
spread over seeds of faithfulness (at fixed sparsities for score methods), size, recovery of the
ground truth that matches the ablation, and cost. Sweeps of circuit methods (ACDC thresholds,
Edge Pruning targets) also get an ROC AUC over their settings. Failed, timed-out and invalid runs
are counted and shown, never dropped silently.
"""
from __future__ import annotations

import html
import io
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from benchmark.artifact import atomic_write_bytes, atomic_write_text  # noqa: E402
from benchmark.evaluate import COLUMNS  # noqa: E402
from benchmark.scoring import sweep_auc  # noqa: E402

MATCHING = {"zero": "zero", "resample": "resample", "mean": "zero"}
GROUP = ["task", "ablation", "method", "n_examples", "params"]
SORT = ["task", "method", "ablation", "n_examples", "seed", "params", "circuit"]


def read_rows(score_files) -> pd.DataFrame:
    frames = [pd.read_csv(f, dtype={"params": str, "circuit": str, "error": str})
              for f in score_files]
    frames = [f for f in frames if len(f)]
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)
    return df[COLUMNS].sort_values(SORT, kind="mergesort").reset_index(drop=True)


def _median(s: pd.Series):
    s = pd.to_numeric(s, errors="coerce").dropna()
    return float(s.median()) if len(s) else np.nan


def _iqr(s: pd.Series):
    s = pd.to_numeric(s, errors="coerce").dropna()
    return float(s.quantile(0.75) - s.quantile(0.25)) if len(s) else np.nan


def _truthy(s: pd.Series) -> pd.Series:
    return s.astype(str).str.lower().isin(["true", "1", "1.0"])


def sweep_aucs(df: pd.DataFrame) -> pd.DataFrame:
    """Per (task, ablation, method, n): median over seeds of the ROC AUC across settings."""
    ok = df[(df.status == "ok") & (df.circuit == "discovered")]
    out = []
    for (task, ablation, method, n), g in ok.groupby(GROUP[:4]):
        conv = MATCHING[ablation]
        per_seed = []
        for _, s in g.groupby("seed"):
            if s.params.nunique() < 2:
                continue
            points = list(zip(s[f"fpr_{conv}"].astype(float), s[f"tpr_{conv}"].astype(float)))
            per_seed.append(sweep_auc(points))
        if per_seed:
            out.append({"task": task, "ablation": ablation, "method": method, "n_examples": n,
                        "sweep_auc_trapezoid": float(np.median([a["trapezoid"] for a in per_seed])),
                        "sweep_auc_pessimistic": float(np.median([a["pessimistic"]
                                                                  for a in per_seed]))})
    return pd.DataFrame(out, columns=GROUP[:4] + ["sweep_auc_trapezoid", "sweep_auc_pessimistic"])


def summarise(df: pd.DataFrame, sparsities) -> pd.DataFrame:
    rows = []
    for key, g in df.groupby(GROUP, sort=True):
        task, ablation, method, n, params = key
        conv = MATCHING[ablation]
        seeds = g.drop_duplicates("seed")
        bad = seeds[seeds.status != "ok"]
        ok = g[g.status == "ok"]
        disc = ok[ok.circuit == "discovered"]
        row = {"task": task, "ablation": ablation, "method": method, "n_examples": int(n),
               "params": params, "convention": conv, "runs": len(seeds), "failed": len(bad),
               "failure": "; ".join(sorted(set(bad.status + ": " + bad.error.fillna(""))))[:200],
               "faithfulness_metric": g.faithfulness_metric.iloc[0]}
        if len(disc):
            exact = _truthy(disc[f"exact_{conv}"])
            row.update(faithfulness=_median(disc.faithfulness), faithfulness_iqr=_iqr(disc.faithfulness),
                       edges_kept=_median(disc.edges_kept), sparsity=_median(disc.sparsity),
                       f1=_median(disc[f"f1_{conv}"]),
                       exact_rate=f"{int(exact.sum())}/{len(disc)}",
                       exact_fraction=float(exact.mean()))
        for s in sparsities:
            at = ok[ok.circuit == f"sparsity={s:g}"]
            if len(at):
                row[f"faith@{s:g}"] = _median(at.faithfulness)
        by_seed = ok.drop_duplicates("seed")
        if by_seed[f"auroc_{conv}"].notna().any():
            row.update(auroc=_median(by_seed[f"auroc_{conv}"]), auroc_iqr=_iqr(by_seed[f"auroc_{conv}"]))
        row.update(runtime_s=_median(seeds.runtime_s), forward_passes=_median(seeds.forward_passes),
                   backward_passes=_median(seeds.backward_passes),
                   peak_mem_mb=_median(seeds.peak_mem_mb))
        rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    table = table.merge(sweep_aucs(df), on=GROUP[:4], how="left")
    faith_cols = [f"faith@{s:g}" for s in sparsities if f"faith@{s:g}" in table]
    lead = ["task", "ablation", "method", "n_examples", "params", "convention", "runs", "failed",
            "faithfulness_metric", "faithfulness", "faithfulness_iqr", *faith_cols, "sparsity",
            "edges_kept", "f1", "exact_rate", "exact_fraction", "auroc", "auroc_iqr",
            "sweep_auc_trapezoid", "sweep_auc_pessimistic", "runtime_s", "forward_passes",
            "backward_passes", "peak_mem_mb", "failure"]
    return table.reindex(columns=[c for c in lead if c in table.columns])


def _fmt(v, col: str) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return ""
    if isinstance(v, float):
        if col in ("runtime_s", "peak_mem_mb"):
            return f"{v:.3g}"
        if col in ("forward_passes", "backward_passes", "edges_kept"):
            return f"{v:.0f}"
        return f"{v:.3g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.1e}"
    return str(v)


DISPLAY = ["ablation", "method", "n_examples", "params", "runs", "faithfulness", "faith@0.9",
           "sparsity", "f1", "exact_rate", "auroc", "sweep_auc_trapezoid",
           "sweep_auc_pessimistic", "runtime_s", "forward_passes", "backward_passes"]


def _varying_params(table: pd.DataFrame) -> dict:
    """Per method, the hyper-parameters whose values differ between rows: what to display."""
    out = {}
    for method, t in table.groupby("method"):
        values = [json.loads(p) if isinstance(p, str) and p else {} for p in t.params]
        keys = sorted({k for v in values for k in v})
        out[method] = [k for k in keys if len({json.dumps(v.get(k)) for v in values}) > 1]
    return out


def _short_params(params: str, keys: list) -> str:
    values = json.loads(params) if isinstance(params, str) and params else {}
    return ", ".join(f"{k}={values.get(k)}" for k in keys) or "default"


def _display_rows(table: pd.DataFrame):
    cols = [c for c in DISPLAY if c in table.columns]
    varying = _varying_params(table)
    for _, r in table.iterrows():
        cells = [_short_params(r[c], varying[r["method"]]) if c == "params" else _fmt(r[c], c)
                 for c in cols]
        status = f"{r['failed']}/{r['runs']} {r['failure'].split(':')[0]}" if r["failed"] else ""
        yield cols, cells, status


def to_markdown(table: pd.DataFrame, df: pd.DataFrame) -> str:
    out = ["# circuitbench leaderboard", "",
           "Medians over seeds. Faithfulness is KL(full || circuit) (MSE for numerical tasks) on "
           "the held-out split; recovery (F1, exact, AUROC) is against the ground truth that "
           "matches the ablation (zero -> `zero`, resample -> `resample`, mean -> `zero`). "
           "`failed` counts runs that crashed, timed out or gave non-finite numbers. `params` "
           "shows the hyper-parameters that vary; leaderboard.csv has them all.", ""]
    for task, t in table.groupby("task", sort=True):
        metric = t.faithfulness_metric.iloc[0]
        out += [f"## {task} ({metric})", ""]
        header = None
        for cols, cells, status in _display_rows(t):
            if header is None:
                header = cols + ["failed"]
                out.append("| " + " | ".join(header) + " |")
                out.append("|" + "---|" * len(header))
            out.append("| " + " | ".join(cells + [f"**{status}**" if status else ""]) + " |")
        out.append("")
    return "\n".join(out) + "\n"


def to_html(table: pd.DataFrame, df: pd.DataFrame, plots: list[str], provenance: dict) -> str:
    esc = html.escape
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>circuitbench leaderboard"
             "</title><style>body{font-family:sans-serif;margin:2em;max-width:1400px}"
             "table{border-collapse:collapse;margin-bottom:2em;font-size:13px}"
             "th,td{border:1px solid #ccc;padding:3px 7px;text-align:right}"
             "th{background:#eef}td.l{text-align:left}tr.failed td{background:#fdd}"
             "img{max-width:100%;border:1px solid #ddd;margin:1em 0}"
             "footer{font-size:12px;color:#555}</style></head><body>",
             "<h1>circuitbench leaderboard</h1>",
             "<p>Medians over seeds. Faithfulness: KL(full || circuit), MSE for numerical tasks, "
             "on the held-out split. Recovery is against the ground truth matching the ablation "
             "(zero&rarr;zero, resample&rarr;resample, mean&rarr;zero). Rows with failed, "
             "timed-out or invalid runs are red.</p>"]
    for task, t in table.groupby("task", sort=True):
        parts.append(f"<h2>{esc(task)} ({esc(t.faithfulness_metric.iloc[0])})</h2><table>")
        first = True
        for cols, cells, status in _display_rows(t):
            if first:
                parts.append("<tr>" + "".join(f"<th>{esc(c)}</th>" for c in cols + ["failed"])
                             + "</tr>")
                first = False
            cls = " class='failed'" if status else ""
            tds = "".join(f"<td{' class=l' if c in ('method', 'params', 'ablation') else ''}>"
                          f"{esc(v)}</td>" for c, v in zip(cols, cells))
            parts.append(f"<tr{cls}>{tds}<td class=l>{esc(status)}</td></tr>")
        parts.append("</table>")
    for p in plots:
        parts.append(f"<h2>{esc(Path(p).stem.replace('_', ' '))}</h2><img src='{esc(p)}'>")
    commits = sorted(df.git_commit.dropna().astype(str).unique())
    versions = sorted(set(zip(df.method.astype(str), df.method_version.astype(str))))
    parts.append("<footer><h3>Provenance</h3><p>" + esc(json.dumps(provenance, sort_keys=True))
                 + "</p><p>result commits: " + esc(", ".join(commits)) + "</p><p>method "
                 "versions: " + esc(", ".join(f"{m} v{v}" for m, v in versions)) + "</p></footer>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _save(fig, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def _empty(path: Path, message: str) -> None:
    fig, ax = plt.subplots(figsize=(4, 2))
    ax.text(0.5, 0.5, message, ha="center", va="center")
    ax.axis("off")
    _save(fig, path)


def plot_all(df: pd.DataFrame, out: Path) -> list[str]:
    ok = df[df.status == "ok"].copy()
    for c in ("sparsity", "faithfulness", "runtime_s", "n_examples"):
        ok[c] = pd.to_numeric(ok[c], errors="coerce")
    ok["convention"] = ok.ablation.map(MATCHING)
    ok["fpr"] = [r[f"fpr_{c}"] for c, (_, r) in zip(ok.convention, ok.iterrows())]
    ok["tpr"] = [r[f"tpr_{c}"] for c, (_, r) in zip(ok.convention, ok.iterrows())]
    names = ["faithfulness_vs_sparsity.png", "roc.png", "runtime_vs_examples.png"]
    if ok.empty:
        for n in names:
            _empty(out / n, "no successful runs")
        return names
    sns.set_theme(style="whitegrid")
    g = sns.relplot(data=ok, x="sparsity", y="faithfulness", hue="method", style="ablation",
                    col="task", col_wrap=min(4, ok.task.nunique()), kind="scatter",
                    facet_kws={"sharey": False}, height=3.2, alpha=0.7)
    g.set(yscale="symlog")
    g.figure.suptitle("faithfulness (KL or MSE, lower is better) vs sparsity", y=1.02)
    _save(g.figure, out / names[0])
    g = sns.relplot(data=ok, x="fpr", y="tpr", hue="method", style="ablation", col="task",
                    col_wrap=min(4, ok.task.nunique()), kind="scatter", height=3.2, alpha=0.7)
    g.set(xlim=(-0.02, 1.02), ylim=(-0.02, 1.02))
    g.figure.suptitle("ROC points against the matching ground truth", y=1.02)
    _save(g.figure, out / names[1])
    runs = ok.drop_duplicates(["task", "method", "params", "seed", "n_examples", "ablation"])
    fig, ax = plt.subplots(figsize=(6, 4))
    sns.lineplot(data=runs, x="n_examples", y="runtime_s", hue="method", style="task",
                 marker="o", estimator="median", errorbar=None, ax=ax)
    ax.set(xscale="log", yscale="log", xlabel="discovery examples", ylabel="wall seconds")
    ax.set_title("runtime vs example count (median over seeds)")
    _save(fig, out / names[2])
    return names


def build_leaderboard(score_files, out_dir, provenance: dict | None = None,
                      sparsities=None) -> dict[str, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    df = read_rows(score_files)
    if sparsities is None:
        labels = df.circuit.dropna().astype(str)
        sparsities = sorted({float(c.split("=")[1]) for c in labels if c.startswith("sparsity=")})
    table = summarise(df, sparsities)
    plots = plot_all(df, out)
    files = {"scores.csv": df.to_csv(index=False), "leaderboard.csv": table.to_csv(index=False),
             "leaderboard.md": to_markdown(table, df),
             "leaderboard.html": to_html(table, df, plots, provenance or {})}
    for name, text in files.items():
        atomic_write_text(out / name, text)
    return {name: out / name for name in list(files) + plots}
