"""nnctl: train multilayer perceptrons from YAML experiment specs."""

__version__ = "0.1.0"
