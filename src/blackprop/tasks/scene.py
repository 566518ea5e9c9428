"""Scene: up to 10 object crops per scene are classified into 47 object labels; a program names the room.

* ``scene``: offline zero-shot room naming with a text-embedding model (WordLlama, weights from
  its PyPI package): the room whose name is closest, by mean cosine similarity, to the distinct
  detected object names (``skip`` and ``ball`` ignored, as the paper's prompt did); no object
  left: a failed sample.
* ``scene-llm``: a language model is asked "What type of room is most likely?" for the distinct
  object names (sorted; ``skip`` and ``ball`` dropped); the first room named in the answer is
  taken (no random tie-breaking). Needs an endpoint, configured as for ``leaf-llm``
  (``OPENAI_BASE_URL`` / ``OPENAI_API_KEY`` / ``BLACKPROP_LLM_MODEL`` / ``BLACKPROP_LLM_BUDGET``).
  Setting ``BLACKPROP_SCENE_LLM=1`` makes the plain ``scene`` task use the language model too.

Both programs take a ``Sequence`` of up to 10 objects; each distinct tuple is evaluated once
per run (the program's memo), and the language model's answers are also kept on disk, so a
second epoch asks nothing already asked.

Data: synthetic stand-ins (glyph crops, see ``blackprop.data.scenes``; not photographs), or a
user's crops from ``BLACKPROP_SCENE_DATA``. A padded object slot is an all-zero image.
Defaults: 630 train / 270 test scenes (70 / 30 per room), Adam 5e-4 (the paper's), batch 16,
k=100; 20 epochs (the paper used 100 on its photographs). The epochs were chosen on validation
(default ISED, mean of 3 seeds): 10 epochs 65.0%, 20 epochs 75.7%; 40 epochs level with 20 on two
seeds (77.8 against 77.2%); lr 1e-3 at 20 epochs 70.7%, a cosine schedule at 10 epochs 57.2%
(rows in ``experiments/leaf_scene/research.jsonl``, "session-29 probe"; runs in ``experiments/leaf_scene``).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
from typing import Any, final

import torch

from ..data.scenes import (
    MAX_OBJECTS,
    OBJECTS,
    ROOMS,
    generate_scenes,
    glyph_description,
    glyph_source,
    load_scene_folder,
)
from ..models import SceneModel
from ..program import Program
from ..spaces import Discrete, Sequence
from ._base import Defaults, Task, TaskData, carve

__all__ = [
    "ROOM_TEXT", "RoomNamer", "embedding_room_namer", "objects_in_prompt", "scene_prompt",
    "scene_tasks",
]

OBJECT, ROOM = Discrete(OBJECTS), Discrete(ROOMS)
OBJECT_LIST = Sequence(OBJECT, MAX_OBJECTS)
IGNORED = frozenset({"skip", "ball"})
ROOM_TEXT = {"basement": "basement", "bathroom": "bathroom", "bedroom": "bedroom", "dining": "dining room",
             "kitchen": "kitchen", "lab": "lab", "living": "living room", "lobby": "lobby", "office": "office"}
ROOM_ALIASES = {"dining": ["dining room"], "living": ["living room"], "lobby": ["home lobby", "entrance hall"],
                "lab": ["laboratory"]}
SCENE_SYSTEM = "You are an expert at identifying room types from the objects detected in them. Give short answers."
MEAN, STD = 0.5, 0.25


def distinct_objects(objects: list[str]) -> list[str]:
    """Sorted distinct object names without ``skip`` and ``ball``."""
    return sorted(set(objects) - IGNORED)


def scene_prompt(objects: list[str]) -> str:
    """The user prompt of ``scene-llm``; raises ValueError (a failed sample, no call) without objects."""
    names = distinct_objects(objects)
    if not names:
        raise ValueError("no recognisable object in the scene")
    listed = f"There is a {names[0]}." if len(names) == 1 else f"There are {', '.join(names)}."
    return (f"{listed} What type of room is most likely? Choose among "
            f"{', '.join(ROOM_TEXT[r] for r in ROOMS)}.")


PROMPT_PATTERN = re.compile(r"There (?:is a|are) (.+?)\. What type of room")


def objects_in_prompt(prompt: str) -> list[str] | None:
    """The object names a ``scene_prompt`` lists, or None."""
    match = PROMPT_PATTERN.search(prompt)
    return None if match is None else [o.strip() for o in match.group(1).split(",")]


@final
class RoomNamer:
    """``namer(objects) -> room`` (None without objects): mean embedding similarity (see ``EmbeddingChooser``)."""

    def __init__(self) -> None:
        from ..llm.embedding import EmbeddingChooser

        self.chooser = EmbeddingChooser(ROOM_TEXT, ignore=IGNORED)

    def __call__(self, objects: list[str]) -> Any:
        return self.chooser.choose(objects)


@functools.lru_cache(maxsize=1)
def embedding_room_namer() -> RoomNamer:
    return RoomNamer()


def make_embedding_program() -> Program:
    if os.environ.get("BLACKPROP_SCENE_LLM", "").lower() in ("1", "true", "yes"):
        return make_llm_program()
    from ..llm.embedding import EmbeddingUnavailable

    try:
        namer = embedding_room_namer()
    except EmbeddingUnavailable as error:  # the CLI reports ValueErrors as one clear line
        raise ValueError(f"scene: {error}; or use the scene-llm task with an endpoint") from None
    return Program(namer, inputs=(OBJECT_LIST,), output=ROOM, name="scene-embedding")


def make_llm_program() -> Program:
    from ..llm import ChatClient, first_mention, llm_program

    client = ChatClient()  # reads BLACKPROP_LLM_BUDGET itself, refusing a bad value by name
    return llm_program(client, inputs=(OBJECT_LIST,), output=ROOM, prompt=scene_prompt,
                       parse=first_mention(ROOMS, ROOM_ALIASES), system=SCENE_SYSTEM, name="scene-llm")


def scene_data(split: str, size: int, seed: int, train_size: int = 0, train_seed: int = 0) -> TaskData:
    """``size`` rendered scenes (or the user's crops, see the module docstring).

    Rendered "valid" scenes are drawn with their own seed; with the user's crops, "valid" is the end of
    the training scenes' shuffled order (drawn with ``train_seed``), after its first ``train_size``.
    """
    root = os.environ.get("BLACKPROP_SCENE_DATA")
    glyphs = "" if root else glyph_source()
    data = _scene_data(split, size, seed, root or "", glyphs, train_size, train_seed)
    if root:
        return data
    # the source is set here, not in the cache: two reasons for the same glyphs are two sources
    return dataclasses.replace(
        data, source=f"rendered scene stand-ins (not photographs); glyphs: {glyph_description(glyphs)}")


@functools.lru_cache(maxsize=8)
def _scene_data(split: str, size: int, seed: int, root: str, glyphs: str, train_size: int, train_seed: int) -> TaskData:
    if root:
        pool_np, index_np, rooms = load_scene_folder("train" if split == "valid" else split, root)
        chosen = carve(split, size, seed, len(rooms), train_size, train_seed, f"scenes in {root}")
        pool = torch.from_numpy((pool_np - MEAN) / STD)
        return TaskData(pool=pool, index=torch.from_numpy(index_np[chosen]), labels=[rooms[i] for i in chosen],
                        source=f"scene crops (user folder {root})")
    pool_np, index_np, objects, rooms = generate_scenes(size, seed, glyphs)
    pool = torch.from_numpy((pool_np - MEAN) / STD)
    pool = torch.where(pool == 0, torch.full_like(pool, 1e-3), pool)  # keep real crops distinguishable from padding
    return TaskData(pool=pool, index=torch.from_numpy(index_np), labels=rooms, symbols=torch.from_numpy(objects))


def scene_tasks() -> list[Task]:
    defaults = Defaults(epochs=20, lr=5e-4, batch_size=16, num_samples=100, train_size=630, test_size=270,
                        valid_size=180)

    def load(split: str, size: int, seed: int, train_size: int = 0, train_seed: int = 0) -> TaskData:
        return scene_data(split, size, seed, train_size, train_seed)

    paper = {"anesi": 61.46, "reinforce": 47.07, "indecater": 12.28, "nasr": 2.02, "ised": 68.59}
    return [
        Task(name="scene", description="room from up to 10 object crops via offline embedding room naming (stand-ins)",
             make_program=make_embedding_program, make_model=SceneModel, load_data=load, defaults=defaults,
             paper=paper, family="scene"),
        Task(name="scene-llm", description="room from up to 10 object crops via a language model (needs an endpoint)",
             make_program=make_llm_program, make_model=SceneModel, load_data=load, defaults=defaults, paper=paper,
             family="scene"),
    ]
