"""The program gallery: every registered task on a few of its real test inputs.

For each task: the inputs as PNG data URIs (real MNIST digits for the digit tasks, digits and the
hand-written operators of ``BLACKPROP_SYMBOLS`` for HWF, rendered stand-ins for leaf and scene),
the symbols a model reads (an untrained one, initialised from ``seed``, unless ``models`` gives
one), the program's output on those symbols (``BlackBox.predict``), the label, and the program's
source (``inspect.getsource``).

    >>> entry = task_entry("sum2", examples=1)
    >>> entry["name"], len(entry["examples"][0]["images"])
    ('sum2', 2)
"""

from __future__ import annotations

import base64
import inspect
import io
import math
import warnings
from typing import Any

import torch
from PIL import Image

from ..beliefs import Beliefs
from ..blackbox import BlackBox
from ..program import BaseProgram
from ..spaces import Sequence
from .compute import jsonable

__all__ = ["gallery", "png_data_uri", "task_entry"]

DATA_NOTES = {
    "mnist-r": "real MNIST test digits",
    "sum-n": "real MNIST test digits",
    "sudoku": "a generated board with real MNIST test digits as givens",
    "hwf": "real MNIST digits and hand-written operators (BLACKPROP_SYMBOLS)",
    "leaf": "rendered stand-ins for leaf photographs (or BLACKPROP_LEAF_DATA)",
    "scene": "rendered stand-ins for scene photographs (or BLACKPROP_SCENE_DATA)",
}
MAX_SYMBOLS = 24


def png_data_uri(image: torch.Tensor, scale: int = 1) -> str:
    """A ``[H, W]``, ``[1, H, W]`` or ``[3, H, W]`` tensor (any range) as a PNG data URI, min-max scaled to 0..255."""
    image = image.detach().float().cpu()
    if image.dim() == 3 and image.shape[0] == 1:
        image = image[0]
    low, high = float(image.min()), float(image.max())
    pixels = ((image - low) / (high - low if high > low else 1.0) * 255).round().clamp(0, 255).to(torch.uint8)
    array = pixels.permute(1, 2, 0).numpy() if pixels.dim() == 3 else pixels.numpy()
    picture = Image.fromarray(array, mode="RGB" if pixels.dim() == 3 else "L")
    if scale > 1:
        picture = picture.resize((picture.width * scale, picture.height * scale), Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def mosaic(images: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """Images ``[n, C, H, W]`` laid out on a sqrt(n) grid (a sudoku board), blank where absent."""
    n, channels, height, width = images.shape
    side = math.ceil(math.sqrt(n))
    board = torch.full((channels, side * height, side * width), float(images.min()))
    for i in range(n):
        if present[i]:
            row, column = divmod(i, side)
            board[:, row * height:(row + 1) * height, column * width:(column + 1) * width] = images[i]
    return board


def program_source(task: Any, program: BaseProgram | None) -> str:
    if program is not None:
        try:
            return inspect.getsource(program.fn)
        except (OSError, TypeError):
            pass
    return "# the program is built by this factory (it needs a language-model endpoint to run):\n" + \
        inspect.getsource(task.make_program)


def sibling_program(task: Any) -> BaseProgram | None:
    """A program of the same family that builds here (leaf-llm -> leaf-dt), for its input spaces."""
    from ..tasks import get_task, task_names

    for name in task_names():
        other = get_task(name)
        if other.family == task.family and other.name != task.name:
            try:
                return other.make_program()
            except (ValueError, OSError):
                continue
    return None


def read_symbols(spaces: tuple[Any, ...], outputs: tuple[Any, ...]) -> list[list[Any]]:
    """The most likely value of every valid variable, per example, decoded through the input spaces."""
    beliefs = Beliefs.from_inputs(spaces, outputs)
    best = beliefs.probs.argmax(dim=2)
    elements = [s.element if isinstance(s, Sequence) else s for s in spaces
                for _ in range(s.max_len if isinstance(s, Sequence) else 1)]
    rows = []
    for b in range(beliefs.batch_size):
        row = [elements[v].values[int(best[b, v])] for v in range(beliefs.num_variables) if beliefs.valid[b, v]]
        rows.append([jsonable(x) for x in row])
    return rows


def task_entry(name: str, examples: int = 3, model: torch.nn.Module | None = None, seed: int = 0) -> dict[str, Any]:
    """One gallery entry (see the module docstring)."""
    from ..tasks import get_task

    task = get_task(name)
    entry: dict[str, Any] = {"name": name, "description": task.description, "family": task.family,
                             "data_note": DATA_NOTES.get(task.family, "the task's test data"),
                             "model": "the given model" if model is not None else f"an untrained model (seed {seed})"}
    try:
        program: BaseProgram | None = task.make_program()
        called = True
    except (ValueError, OSError) as error:
        program, called = sibling_program(task), False
        entry["program_note"] = str(error)
    entry["source"] = program_source(task, program if called else None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. the missing emoji font, reported by the task itself elsewhere
        data = task.data("test", examples)
    rows = torch.arange(len(data))
    images = data.images(rows)
    if model is None:
        with torch.random.fork_rng(devices=[]):  # the untrained weights from ``seed``; global RNG untouched
            torch.manual_seed(seed)
            model = task.make_model()
    model.eval()
    with torch.no_grad():
        outputs = model(images)
    symbols = read_symbols(program.inputs, outputs) if program is not None else [[] for _ in rows]
    if called and program is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a failing call on an untrained model's reading is expected
            predictions = BlackBox(program).predict(*outputs)
    else:
        predictions = ["(not called: needs a language-model endpoint)"] * len(rows)
    entry["examples"] = []
    for i in rows.tolist():
        present = data.index[i] >= 0
        if data.index.shape[1] > 12:
            pictures = [png_data_uri(mosaic(images[i], present))]
        else:
            pictures = [png_data_uri(images[i, j], scale=2 if images.shape[-1] < 48 else 1)
                        for j in range(images.shape[1]) if present[j]]
        read = symbols[i]
        entry["examples"].append({
            "images": pictures,
            "symbols": read[:MAX_SYMBOLS] + (["..."] if len(read) > MAX_SYMBOLS else []),
            "output": short(predictions[i]), "label": short(data.labels[i])})
    entry["thumbnail"] = entry["examples"][0]["images"][0] if entry["examples"] else ""
    return entry


def short(value: Any) -> Any:
    value = jsonable(value) if not isinstance(value, (tuple, list)) else str(tuple(value))
    return value if not isinstance(value, str) or len(value) <= 60 else value[:57] + "..."


def gallery(examples: int = 3, models: dict[str, torch.nn.Module] | None = None, seed: int = 0) -> dict[str, Any]:
    """Every registered task's entry; ``models`` maps task names to trained models to read with."""
    from ..data.mnist import DataUnavailable
    from ..tasks import get_task, task_names

    models = models or {}
    tasks = []
    for name in task_names():
        try:
            tasks.append(task_entry(name, examples, models.get(name), seed))
        except (DataUnavailable, OSError) as error:  # e.g. no operator archive for HWF: say so on the page
            tasks.append({"name": name, "description": get_task(name).description, "family": get_task(name).family,
                          "data_note": f"data unavailable here: {error}", "model": "none", "source": "",
                          "examples": [], "thumbnail": ""})
    return {"tasks": tasks, "note": f"{len(tasks)} registered tasks; click one to see {examples} test examples "
                                    "and what a model reads from them"}

