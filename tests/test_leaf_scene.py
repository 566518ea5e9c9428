"""Leaf and scene tasks: the decision tree, the stand-in data, the models, the programs, the
user-folder loaders, and that a second scene epoch asks the language model nothing already asked."""

from __future__ import annotations

import collections
import re

import numpy as np
import pytest
import torch

from blackprop.cli import main as cli_main
from blackprop.data.leaves import MARGINS, SHAPES, SPECIES, TEXTURES, render_leaf
from blackprop.data.scenes import MAX_OBJECTS, OBJECTS, ROOM_OBJECTS, ROOMS, generate_scenes
from blackprop.llm.local_server import LocalChatServer, scripted_responder
from blackprop.models import LeafModel, SceneModel
from blackprop.run import RunConfig, train
from blackprop.tasks import get_task
from blackprop.tasks.leaf import decision_tree, features_in_prompt, leaf_prompt
from blackprop.tasks.scene import objects_in_prompt, scene_prompt

torch.set_num_threads(1)


def test_decision_tree_follows_the_rules():
    assert decision_tree("serrate", "oblong", "rough") == "Ocimum basilicum"
    assert decision_tree("indented", "ovate", "glossy") == "Jatropha curcas"
    assert decision_tree("lobed", "elliptical", "smooth") == "Platanus orientalis"
    assert decision_tree("serrulate", "lanceolate", "leathery") == "Citrus limon"
    assert [decision_tree("entire", s, "rough") for s in ("ovate", "lanceolate", "oblong", "obovate")] == [
        "Pongamia Pinnata", "Mangifera indica", "Syzygium cumini", "Psidium guajava"]
    assert [decision_tree("entire", "elliptical", t) for t in ("leathery", "rough", "glossy", "smooth")] == [
        "Alstonia Scholaris", "Terminalia Arjuna", "Citrus limon", "Punica granatum"]
    assert [decision_tree("undulate", s, "glossy") for s in SHAPES] == [
        "Terminalia Arjuna", "Mangifera indica", "Syzygium cumini", "Syzygium cumini", "Syzygium cumini"]
    counts = collections.Counter(decision_tree(m, s, t) for m in MARGINS for s in SHAPES for t in TEXTURES)
    assert set(counts) == set(SPECIES) and sum(counts.values()) == 6 * 5 * 4


def test_leaf_data_is_deterministic_and_labelled_by_the_tree():
    task = get_task("leaf-dt")
    first, again = task.load_data("train", 44, 7), task.load_data("train", 44, 7)
    assert torch.equal(first.pool, again.pool) and first.labels == again.labels
    assert first.pool.shape == (44, 3, 64, 64) and first.index.shape == (44, 1)
    for (m, s, t), label in zip(first.symbols.tolist(), first.labels, strict=True):
        assert decision_tree(MARGINS[m], SHAPES[s], TEXTURES[t]) == label
    assert collections.Counter(first.labels) == {species: 4 for species in SPECIES}  # balanced
    other = task.load_data("train", 44, 8)
    assert not torch.equal(first.pool, other.pool)


def test_render_leaf_rejects_unknown_features():
    with pytest.raises(ValueError, match=r"render_leaf\(margin=...\): expected one of"):
        render_leaf("wavy", "ovate", "glossy", np.random.default_rng(0))


def test_leaf_model_gives_three_distributions_and_symbols():
    model = LeafModel().eval()
    images = torch.randn(5, 1, 3, 64, 64)
    margin, shape, texture = model(images)
    assert margin.shape == (5, 6) and shape.shape == (5, 5) and texture.shape == (5, 4)
    assert torch.allclose(margin.sum(1), torch.ones(5), atol=1e-5)
    assert model.symbols(images).shape == (5, 3)


def test_leaf_dt_trains_and_reports_symbol_accuracy():
    result = train(RunConfig(task="leaf-dt", epochs=1, train_size=32, test_size=16, num_samples=20, threads=1,
                             progress=False))
    assert 0.0 <= result["test_accuracy"] <= 1.0 and result["symbol_accuracy"] is not None
    assert result["program_calls"] <= 6 * 5 * 4  # each distinct triple evaluated once


def test_leaf_llm_prompt_round_trip_through_a_local_endpoint(tmp_path, monkeypatch):
    assert features_in_prompt(leaf_prompt("entire", "obovate", "leathery")) == ("entire", "obovate", "leathery")
    with LocalChatServer(scripted_responder) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("BLACKPROP_LLM_CACHE", str(tmp_path / "llm.sqlite3"))
        program = get_task("leaf-llm").make_program()
        every = torch.tensor([[m, s, t] for m in range(6) for s in range(5) for t in range(4)])
        out = program.evaluate(every)
    truth = [decision_tree(MARGINS[m], SHAPES[s], TEXTURES[t]) for m, s, t in every.tolist()]
    assert [program.output.values[i] for i in out.tolist()] == truth
    assert program.fn.client.stats.requests == 120


def test_leaf_llm_without_an_endpoint_says_what_to_set(monkeypatch, capsys):
    for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    code = cli_main(["train", "leaf-llm", "--epochs", "1", "--train-size", "4", "--test-size", "4", "--quiet"])
    assert code == 2
    assert "no language-model endpoint: set OPENAI_BASE_URL" in capsys.readouterr().err


def test_scene_data_layout_and_padding():
    pool, index, objects, rooms = generate_scenes(18, seed=3)
    again = generate_scenes(18, seed=3)
    assert np.array_equal(pool, again[0]) and rooms == again[3]
    assert index.shape == objects.shape == (18, MAX_OBJECTS)
    assert np.array_equal(index < 0, objects < 0)
    lengths = (index >= 0).sum(1)
    assert lengths.min() >= 3 and lengths.max() <= MAX_OBJECTS
    assert all((index[i, :n] >= 0).all() for i, n in enumerate(lengths))  # objects first, padding last
    assert collections.Counter(rooms) == {room: 2 for room in ROOMS}
    for row, room in zip(objects, rooms, strict=True):
        names = [OBJECTS[o] for o in row if o >= 0]
        assert sum(n in ROOM_OBJECTS[room] for n in names) >= 2
    assert len(OBJECTS) == 47 and pool.shape[1:] == (3, 32, 32)


def test_scene_model_reads_lengths_from_padding():
    data = get_task("scene").load_data("test", 9, 0)
    images = data.images(torch.arange(9))
    (beliefs,) = SceneModel().eval()(images)
    assert beliefs.probs.shape == (9, MAX_OBJECTS, 47)
    assert beliefs.lengths.tolist() == (data.index >= 0).sum(1).tolist()


def test_scene_prompt_drops_clutter_and_round_trips():
    prompt = scene_prompt(["stove", "skip", "kettle", "stove", "ball"])
    assert prompt.startswith("There are kettle, stove. What type of room is most likely?")
    assert objects_in_prompt(prompt) == ["kettle", "stove"]
    assert scene_prompt(["tv"]).startswith("There is a tv.")
    with pytest.raises(ValueError, match="no recognisable object"):
        scene_prompt(["skip", "ball"])


def test_embedding_room_naming():
    pytest.importorskip("wordllama")
    program = get_task("scene").make_program()
    assert program.fn(["stove", "kettle", "refrigerator"]) == "kitchen"
    assert program.fn(["toilet", "shampoo", "shower curtain"]) == "bathroom"
    assert program.fn(["skip", "ball"]) is None  # nothing to go on: a failed sample


def room_by_counting(messages):
    """A stand-in model: the room with most of its typical objects in the prompt."""
    objects = objects_in_prompt(messages[-1]["content"]) or []
    best = max(ROOMS, key=lambda room: sum(o in ROOM_OBJECTS[room] for o in objects))
    return f"It is most likely a {best} room."


def test_second_scene_epoch_asks_nothing_already_asked(tmp_path, monkeypatch):
    with LocalChatServer(room_by_counting) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("BLACKPROP_LLM_CACHE", str(tmp_path / "llm.sqlite3"))
        requests_after_epoch: list[int] = []
        config = RunConfig(task="scene-llm", epochs=2, train_size=9, test_size=9, num_samples=8, batch_size=3,
                           threads=1, progress=False)
        result = train(config, on_epoch=lambda row: requests_after_epoch.append(len(server.requests)))
        prompts = server.prompts()
        first, second = set(prompts[: requests_after_epoch[0]]), prompts[requests_after_epoch[0]:]
        assert requests_after_epoch[0] > 0 and result["program_calls"] > 0
        assert not first & set(second), "epoch 2 asked a prompt epoch 1 had asked"
        assert len(prompts) == len(set(prompts)), "a prompt was sent twice"

        again = train(config)  # a new run, same cache file: every answer comes from disk
        assert len(server.requests) == len(prompts)
        assert again["test_accuracy"] == result["test_accuracy"]


def test_user_folders_are_loaded(tmp_path, monkeypatch):
    from PIL import Image

    for split in ("train", "test"):
        for species in SPECIES[:2]:
            folder = tmp_path / "leaves" / split / species
            folder.mkdir(parents=True)
            for i in range(2):
                Image.new("RGB", (80, 60), (20 * i, 120, 30)).save(folder / f"{i}.png")
        scene = tmp_path / "scenes" / split / "kitchen" / "scene-1"
        scene.mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (40, 50), (200, 10 * i, 0)).save(scene / f"crop{i}.jpg")
    monkeypatch.setenv("BLACKPROP_LEAF_DATA", str(tmp_path / "leaves"))
    monkeypatch.setenv("BLACKPROP_SCENE_DATA", str(tmp_path / "scenes"))
    with pytest.raises(ValueError, match=r"train split: 10 items asked for but there are 4 leaf photographs in .*; "
                                         r"pass --train-size 4 or less"):  # never silently fewer than asked
        get_task("leaf-dt").data("train", 10)
    leaves = get_task("leaf-dt").data("train", 4)
    assert len(leaves) == 4 and leaves.pool.shape == (4, 3, 64, 64) and leaves.symbols is None
    assert sorted(leaves.labels) == sorted([SPECIES[0], SPECIES[1]] * 2)
    scenes = get_task("scene").data("test", 1)
    assert scenes.labels == ["kitchen"] and scenes.index.tolist() == [[0, 1, 2] + [-1] * 7]
    (tmp_path / "leaves" / "train" / "Not a species").mkdir()
    with pytest.raises(ValueError, match=re.escape("folder 'Not a species' is not a species")):
        get_task("leaf-dt").load_data("train", 9, 99)
