"""The provenance keys of one planning, computed by the main Snakemake process and handed to
its cluster jobs.

Every job's params carry keys (method version and code hash, task key, model key, scoring and
data code keys: benchmark/core/fingerprint.py) so that Snakemake reruns a job when they change. A
cluster job starts Snakemake twice (the batch script's and the job step's), and each evaluates
its job's params again: finding a method's version imports every adapter, hence torch, 1.3 s of
CPU per start. The same goes for where results come from: the git commit (a `git rev-parse`
per job otherwise) and the package versions (benchmark/core/provenance.py reads them). The main
process computes the keys of the whole config once and puts them in the environment, which its
local jobs inherit and Slurm passes on (`sbatch --export=ALL`); a job that finds none there
(another executor) computes its own: the same values, only slower. The main process never
reads them from its environment: it is where they are made.
"""
from __future__ import annotations

import json
import os
from importlib.metadata import version as package_version
from typing import Callable

from benchmark.core.fingerprint import code_key
from benchmark.core.provenance import ALL_PACKAGES, head_commit
from benchmark.core.provenance import PLAN_KEYS_ENV as ENV
from benchmark.core.registry import METHODS


class PlanKeys:
    """kind -> name -> key, computed on first use or inherited from the main process."""

    def __init__(self, inherit: bool):
        self.values: dict[str, dict[str, str]] = {}
        if inherit:
            try:
                self.values = json.loads(os.environ.get(ENV) or "{}")
            except ValueError:  # a damaged variable costs time, never a wrong key
                self.values = {}
        else:  # one from outside is not this plan's: nothing here reads it (provenance.py)
            os.environ.pop(ENV, None)
        self.inherited = bool(self.values)  # a job given its plan's keys

    def get(self, kind: str, name: str, compute: Callable[[str], str]) -> str:
        table = self.values.setdefault(kind, {})
        if name not in table:
            table[name] = compute(name)
        return table[name]

    def get_sparse(self, kind: str, name: str, compute: Callable[[str], str]) -> str:
        """A key that most names lack (''): only non-empty ones are kept and handed down, so a
        job given its plan's keys takes a name missing from them as '' (computing it would
        import the method, hence torch); a process without them computes it."""
        table = self.values.get(kind, {})
        if name in table or self.inherited:
            return table.get(name, "")
        value = compute(name)
        if value:
            self.values.setdefault(kind, {})[name] = value
        return value

    def add_provenance(self) -> None:
        """The git commit and the versions of every package a result records or is keyed on
        (benchmark/core/provenance.py), asked once here rather than in every job."""
        self.get("git", "commit", lambda _: head_commit())
        for name in ALL_PACKAGES:
            self.get("package", name, package_version)

    def hand_down(self) -> None:
        """Put the keys computed so far where the jobs this process submits will find them."""
        os.environ[ENV] = json.dumps(self.values, sort_keys=True)


def method_source_hash(method: str) -> str:
    """Hash of every project module a discovery with `method` can execute (the adapter's module,
    the modules it imports, the discover stage): editing any of them reruns its jobs."""
    return code_key(METHODS.get(method).__module__, "benchmark.workflow.discover_stage")


def input_files_key(method: str, values: dict) -> str:
    """'' for a run that reads no file besides its task; else `+inputs=` and the sha256 of the
    content of every file it reads (Adapter.input_files: from_file's circuit file), so that
    new content reruns it and a file moved or touched does not. Appended to the job's `source`
    param: the other jobs' params stay as they were (no rerun of existing results)."""
    import hashlib
    cls = METHODS.get(method)
    hashes = []
    for path in cls.input_files(cls.params(**values)):
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        hashes.append(h.hexdigest())
    return "+inputs=" + ",".join(hashes) if hashes else ""


def scoring_code_key() -> str:
    """Hash of the scoring code (the score stage and what it imports): editing it rescores
    every circuit."""
    return code_key("benchmark.scoring.stage")


def report_code_key() -> str:
    """Hash of the report code (the leaderboard job: tables, headline, HTML, plots): editing
    it rebuilds the leaderboard, and nothing else."""
    return code_key("benchmark.report.leaderboard")


def data_code_key() -> str:
    """Hash of the dataset code: editing it rebuilds every dataset."""
    return code_key("benchmark.graph.data")
