"""The stand-alone two-layer-net notebooks (ECE C147 HW3 and CS231n), run end to end.

Toy model checks (scores, loss, gradient check) and toy training for both conventions, then
training on CIFAR-10 with ``net.train``, loss/accuracy plots, first-layer weights, a small
learning-rate x regularisation sweep, and the accuracy of the best net. Plots go to ``--out``.

    python examples/two_layer_net.py --data-dir ../shared/data/cifar-10-subset --out runs/two_layer
    python examples/two_layer_net.py --data-dir ... --quick
"""

import argparse
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from nndl.cs231n.classifiers.neural_net import TwoLayerNet as CS231nTwoLayerNet  # noqa: E402
from nndl.data_utils import get_CIFAR10_data  # noqa: E402
from nndl.gradient_check import eval_numerical_gradient, rel_error  # noqa: E402
from nndl.neural_net import TwoLayerNet  # noqa: E402
from nndl.vis_utils import visualize_grid  # noqa: E402


# The toy model's reference scores and loss at reg 0.05 as each notebook prints them.
TOY_REFERENCES = {
    "ECE C147": (np.asarray([[-1.07260209, 0.05083871, -0.87253915],
                             [-2.02778743, -0.10832494, -1.52641362],
                             [-0.74225908, 0.15259725, -0.39578548],
                             [-0.38172726, 0.10835902, -0.17328274],
                             [-0.64417314, -0.18886813, -0.41106892]]), 1.071696123862817),
    "CS231n": (np.asarray([[-0.81233741, -1.27654624, -0.70335995],
                           [-0.17129677, -1.18803311, -0.47310444],
                           [-0.51590475, -1.01354314, -0.8504215],
                           [-0.15419291, -0.48629638, -0.52901952],
                           [-0.00618733, -0.12435261, -0.15226949]]), 1.30378789133),
}


def check(name, value, limit):
    """Print a check's value and fail loudly if it is over the limit the notebooks state."""
    print(f"{name}: {value:.3e}")
    if not value < limit:
        sys.exit(f"{name} is {value:.3e}, expected below {limit:g}")


def toy_checks(cls, label):
    """The notebooks' toy model and data: scores, loss at reg 0.05, gradients, training."""
    def init_toy_model():
        np.random.seed(0)
        return cls(4, 10, 3, std=1e-1)

    def init_toy_data():
        np.random.seed(1)
        return 10 * np.random.randn(5, 4), np.array([0, 1, 2, 2, 1])

    net = init_toy_model()
    X, y = init_toy_data()
    correct_scores, correct_loss = TOY_REFERENCES[label]
    scores = net.loss(X)
    print(f"[{label}] scores:\n{scores}")
    check(f"[{label}] scores difference", np.sum(np.abs(scores - correct_scores)), 1e-7)
    loss, grads = net.loss(X, y, reg=0.05)
    print(f"[{label}] loss at reg 0.05: {loss!r}")
    check(f"[{label}] loss difference", abs(loss - correct_loss), 1e-12)
    for name in grads:
        num = eval_numerical_gradient(lambda W: net.loss(X, y, reg=0.05)[0], net.params[name], verbose=False)
        check(f"[{label}] {name} max relative error", rel_error(num, grads[name]), 1e-8)
    net = init_toy_model()
    stats = net.train(X, y, X, y, learning_rate=1e-1, reg=5e-6, num_iters=100, verbose=False)
    print(f"[{label}] final training loss: {stats['loss_history'][-1]}")
    check(f"[{label}] final training loss (CS231n's notebook: below 0.2)", stats["loss_history"][-1], 0.2)


def show_net_weights(net, path):
    W1 = net.params["W1"]  # (H, D): each row is one hidden unit's template
    W1 = W1.T.reshape(32, 32, 3, -1).transpose(3, 0, 1, 2)
    plt.imshow(visualize_grid(W1, padding=3).astype("uint8"))
    plt.gca().axis("off")
    plt.savefig(path)
    plt.close()


def plot_stats(stats, path):
    fig, ax = plt.subplots(2, 1, figsize=(8, 10))
    ax[0].plot(stats["loss_history"])
    ax[0].set_title("Loss history")
    ax[0].set_xlabel("Iteration")
    ax[1].plot(stats["train_acc_history"], label="train")
    ax[1].plot(stats["val_acc_history"], label="val")
    ax[1].set_title("Classification accuracy history")
    ax[1].set_xlabel("Epoch")
    ax[1].legend()
    fig.savefig(path)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="CIFAR-10 python-batches directory")
    parser.add_argument("--out", default="runs/two_layer", help="directory for the plots")
    parser.add_argument("--quick", action="store_true", help="fewer iterations and a 2x2 sweep")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)

    toy_checks(TwoLayerNet, "ECE C147")
    toy_checks(CS231nTwoLayerNet, "CS231n")

    data = get_CIFAR10_data(num_training=None, num_validation=1000, cifar10_dir=args.data_dir, layout="rows")
    X_train, y_train, X_val, y_val = data["X_train"], data["y_train"], data["X_val"], data["y_val"]
    print("Train data shape:", X_train.shape, "Validation data shape:", X_val.shape)

    input_size, hidden_size, num_classes = 32 * 32 * 3, 50, 10
    np.random.seed(0)
    net = TwoLayerNet(input_size, hidden_size, num_classes)
    stats = net.train(X_train, y_train, X_val, y_val, num_iters=200 if args.quick else 1000,
                      batch_size=200, learning_rate=1e-4, learning_rate_decay=0.95, reg=0.25, verbose=True)
    print("Validation accuracy:", (net.predict(X_val) == y_val).mean())
    plot_stats(stats, os.path.join(args.out, "subopt_history.png"))
    show_net_weights(net, os.path.join(args.out, "subopt_weights.png"))

    learning_rates = [1e-3, 5e-4] if args.quick else [1e-3, 7e-4, 5e-4]
    regs = [0.1, 0.25] if args.quick else [0.05, 0.1, 0.25]
    best_val, best_net = -1.0, None
    for lr in learning_rates:
        for reg in regs:
            candidate = TwoLayerNet(input_size, hidden_size, num_classes)
            candidate.train(X_train, y_train, X_val, y_val, learning_rate=lr, reg=reg,
                            num_iters=300 if args.quick else 1500, batch_size=200)
            val_acc = (candidate.predict(X_val) == y_val).mean()
            print(f"lr: {lr:f}, reg: {reg:f}, val_acc: {val_acc:f}")
            if val_acc > best_val:
                best_val, best_net = val_acc, candidate
    print(f"Best validation accuracy: {best_val:f}")
    show_net_weights(best_net, os.path.join(args.out, "best_weights.png"))
    if len(data["y_test"]):
        print("Test accuracy:", (best_net.predict(data["X_test"]) == data["y_test"]).mean())
    else:
        print("No test_batch in the data directory: validation accuracy only.")


if __name__ == "__main__":
    main()
