"""The folders a run writes: checked before any job, and owned by one config.

`results:` and `cache:` must name writable folders, never the filesystem root (an empty
`results: ""` would put `circuits/`, `scores/`, ... at `/`). A results folder belongs to the
config that first ran into it (recorded in `<results>/circuitbench-config.json`): a second
config writing there would rescore the shared cells with its own methods only and rebuild the
leaderboard without the first's rows, without a word. So another config is refused, with the
folders named, unless its config says `share_results: true`.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

OWNER_FILE = "circuitbench-config.json"


def check_writable_folder(path: str, what: str) -> None:
    """A folder that exists or can be made, that a file can be written in, and not `/`."""
    fix = f"set {what} to a writable folder (e.g. {what.split()[-1]}: results)"
    if not str(path).strip():
        raise ValueError(f"{what} is empty: outputs would be written at the filesystem root; "
                         f"{fix}")
    if os.path.realpath(path) == os.path.realpath(os.sep):
        raise ValueError(f"{what} is {path!r}, the filesystem root; {fix}")
    why = cannot_write(path)
    if why:
        raise ValueError(f"{what} {path!r} is not writable ({why}); {fix}")


def cannot_write(folder) -> str | None:
    """Why no file can be written in `folder` (made when missing), or None when one can."""
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as err:
        return str(err.strerror or err)
    return None


def config_names(configfiles, workdir: str) -> list[str]:
    """The config files of a run, as paths relative to the working directory (a clone moved
    elsewhere is the same config)."""
    return sorted({os.path.relpath(os.path.abspath(p), workdir) for p in configfiles}) or ["-"]


def _owners(results: str) -> list[str]:
    try:
        return json.loads((Path(results) / OWNER_FILE).read_text())["configs"]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def check_owner(results: str, configs: list[str], share: bool) -> None:
    """Refuse a config other than the results folder's own, unless sharing was asked for."""
    owners = _owners(results)
    if not owners or share or any(c in owners for c in configs):
        return
    raise ValueError(
        f"results folder {results!r} holds the results of {', '.join(owners)}, not of "
        f"{', '.join(configs)}: running into it would rescore the shared cells with this "
        f"config's methods only and rebuild its leaderboard without the other's rows. Set "
        f"`results:` to a folder of this config's own (e.g. results/"
        f"{Path(configs[0]).stem}), or `share_results: true` to write there anyway")


def claim(results: str, configs: list[str]) -> None:
    """Record `configs` among the results folder's owners (atomically)."""
    from benchmark.core.artifact import atomic_write_text
    owners = _owners(results)
    merged = sorted(set(owners) | set(configs))
    if merged != owners:
        atomic_write_text(Path(results) / OWNER_FILE,
                          json.dumps({"configs": merged}, indent=1) + "\n")
