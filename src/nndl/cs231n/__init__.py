"""CS231n import paths: ``cs231n.X`` -> ``nndl.cs231n.X``.

A thin layer over nndl: ``classifiers.neural_net.TwoLayerNet`` (CS231n's weight layout and L2
convention) and re-exports of ``gradient_check``, ``data_utils`` and ``vis_utils``.
"""
