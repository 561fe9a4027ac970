"""CS231n's stand-alone TwoLayerNet.

It is ``nndl.neural_net.TwoLayerNet`` with CS231n's two conventions: ``W1`` stored as (D, H)
and ``W2`` as (H, C), and the L2 penalty ``reg * (sum(W1**2) + sum(W2**2))`` without the
factor 0.5 (the notebook's reference loss 1.30378789133 at reg=0.05 needs exactly this).
"""

from ...neural_net import TwoLayerNet as _TwoLayerNet

__all__ = ["TwoLayerNet"]


class TwoLayerNet(_TwoLayerNet):
    """Two-layer net with CS231n's layout: W1 (D, H), b1 (H,), W2 (H, C), b2 (C,)."""

    _weights_in_by_out = True
    _reg_factor = 1.0

    def train(self, X, y, X_val, y_val, learning_rate=1e-3, learning_rate_decay=0.95,
              reg=5e-6, num_iters=100, batch_size=200, verbose=False):
        """As ``nndl.neural_net.TwoLayerNet.train``, with CS231n's default ``reg=5e-6``."""
        return super().train(X, y, X_val, y_val, learning_rate=learning_rate,
                             learning_rate_decay=learning_rate_decay, reg=reg,
                             num_iters=num_iters, batch_size=batch_size, verbose=verbose)
