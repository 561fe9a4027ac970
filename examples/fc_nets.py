"""The modular fully-connected-network notebook (ECE C147 HW3), run end to end against nndl.

Each step is the notebook's cell with ``utils.X`` imports changed to ``nndl.X``: layer checks,
the modular TwoLayerNet's reference numbers, Solver training of a 200-unit TwoLayerNet on
CIFAR-10 with the notebook's recipe, the FullyConnectedNet gradient check, and overfitting
50 training images. Plots are written to ``--out``.

    python examples/fc_nets.py --data-dir ../shared/data/cifar-10-subset --out runs/fc_nets
    python examples/fc_nets.py --data-dir ... --quick     # fewer epochs, for a smoke test
"""

import argparse
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from nndl.data_utils import get_CIFAR10_data  # noqa: E402
from nndl.fc_net import *  # noqa: E402,F401,F403 - as in the notebook: brings the layers too
from nndl.gradient_check import eval_numerical_gradient, eval_numerical_gradient_array, rel_error  # noqa: E402
from nndl.layer_utils import affine_relu_backward, affine_relu_forward  # noqa: E402
from nndl.solver import Solver  # noqa: E402


def check(name, value, limit):
    """Print a check's value and fail loudly if it is over its limit: the notebook's where it
    states one (often "around" a value, so with some room), else the test suite's."""
    print(f"{name}: {value:.3e}")
    if not value < limit:
        raise SystemExit(f"{name} is {value:.3e}, expected below {limit:g}")


def layer_checks():
    num_inputs, input_shape, output_dim = 2, (4, 5, 6), 3
    x = np.linspace(-0.1, 0.5, num=num_inputs * np.prod(input_shape)).reshape(num_inputs, *input_shape)
    w = np.linspace(-0.2, 0.3, num=output_dim * np.prod(input_shape)).reshape(np.prod(input_shape), output_dim)
    b = np.linspace(-0.3, 0.1, num=output_dim)
    out, _ = affine_forward(x, w, b)
    correct_out = np.array([[1.49834967, 1.70660132, 1.91485297], [3.25553199, 3.5141327, 3.77273342]])
    check("affine_forward difference", rel_error(out, correct_out), 1e-8)

    x, w, b, dout = np.random.randn(10, 2, 3), np.random.randn(6, 5), np.random.randn(5), np.random.randn(10, 5)
    dx, dw, db = affine_backward(dout, affine_forward(x, w, b)[1])
    check("affine_backward dx error", rel_error(eval_numerical_gradient_array(lambda x: affine_forward(x, w, b)[0], x, dout), dx), 1e-8)
    check("affine_backward dw error", rel_error(eval_numerical_gradient_array(lambda w: affine_forward(x, w, b)[0], w, dout), dw), 1e-8)
    check("affine_backward db error", rel_error(eval_numerical_gradient_array(lambda b: affine_forward(x, w, b)[0], b, dout), db), 1e-8)

    x = np.linspace(-0.5, 0.5, num=12).reshape(3, 4)
    correct_out = np.array([[0., 0., 0., 0.], [0., 0., 0.04545455, 0.13636364], [0.22727273, 0.31818182, 0.40909091, 0.5]])
    check("relu_forward difference", rel_error(relu_forward(x)[0], correct_out), 1e-7)

    x = np.random.randn(10, 10)
    dout = np.random.randn(*x.shape)
    dx = relu_backward(dout, relu_forward(x)[1])
    check("relu_backward dx error", rel_error(eval_numerical_gradient_array(lambda x: relu_forward(x)[0], x, dout), dx), 1e-10)

    x, w, b, dout = np.random.randn(2, 3, 4), np.random.randn(12, 10), np.random.randn(10), np.random.randn(2, 10)
    dx, dw, db = affine_relu_backward(dout, affine_relu_forward(x, w, b)[1])
    check("affine_relu dx error", rel_error(eval_numerical_gradient_array(lambda x: affine_relu_forward(x, w, b)[0], x, dout), dx), 1e-7)
    check("affine_relu dw error", rel_error(eval_numerical_gradient_array(lambda w: affine_relu_forward(x, w, b)[0], w, dout), dw), 1e-7)
    check("affine_relu db error", rel_error(eval_numerical_gradient_array(lambda b: affine_relu_forward(x, w, b)[0], b, dout), db), 1e-7)

    x = 0.001 * np.random.randn(50, 10)
    y = np.random.randint(10, size=50)
    loss, dx = softmax_loss(x, y)
    print(f"softmax loss: {loss:.6f} (should be about 2.3)")
    check("softmax_loss dx error", rel_error(eval_numerical_gradient(lambda x: softmax_loss(x, y)[0], x, verbose=False), dx), 1e-7)


def two_layer_net_checks():
    N, D, H, C = 3, 5, 50, 7
    model = TwoLayerNet(input_dim=D, hidden_dims=H, num_classes=C, weight_scale=1e-2)
    model.params["W1"] = np.linspace(-0.7, 0.3, num=D * H).reshape(D, H)
    model.params["b1"] = np.linspace(-0.1, 0.9, num=H)
    model.params["W2"] = np.linspace(-0.3, 0.4, num=H * C).reshape(H, C)
    model.params["b2"] = np.linspace(-0.9, 0.1, num=C)
    X = np.linspace(-5.5, 4.5, num=N * D).reshape(D, N).T
    y = np.asarray([0, 5, 1])
    correct_scores = np.asarray(
        [[11.53165108, 12.2917344, 13.05181771, 13.81190102, 14.57198434, 15.33206765, 16.09215096],
         [12.05769098, 12.74614105, 13.43459113, 14.1230412, 14.81149128, 15.49994135, 16.18839143],
         [12.58373087, 13.20054771, 13.81736455, 14.43418138, 15.05099822, 15.66781506, 16.2846319]])
    check("TwoLayerNet scores difference", np.abs(model.loss(X) - correct_scores).sum(), 1e-6)
    check("TwoLayerNet loss - 3.4702243556", abs(model.loss(X, y)[0] - 3.4702243556), 1e-10)
    model.reg = 1.0
    check("TwoLayerNet loss (reg 1) - 26.5948426952", abs(model.loss(X, y)[0] - 26.5948426952), 1e-10)
    for reg in [0.0, 0.7]:
        print(f"Running numeric gradient check with reg = {reg}")
        model.reg = reg
        _, grads = model.loss(X, y)
        for name in sorted(grads):
            num = eval_numerical_gradient(lambda _: model.loss(X, y)[0], model.params[name], verbose=False)
            # The notebook prints 3e-10 to 2.5e-7 for this model; tests/test_fc_net.py's limit.
            check(f"{name} relative error", rel_error(num, grads[name]), 1e-6)


# The CS231n notebook's initial losses for this cell after np.random.seed(231).
FC_INITIAL_LOSSES = {0: 2.3004790897684924, 3.14: 7.052114776533016}


def fully_connected_checks():
    # Seeded as in the CS231n notebook, so the initial losses can be compared with its numbers
    # (unseeded, a ReLU kink near the random inputs can push an error to ~1e-3).
    np.random.seed(231)
    N, D, H1, H2, C = 2, 15, 20, 30, 10
    X, y = np.random.randn(N, D), np.random.randint(C, size=(N,))
    for reg, reference in FC_INITIAL_LOSSES.items():
        print(f"Running check with reg = {reg}")
        model = FullyConnectedNet([H1, H2], input_dim=D, num_classes=C, reg=reg,
                                  weight_scale=5e-2, dtype=np.float64)
        loss, grads = model.loss(X, y)
        print(f"Initial loss: {loss}")
        check(f"Initial loss - {reference}", abs(loss - reference), 1e-10)
        for name in sorted(grads):
            num = eval_numerical_gradient(lambda _: model.loss(X, y)[0], model.params[name], verbose=False, h=1e-5)
            # tests/test_fc_net.py's limits: the reg 0 net has a ReLU unit close to its kink.
            check(f"{name} relative error", rel_error(num, grads[name]), 5e-5 if reg == 0 else 1e-6)


def plot_history(solver, path, target=None):
    plt.figure(figsize=(10, 8))
    plt.subplot(2, 1, 1)
    plt.title("Training loss")
    plt.plot(solver.loss_history, "-")
    plt.xlabel("Iteration")
    plt.subplot(2, 1, 2)
    plt.title("Accuracy")
    plt.plot(solver.train_acc_history, "-o", label="train")
    plt.plot(solver.val_acc_history, "-o", label="val")
    if target is not None:
        plt.plot([target] * len(solver.val_acc_history), "k--")
    plt.xlabel("Epoch")
    plt.legend(loc="lower right")
    plt.tight_layout()
    plt.savefig(path)
    plt.close()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="CIFAR-10 python-batches directory")
    parser.add_argument("--out", default="runs/fc_nets", help="directory for the plots")
    parser.add_argument("--quick", action="store_true", help="2 epochs instead of 10")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    np.random.seed(0)

    layer_checks()
    two_layer_net_checks()

    data = get_CIFAR10_data(num_training=None, num_validation=1000, cifar10_dir=args.data_dir)
    for k, v in data.items():
        if hasattr(v, "shape"):
            print(f"{k}: {v.shape}")

    # The notebook's Solver cell: a 200-unit TwoLayerNet, learning rate 6e-4, decay 0.9.
    model = TwoLayerNet(hidden_dims=200)
    solver = Solver(model=model, data=data, optim_config={"learning_rate": 0.0006}, lr_decay=0.9,
                    num_train_samples=2000, num_epochs=2 if args.quick else 10, batch_size=200,
                    print_every=50)
    solver.train()
    plot_history(solver, os.path.join(args.out, "two_layer_solver.png"), target=0.5)

    fully_connected_checks()

    small_data = {"X_train": data["X_train"][:50], "y_train": data["y_train"][:50],
                  "X_val": data["X_val"], "y_val": data["y_val"]}
    model = FullyConnectedNet([100, 100], weight_scale=1e-2, dtype=np.float64)
    solver = Solver(model, small_data, print_every=10, num_epochs=20, batch_size=25,
                    update_rule="sgd", optim_config={"learning_rate": 1e-2})
    solver.train()
    plot_history(solver, os.path.join(args.out, "overfit_50.png"))
    # The last epoch's check, not the model's: train() leaves the best-validation parameters.
    print(f"overfit: training accuracy after the last epoch {solver.train_acc_history[-1]:.2f}")


if __name__ == "__main__":
    main()
