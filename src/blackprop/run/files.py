"""Where a command writes: a destination checked before any training, and a result that is never lost.

    prepare_destination("--json", Path("out/result.json"))   # creates out/, checks it is writable
    save_result(result, Path("out/result.json"), checkpoint)  # else beside the checkpoint, else a temp file
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["prepare_destination", "save_result"]


def prepare_destination(flag: str, path: Path) -> None:
    """Create ``path``'s folder and check that a file can be written there, before any training."""
    if path.is_dir():
        raise ValueError(f"{flag} {path}: is a folder; give a file path, e.g. {path / 'result.json'}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".blackprop-check-"):
            pass
    except OSError as error:
        raise ValueError(f"{flag} {path}: cannot write there ({error.strerror or error}); pick a writable path"
                         ) from None


def save_result(result: dict[str, Any], path: Path, checkpoint: Path | None) -> Path:
    """Write ``result`` to ``path``; if that fails, beside the checkpoint or to a temporary file (printed)."""
    text = json.dumps(result, indent=1)
    try:
        path.write_text(text)
        return path
    except OSError as error:
        reason = error.strerror or str(error)
    fallbacks = [checkpoint.with_name(checkpoint.name + ".result.json")] if checkpoint else []
    for fallback in fallbacks:
        try:
            fallback.write_text(text)
            break
        except OSError:
            continue
    else:
        handle, name = tempfile.mkstemp(prefix="blackprop-result-", suffix=".json")
        with os.fdopen(handle, "w") as f:
            f.write(text)
        fallback = Path(name)
    print(f"blackprop train: cannot write --json {path} ({reason}); the result is in {fallback}", file=sys.stderr)
    return fallback
