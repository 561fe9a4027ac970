"""CS231n's ``classifiers`` package: only ``neural_net.TwoLayerNet`` is provided."""
