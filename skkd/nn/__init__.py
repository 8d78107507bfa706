"""Neural-network building blocks: backbones and domain discriminators."""

from skkd.nn.backbones import CNN1D, GRUClassifier, LSTMClassifier, ResNet1D
from skkd.nn.discriminators import DomainDiscriminator, GradientReversal, grad_reverse

__all__ = [
    "CNN1D",
    "DomainDiscriminator",
    "GRUClassifier",
    "GradientReversal",
    "LSTMClassifier",
    "ResNet1D",
    "grad_reverse",
]
