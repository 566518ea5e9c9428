"""The README's Python blocks run as written, in order, in one namespace, and do what they say."""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_python_blocks_run(tmp_path, monkeypatch, capsys):
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 250
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) == 2
    namespace: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)  # noqa: S102 - our own README
    assert 0.5 < namespace["accuracy"] <= 1.0  # 2 epochs on 1,024 pairs: far above chance (~0.1)
    assert "test accuracy" in capsys.readouterr().out

    # the second block is my_tasks.py: write it and train it from the command line as MODULE:NAME
    (tmp_path / "my_tasks.py").write_text(blocks[1])
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    from blackprop.cli import main

    assert main(["train", "my_tasks:parity", "--epochs", "1", "--train-size", "64", "--valid-size", "32",
                 "--test-size", "32", "--threads", "1", "--quiet"]) == 0
    assert "parity ised seed 0: valid accuracy" in capsys.readouterr().out
    sys.modules.pop("my_tasks", None)
