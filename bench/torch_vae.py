"""The TP's VAE in PyTorch eager: the peer a user would write instead of Keras.

Same model (784-512-2 encoder with two heads, 2-512-784 decoder), same loss (784 * pixel-mean
BCE + KL, i.e. the per-image BCE sum plus KL, averaged over the batch), same optimizer (Adam,
Keras' defaults: lr 1e-3, eps 1e-7), same initialisation (Glorot-uniform weights, zero
biases), batches of 100 drawn from a fresh shuffle each epoch, validation on the test set in
batches of 100. The loop is the idiomatic fast one (index a shuffled tensor; no DataLoader,
whose per-image collation would only slow this peer down).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


class VAE(nn.Module):
    def __init__(self, original_dim: int = 784, intermediate_dim: int = 512, latent_dim: int = 2):
        super().__init__()
        self.encoder_hidden = nn.Linear(original_dim, intermediate_dim)
        self.z_mean = nn.Linear(intermediate_dim, latent_dim)
        self.z_log_var = nn.Linear(intermediate_dim, latent_dim)
        self.decoder_hidden = nn.Linear(latent_dim, intermediate_dim)
        self.decoder_output = nn.Linear(intermediate_dim, original_dim)
        for layer in self.children():  # Keras' Dense defaults
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor):
        h = F.relu(self.encoder_hidden(x))
        z_mean, z_log_var = self.z_mean(h), self.z_log_var(h)
        z = z_mean + torch.exp(0.5 * z_log_var) * torch.randn_like(z_mean)
        logits = self.decoder_output(F.relu(self.decoder_hidden(z)))
        return logits, z_mean, z_log_var


def loss_fn(x, logits, z_mean, z_log_var) -> torch.Tensor:
    """Negative ELBO per image, averaged over the batch (nats)."""
    reconstruction = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(dim=1)
    kl = -0.5 * torch.sum(1 + z_log_var - z_mean.square() - z_log_var.exp(), dim=1)
    return (reconstruction + kl).mean()


def train(x_train: np.ndarray, x_test: np.ndarray, epochs: int, batch_size: int = 100,
          seed: int = 42, before_epoch: Callable | None = None,
          after_epoch: Callable | None = None) -> list[tuple[float, float]]:
    torch.manual_seed(seed)
    model = VAE(x_train.shape[1])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    train_t, test_t = torch.from_numpy(x_train), torch.from_numpy(x_test)
    history = []
    for epoch in range(epochs):
        if before_epoch:
            before_epoch(epoch)
        model.train()
        total = torch.zeros(())
        order = torch.randperm(len(train_t))
        for start in range(0, len(train_t), batch_size):
            x = train_t[order[start:start + batch_size]]
            loss = loss_fn(x, *model(x))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach()
        model.eval()
        val_total = torch.zeros(())
        with torch.no_grad():
            for start in range(0, len(test_t), batch_size):
                x = test_t[start:start + batch_size]
                val_total += loss_fn(x, *model(x))
        steps = -(-len(train_t) // batch_size)
        val_steps = -(-len(test_t) // batch_size)
        loss, val_loss = float(total) / steps, float(val_total) / val_steps
        history.append((loss, val_loss))
        if after_epoch:
            after_epoch(epoch, loss, val_loss)
    return history
