"""The NumPy engine: multilayer perceptrons, losses, optimizers and the training loop.

It knows nothing of YAML, files, the command line or run directories.
"""
