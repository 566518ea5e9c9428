"""Issue 17 probe (session 33): which digit labelling a saved MNIST-R network learned.

    PYTHONPATH=src python experiments/ised_default/probes/symbol_confusion.py WEIGHTS [WEIGHTS ...]

WEIGHTS: a file `blackprop bench` keeps per finished run (`experiments/ised_default/weights/<run id>.pt`;
not committed). For each, the network reads the first digit of every example of its task's 2,000
validation examples (never the test set) and the script prints the run's identity, the symbol
accuracy, the confusion matrix (rows: true digit, columns: the network's argmax), and the labels no
digit is mapped to. On less-than, a network can fit the task with any order-preserving reading of the
digits, so a reading with unused labels still scores well on the task."""
import sys

import torch

from blackprop.run.checkpoint import load_saved
from blackprop.tasks import get_task

torch.set_num_threads(1)
for path in sys.argv[1:]:
    model, run = load_saved(path)
    task = get_task(run["task"])
    data = task.data("valid", 2000, train_size=run.get("train_size"))
    rows = torch.arange(len(data))
    images = data.images(rows)[:, 0]  # the first digit of each example
    truth = data.symbols[:, 0]
    with torch.no_grad():
        network = getattr(model, "network", model)
        read = network(images).argmax(-1)
    confusion = torch.zeros(10, 10, dtype=torch.long)
    confusion.index_put_((truth, read), torch.ones_like(truth), accumulate=True)
    accuracy = (read == truth).float().mean().item()
    unused = [label for label in range(10) if confusion[:, label].sum() < 0.05 * confusion.sum() / 10]
    print(f"{run['task']} {run['method']} seed {run['seed']} lr {run['lr']} ({path}): symbol accuracy "
          f"{100 * accuracy:.1f}% on {len(truth)} validation digits; labels read for under 5% of a digit's "
          f"share: {unused}")
    print("true \\ read " + " ".join(f"{c:>4}" for c in range(10)))
    for digit in range(10):
        print(f"{digit:>11} " + " ".join(f"{int(v):>4}" for v in confusion[digit]))
