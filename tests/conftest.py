"""Shared fixtures: one task cache per test session, each task compiled at most once."""
import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def task_cache(tmp_path_factory):
    """Compiled artifacts for the session: $CIRCUITBENCH_CACHE if set (CI reuses it), else a
    fresh temporary folder."""
    path = os.environ.get("CIRCUITBENCH_CACHE") or str(tmp_path_factory.mktemp("cache"))
    os.environ["CIRCUITBENCH_CACHE"] = path
    return path


@pytest.fixture(scope="session")
def get_task(task_cache):
    from benchmark import load_task
    loaded = {}

    def get(name):
        if name not in loaded:
            loaded[name] = load_task(name)
        return loaded[name]

    return get
