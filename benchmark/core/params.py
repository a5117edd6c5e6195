"""Hyper-parameters of method adapters: declared with their ranges, checked when a run is planned.

`param` is what an adapter's `Params` dataclass uses (re-exported by benchmark.protocol);
`check_param` and `convert_param` are what `Adapter.params` applies to config and CLI values.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import field


def param(default, *, minimum=None, exclusive_minimum=None, maximum=None, choices=None):
    """A hyper-parameter with its range, declared where it is defined, e.g.
    `threshold: float = param(0.01, minimum=0)`. Values are also checked for their type (that of
    the default; bools are not numbers, ints are floats) and, for numbers, for being finite."""
    limits = {"minimum": minimum, "exclusive_minimum": exclusive_minimum, "maximum": maximum,
              "choices": tuple(choices) if choices is not None else None}
    return field(default=default, metadata={"limits": limits})


def check_param(method: str, f: dataclasses.Field, value):
    """`value` for parameter `f`, or a ValueError that names the parameter and what it takes."""
    default = f.default
    where = f"method {method!r}: parameter {f.name}"
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ValueError(f"{where} expects true or false, got {value!r}")
    elif isinstance(default, numbers.Real):
        want_int = isinstance(default, int)
        ok = isinstance(value, numbers.Integral) if want_int else isinstance(value, numbers.Real)
        if isinstance(value, bool) or not ok:
            raise ValueError(f"{where} expects {'an integer' if want_int else 'a number'}, "
                             f"got {value!r}")
        if not math.isfinite(float(value)):
            raise ValueError(f"{where} must be finite, got {value!r}")
        value = int(value) if want_int else float(value)
    elif isinstance(default, str) and not isinstance(value, str):
        raise ValueError(f"{where} expects a string, got {value!r}")
    lim = f.metadata.get("limits", {})
    if lim.get("minimum") is not None and value < lim["minimum"]:
        raise ValueError(f"{where} must be >= {lim['minimum']}, got {value!r}")
    if lim.get("exclusive_minimum") is not None and value <= lim["exclusive_minimum"]:
        raise ValueError(f"{where} must be > {lim['exclusive_minimum']}, got {value!r}")
    if lim.get("maximum") is not None and value > lim["maximum"]:
        raise ValueError(f"{where} must be <= {lim['maximum']}, got {value!r}")
    if lim.get("choices") is not None and value not in lim["choices"]:
        raise ValueError(f"{where} must be one of {list(lim['choices'])}, got {value!r}")
    return value


def convert_param(value, f: dataclasses.Field, method: str):
    if not isinstance(value, str):
        return value
    default = f.default if f.default is not dataclasses.MISSING else None
    target = type(default) if default is not None else str
    try:
        if target is bool:
            if value.lower() in ("1", "true", "yes"):
                return True
            if value.lower() in ("0", "false", "no"):
                return False
            raise ValueError(value)
        return target(value)
    except ValueError:
        raise ValueError(f"method {method!r}: parameter {f.name} expects "
                         f"{target.__name__}, got {value!r}") from None
