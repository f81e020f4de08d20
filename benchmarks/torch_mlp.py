"""The PyTorch side of the benchmarks: the multilayer perceptron nnctl trains (ReLU hidden
layers, dropout before each hidden-to-next product), its optimizer and one epoch of
shuffled minibatches, as ``nnctl``'s loop runs it."""

from __future__ import annotations


def mlp(sizes, dropout: float = 0.0):
    """Linear layers of ``sizes`` with ReLU between them, dropout ``p`` on each hidden
    layer's output."""
    import torch

    layers: list = []
    for i in range(len(sizes) - 1):
        if i > 0 and dropout:
            layers.append(torch.nn.Dropout(dropout))
        layers.append(torch.nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def optimizer(model, name: str, lr: float, fused: bool = False):
    """torch.optim's Adam (fused when asked), SGD with momentum 0.9, or plain SGD."""
    import torch

    if name == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr, fused=True if fused else None)
    if name == "momentum":
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    return torch.optim.SGD(model.parameters(), lr=lr)


def train_epoch(model, opt, lossf, x, y, rows: int, batch: int, gen) -> None:
    """One epoch over the first ``rows`` rows in a fresh random order, one optimizer step
    per minibatch."""
    import torch

    order = torch.randperm(rows, generator=gen)
    for lo in range(0, rows, batch):
        idx = order[lo : lo + batch]
        opt.zero_grad(set_to_none=True)
        loss = lossf(model(x[idx]), y[idx])
        loss.backward()
        opt.step()
