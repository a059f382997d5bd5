"""The two torch models and their ONNX export. Standardisation lives inside each graph (a Sub and a Div on
constant buffers), so callers feed the raw feature row the pipeline computes and never keep scaling stats."""
import numpy as np
import onnx
import torch
from torch import nn


class Standardize(nn.Module):
    def __init__(self, mean, std):
        super().__init__()
        # Constant columns (std 0) would divide by zero; scaling them by 1 leaves them constant and harmless.
        std = np.where(std < 1e-6, 1.0, std)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32))

    def forward(self, x):
        return (x - self.mean) / self.std


class FraudMLP(nn.Module):
    """16 -> 32 -> 16 -> 1, sigmoid: P(fraud)."""

    def __init__(self, mean, std, width=16):
        super().__init__()
        self.scale = Standardize(mean, std)
        self.net = nn.Sequential(nn.Linear(width, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 1))

    def logits(self, x):
        return self.net(self.scale(x))

    def forward(self, x):
        return torch.sigmoid(self.logits(x))


class Autoencoder(nn.Module):
    """16 -> 8 -> 4 -> 8 -> 16 on standardised features; forward returns the per-row mean squared error."""

    def __init__(self, mean, std, width=16):
        super().__init__()
        self.scale = Standardize(mean, std)
        self.encode = nn.Sequential(nn.Linear(width, 8), nn.ReLU(), nn.Linear(8, 4))
        self.decode = nn.Sequential(nn.ReLU(), nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, width))

    def reconstruction_error(self, z):
        return ((self.decode(self.encode(z)) - z) ** 2).mean(dim=1, keepdim=True)

    def forward(self, x):
        return self.reconstruction_error(self.scale(x))


def _batches(n, size, generator):
    order = torch.randperm(n, generator=generator)
    for i in range(0, n, size):
        yield order[i:i + size]


def train_mlp(X, y, seed, epochs=25, batch=256, lr=1e-3):
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    model = FraudMLP(X.mean(axis=0), X.std(axis=0), X.shape[1])
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=1e-5)
    loss_fn = nn.BCEWithLogitsLoss()
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y.astype(np.float32)).unsqueeze(1)
    model.train()
    for _ in range(epochs):
        for idx in _batches(len(Xt), batch, g):
            opt.zero_grad()
            loss = loss_fn(model.logits(Xt[idx]), yt[idx])
            loss.backward()
            opt.step()
    model.eval()
    return model


def train_autoencoder(X_legit, seed, epochs=30, batch=256, lr=2e-3):
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    model = Autoencoder(X_legit.mean(axis=0), X_legit.std(axis=0), X_legit.shape[1])
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    Xt = torch.from_numpy(X_legit)
    model.train()
    for _ in range(epochs):
        for idx in _batches(len(Xt), batch, g):
            opt.zero_grad()
            loss = model(Xt[idx]).mean()
            loss.backward()
            opt.step()
    model.eval()
    return model


def predict(model, X):
    with torch.no_grad():
        return model(torch.from_numpy(X.astype(np.float32))).numpy()[:, 0]


def export(model, path, output_name, width=16, opset=15):
    dummy = torch.zeros(2, width, dtype=torch.float32)
    torch.onnx.export(
        model, dummy, path, input_names=["features"], output_names=[output_name],
        dynamic_axes={"features": {0: "N"}, output_name: {0: "N"}}, opset_version=opset, do_constant_folding=True,
    )
    onnx.checker.check_model(onnx.load(path))
