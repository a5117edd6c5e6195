"""Fingerprints of code: what decides whether a cached result is still the result of this code.

Snakemake reruns a job when its params change, not when a module its script imports changes.
So each stage passes, as a param, a hash of the source of every project module that its code
can execute: the entry module and, transitively, every module of the project's packages
(`benchmark`, `methods`, `tasks`, plus the entry module's own package) that it imports,
including imports inside functions. Imports are read from the source (ast), not from a run, so
a branch not taken still counts: the key errs towards rerunning.

A package's `__init__` counts when it is imported by name (`from benchmark import load_task`);
one that runs only because a submodule is imported (`benchmark.protocol`) re-exports and is not
followed, so that editing an unrelated stage does not rerun every method.
"""
from __future__ import annotations

import ast
import hashlib
import importlib.machinery
import importlib.util
from functools import lru_cache
from pathlib import Path

PROJECT_PACKAGES = ("benchmark", "methods", "tasks")


@lru_cache(maxsize=None)
def _spec(module: str):
    """The module's spec, found without importing anything: `importlib.util.find_spec` of a
    dotted name imports its parents, and a name like `benchmark.scoring.evaluate.COLUMNS` imports
    benchmark.scoring.evaluate, hence scipy and torch (2 s of every cluster job's planning)."""
    parent, _, _ = module.rpartition(".")
    try:
        if not parent:  # a top-level name: the finders (editable installs too) locate it
            return importlib.util.find_spec(module)
        outer = _spec(parent)
        if outer is None or outer.submodule_search_locations is None:
            return None
        return importlib.machinery.PathFinder.find_spec(module,
                                                        list(outer.submodule_search_locations))
    except (ImportError, ValueError):
        return None


@lru_cache(maxsize=None)
def _origin(module: str) -> str | None:
    spec = _spec(module)
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    return spec.origin


def _resolve(module: str, level: int, current: str, is_package: bool) -> str:
    if level == 0:
        return module
    base = current.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def _imports(module: str, path: str, roots: frozenset) -> set[str]:
    """Modules imported by `module`'s source; names outside `roots` are not resolved (finding
    `tracr.compiler.lib` would import tracr.compiler, hence jax: 1.5 s per process). Parsed
    once per version of the file (its size and mtime): a job's keys parse some 90 modules."""
    stat = Path(path).stat()
    return set(_parsed_imports(module, path, roots, stat.st_mtime_ns, stat.st_size))


@lru_cache(maxsize=None)
def _parsed_imports(module: str, path: str, roots: frozenset, mtime_ns: int,
                    size: int) -> frozenset[str]:
    tree = ast.parse(Path(path).read_text(), filename=path)
    is_package = Path(path).name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(node.module or "", node.level, module, is_package)
            if base.split(".")[0] not in roots:
                found.add(base)
                continue
            subs = [f"{base}.{a.name}" for a in node.names if _origin(f"{base}.{a.name}")]
            found.update(subs)
            if len(subs) < len(node.names):  # names defined in `base` itself
                found.add(base)
    return frozenset(found)


def module_closure(entry: str, packages: tuple[str, ...] = PROJECT_PACKAGES,
                   skip: frozenset = frozenset()) -> dict[str, str]:
    """{module name: source path} of `entry` and the project modules it can execute, not
    following `skip` (modules reached only on a branch the caller's key does not cover)."""
    roots = frozenset(packages) | {entry.split(".")[0]}
    seen: dict[str, str] = {}
    todo = [entry]
    while todo:
        name = todo.pop()
        if name in seen or name in skip or name.split(".")[0] not in roots:
            continue
        path = _origin(name)
        if path is None:
            continue
        seen[name] = path
        todo.extend(_imports(name, path, roots))
    return seen


@lru_cache(maxsize=None)
def code_key(*entries: str, extra: str = "", skip: frozenset = frozenset()) -> str:
    """One hash over the sources of the closures of `entries` (and `extra`); computed once per
    process (a job's code does not change under it; tests that edit code clear the cache)."""
    h = hashlib.sha256(extra.encode())
    modules: dict[str, str] = {}
    for entry in entries:
        modules.update(module_closure(entry, skip=skip))
    for name in sorted(modules):
        h.update(name.encode() + b"\0" + Path(modules[name]).read_bytes() + b"\0")
    return h.hexdigest()[:12]
