"""``RunConfig.network`` / ``--network``: a task's model built with another perception network."""

from __future__ import annotations

import pytest
import torch

from blackprop.models import LeNet, MNISTNet
from blackprop.run.config import RunConfig, identity, run_id
from blackprop.run.train import train
from blackprop.tasks import get_task


@pytest.mark.parametrize(("name", "cls", "params"), [("lenet", LeNet, 44_426), ("lenet-wide", MNISTNet, 80_202),
                                                    ("lenet-wide-bn", MNISTNet, 80_458),
                                                    ("mnistnet", MNISTNet, 1_111_946)])
def test_sum64_model_is_built_with_the_named_network(name, cls, params):
    model = get_task("sum64").model(name)
    assert isinstance(model.network, cls)
    assert sum(p.numel() for p in model.network.parameters()) == params
    probs = torch.stack(model(torch.zeros(2, 64, 1, 28, 28)), dim=1)  # one input per digit position
    assert probs.shape == (2, 64, 10)
    assert torch.allclose(probs.sum(-1), torch.ones(2, 64))


def test_default_model_is_lenet():
    assert isinstance(get_task("sum64").model().network, LeNet)


def test_unknown_network_names_the_choices():
    with pytest.raises(ValueError, match="unknown network 'transformer'; valid: lenet, lenet-wide, lenet-wide-bn, mnistnet"):
        get_task("sum64").model("transformer")
    with pytest.raises(ValueError, match="unknown network 'LeNet-Wide' \\(did you mean 'lenet-wide'\\?\\)"):
        get_task("sum64").model("LeNet-Wide")
    with pytest.raises(ValueError, match="sum2 has one perception network"):
        get_task("sum2").model("lenet")
    with pytest.raises(ValueError, match="sum2 has one perception network"):  # before any data is loaded
        train(RunConfig(task="sum2", network="lenet", epochs=1, train_size=4, test_size=4, progress=False))


def test_network_enters_the_identity_only_when_chosen():
    plain = RunConfig(task="sum64", method="fold", epochs=1)
    wide = RunConfig(task="sum64", method="fold", epochs=1, network="lenet-wide")
    assert "network" not in identity(plain)  # rows from before the option keep their identity
    assert identity(wide)["network"] == "lenet-wide"
    assert run_id(plain) != run_id(wide)


def test_row_records_the_chosen_network_and_trains_it():
    config = RunConfig(task="sum64", method="fold", network="lenet-wide", epochs=1, train_size=16, valid_size=8,
                       test_size=8, estimator_settings={"min_mass": 1e-12}, threads=1, progress=False)
    row = train(config)
    assert row["network"] == "lenet-wide"
    assert identity(row) == identity(config.resolved(get_task("sum64")))
    default = train(RunConfig(task="sum64", method="fold", epochs=1, train_size=16, valid_size=8, test_size=8,
                              estimator_settings={"min_mass": 1e-12}, threads=1, progress=False))
    assert "network" not in default
    assert row["history"][0]["train_loss"] != default["history"][0]["train_loss"]  # another network trained


def test_grid_with_a_bad_network_fails_before_its_first_run(tmp_path):
    from blackprop.run.grid import run_grid

    jobs = [("ok", RunConfig(task="sum64", method="fold", epochs=1, train_size=16, test_size=8, progress=False)),
            ("bad", RunConfig(task="sum64", method="fold", epochs=1, network="resnet", progress=False))]
    with pytest.raises(ValueError, match="unknown network 'resnet'"):
        run_grid(jobs, tmp_path / "results.jsonl", record={}, log=lambda _: None)
    assert not (tmp_path / "results.jsonl").exists()


def test_report_keeps_runs_of_another_network_apart():
    from blackprop.run.tables import accuracy_section

    base = {"task": "sum64", "method": "fold", "seed": 0, "epochs": 20, "lr": 1e-3, "batch_size": 16,
            "num_samples": 640, "train_size": 6000, "test_size": 500, "estimator": {"name": "fold"},
            "valid_accuracy": 0.4, "symbol_accuracy": 0.99, "seconds": 1.0, "program_calls": 1, "history": []}
    rows = [{**base, "test_accuracy": 0.50}, {**base, "test_accuracy": 0.60, "network": "lenet-wide"}]
    table = "\n".join(accuracy_section("t", rows))
    assert "network=lenet-wide" in table
    assert "50.0" in table and "60.0" in table  # two rows, not one mean of 55.0
    assert "55.0" not in table


def test_sudoku_reads_its_cells_with_lenet_or_mnistnet():
    task = get_task("sudoku-partial")
    assert isinstance(task.model().network, LeNet) and isinstance(task.model("lenet").network, LeNet)
    network = task.model("mnistnet").network
    assert isinstance(network, MNISTNet) and network(torch.zeros(2, 1, 28, 28)).shape == (2, 9)
    with pytest.raises(ValueError, match="unknown network 'transformer'; valid: lenet, mnistnet"):
        task.check_network("transformer")


def test_lenet_wide_bn_is_lenet_wide_with_its_hidden_features_centred_over_the_batch():
    from blackprop.models import lenet_wide, lenet_wide_bn

    torch.manual_seed(0)
    plain = lenet_wide()
    torch.manual_seed(0)
    normalised = lenet_wide_bn()  # the same initial weights: BatchNorm draws nothing
    def weights(net):  # the convolutions' and linear layers' parameters, in order
        return [p for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)) for p in m.parameters()]

    assert len(weights(plain)) == len(weights(normalised)) == 8
    assert all(torch.equal(a, b) for a, b in zip(weights(plain), weights(normalised), strict=True))
    hidden = []
    normalised.classifier[1].register_forward_hook(lambda module, inputs, output: hidden.append(output))
    images = torch.rand(64, 1, 28, 28) + 3  # features far from zero mean
    normalised.train()
    normalised(images)
    assert hidden[-1].mean(dim=0).abs().max() < 1e-4  # centred over the batch's images (unit variance)
    normalised.eval()  # evaluation: running statistics, so an example's output does not depend on its batch
    one, batch = normalised(images[:1]), normalised(images)[:1]
    assert torch.allclose(one, batch, atol=1e-6)
