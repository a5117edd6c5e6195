"""Name -> object registries for tasks and methods, filled from two places.

Built-ins are the modules of a package (`tasks/`, `methods/`) that define a module-level
attribute (`TASK`, `ADAPTER`): adding one is writing one module. Outside packages register
through an entry-point group (`circuitbench.tasks`, `circuitbench.methods`) whose value points
at the object. A name registered twice is an error that names both sources; an unknown name is
an error that lists the known ones. A module or entry point that fails to import is reported
(a warning naming it and its error, once per process) and skipped: one broken adapter must not
stop runs that do not use it, nor `python -m benchmark list`; asking for a name it may have
defined names it.
"""
from __future__ import annotations

import importlib
import pkgutil
import sys
from importlib.metadata import entry_points


class RegistryError(KeyError):
    def __str__(self):  # KeyError would quote the message
        return str(self.args[0])


class Registry:
    def __init__(self, kind: str, package: str, attribute: str, group: str):
        self.kind, self.package, self.attribute, self.group = kind, package, attribute, group
        self._items: dict | None = None
        self._sources: dict = {}
        self.broken: dict[str, str] = {}  # module or entry point -> why it failed to import

    def _load(self) -> dict:
        if self._items is not None:
            return self._items
        items: dict = {}
        self.broken = {}
        pkg = importlib.import_module(self.package)
        for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
            if info.name.startswith("_"):
                continue
            name = f"{self.package}.{info.name}"
            module = self._import(name, lambda: importlib.import_module(name))
            obj = getattr(module, self.attribute, None)
            if obj is not None:
                self._add(items, obj, f"module {module.__name__}")
        for ep in entry_points(group=self.group):
            obj = self._import(f"entry point {ep.name} = {ep.value}", ep.load)
            if obj is not None:
                self._add(items, obj, f"entry point {ep.name} = {ep.value}")
        self._items = items
        return items

    def _import(self, source: str, load):
        """`load()`, or None with the failure recorded and reported (once per process)."""
        try:
            return load()
        except Exception as err:  # any error of someone's module: a SyntaxError, an ImportError
            why = f"{type(err).__name__}: {err}".splitlines()[0]
            self.broken[source] = why
            if (source, why) not in _REPORTED:  # tasks/ feeds three registries: warn once
                _REPORTED.add((source, why))
                print(f"circuitbench: warning: {source} failed to import ({why}); what it "
                      "defines is unavailable until it is fixed or removed", file=sys.stderr)
            return None

    def _add(self, items: dict, obj, source: str) -> None:
        name = obj.name
        if name in items:
            raise RegistryError(f"{self.kind} {name!r} is registered twice: by "
                                f"{self._sources[name]} and by {source}; rename one of them")
        items[name] = obj
        self._sources[name] = source

    def names(self) -> list[str]:
        return sorted(self._load())

    def get(self, name: str):
        items = self._load()
        if name not in items:
            broken = "".join(f"; {source} failed to import ({why}) and may define it"
                             for source, why in sorted(self.broken.items()))
            raise RegistryError(f"unknown {self.kind} {name!r}; known {self.kind}s: "
                                f"{', '.join(sorted(items))}{broken}")
        return items[name]

    def module_of(self, name: str) -> str | None:
        """The module that registered `name` (None for entry points and run-time additions)."""
        self.get(name)
        source = self._sources[name]
        return source.split()[-1] if source.startswith("module ") else None

    def register(self, obj, source: str = "register()"):
        """Add an object at run time (tests, notebooks)."""
        self._add(self._load(), obj, source)
        return obj

    def reset(self) -> None:
        self._items, self._sources = None, {}


_REPORTED: set = set()  # (source, error) already warned about in this process

TASKS = Registry("task", "tasks.tracr", "TASK", "circuitbench.tasks")
METHODS = Registry("method", "methods", "ADAPTER", "circuitbench.methods")
PROMPT_TASKS = Registry("prompt task", "tasks.prompts", "PROMPT_TASK", "circuitbench.prompt_tasks")
LM_MODELS = Registry("language model", "tasks.models", "LM_MODEL", "circuitbench.lm_models")
