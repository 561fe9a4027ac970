"""nndl: build, gradient-check, train, tune, inspect and save fully-connected classifiers in NumPy.

The modules keep the names of the CS231n / ECE C147 course code (``layers``, ``layer_utils``,
``fc_net``, ``neural_net``, ``optim``, ``solver``, ``gradient_check``, ``data_utils``,
``vis_utils``), so a course notebook runs after changing ``utils.X`` to ``nndl.X``.
"""

__version__ = "0.1.0"

from .fc_net import FullyConnectedNet, TwoLayerNet  # noqa: E402
from .solver import Solver  # noqa: E402

__all__ = ["FullyConnectedNet", "TwoLayerNet", "Solver", "__version__"]
