"""Runs one extractor script on one file in a child process: ``python -m streams.sandbox``.

The parent (:mod:`streams.extractor`) sets the time and memory limits and cuts the network
where the OS allows; this side loads the script, calls ``extract(path, info)``, checks the
result is flat and bounded, and prints it as one JSON line.  Anything else is an error line.
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path
from typing import Any

MAX_KEYS = 200
MAX_KEY_LEN = 100
MAX_STR_LEN = 2000


def load_extract(script: Path) -> Any:
    spec = importlib.util.spec_from_file_location("intellidox_extractor", script)
    if spec is None or spec.loader is None:
        raise ValueError(f"cannot load {script.name}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    extract = getattr(module, "extract", None)
    if not callable(extract):
        raise ValueError("the script defines no extract(path, info) function")
    return extract


def check_result(result: Any) -> dict[str, Any]:
    """Flat key-values of str/int/float/bool (None allowed), bounded in size."""
    if not isinstance(result, dict):
        raise ValueError(f"extract() returned {type(result).__name__}, expected a dict")
    if len(result) > MAX_KEYS:
        raise ValueError(f"extract() returned {len(result)} keys, at most {MAX_KEYS} allowed")
    clean: dict[str, Any] = {}
    for key, value in result.items():
        if not isinstance(key, str) or not key or len(key) > MAX_KEY_LEN:
            raise ValueError(f"key {key!r} must be a non-empty string of <= {MAX_KEY_LEN} chars")
        clean[key] = _check_value(key, value)
    return clean


def _check_value(key: str, value: Any) -> Any:
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{key}: {value} is not a finite number")
        return value
    if isinstance(value, str):
        return value[:MAX_STR_LEN]
    raise ValueError(f"{key}: {type(value).__name__} is not str, int, float or bool")


def main(argv: list[str]) -> int:
    script, path, info_json = Path(argv[0]), argv[1], argv[2]
    try:
        result = check_result(load_extract(script)(path, json.loads(info_json)))
    except BaseException as exc:  # the script's own failure is data for the parent
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"[:500]}))
        return 1
    print(json.dumps({"meta": result}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
