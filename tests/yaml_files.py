"""YAML files as data, read with libyaml: the pure-Python reader takes seconds on a state file
with a megabyte of error text, and the suite reads state files after most ticks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def read_yaml(path: Path) -> Any:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
