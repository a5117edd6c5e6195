"""The headline per task family: recovery can only separate methods where the ground truth is
not trivially clean, so the report asks the headline's questions per family as well.

Families (the score rows' `task_family`): `compiled` (tracr's weights as compiled: every
component in its own residual subspace), `compressed` (the residual stream learned down to a
smaller width, so components interfere: superposition), `planted` (a model trained so that
chosen components implement the program), `language model` (no ground truth). Rows written
before the column existed are `compiled` (Tracr) or `language model` (`task@model`).
"""
from __future__ import annotations

import pandas as pd

from benchmark.core.task_names import is_lm_task

ORDER = ("compiled", "compressed", "planted", "language model")
ALL = "all"


def families(df: pd.DataFrame) -> pd.Series:
    """Each row's task family."""
    derived = df.task.map(lambda t: "language model" if is_lm_task(str(t)) else "compiled")
    if "task_family" not in df:
        return derived
    given = df.task_family.astype(object)
    missing = given.isna() | (given.astype(str) == "")
    return given.where(~missing, derived).astype(str)


def _ordered(names) -> list[str]:
    return sorted(names, key=lambda f: (ORDER.index(f) if f in ORDER else len(ORDER), f))


def by_family(df: pd.DataFrame, table) -> pd.DataFrame:
    """`table(df)` over every row (family `all`), and over each family's rows when the scores
    hold more than one family; `family` as the first column."""
    family = families(df) if len(df) else pd.Series(dtype=str)
    parts = [table(df).assign(family=ALL)]
    names = _ordered(family.unique()) if len(df) else []
    if len(names) > 1:
        parts += [table(df[family == f]).assign(family=f) for f in names]
    out = pd.concat([p for p in parts if len(p)] or parts[:1], ignore_index=True)
    return out[["family"] + [c for c in out.columns if c != "family"]]
