"""A HyenaDNA block: pre-norm residual Hyena mixer followed by a pre-norm residual MLP.

    x = x + HyenaOperator(LayerNorm(x))
    x = x + MLP(LayerNorm(x))

(The reference writes it as "dropout-add-norm" with the residual carried separately; in eval
mode, and with its zero residual dropout in training, that is the same function.)
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from transformers.modeling_layers import GradientCheckpointingLayer

from .configuration_hyenadna import HyenaDNAConfig
from .hyena_operator import HyenaOperator


class Mlp(nn.Module):
    """fc1 -> GELU (tanh approximation, as the reference) -> fc2."""

    def __init__(self, config: HyenaDNAConfig) -> None:
        super().__init__()
        self.fc1 = nn.Linear(config.d_model, config.d_inner)
        self.fc2 = nn.Linear(config.d_inner, config.d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class HyenaBlock(GradientCheckpointingLayer):
    """norm1 -> mixer -> add, norm2 -> mlp -> add (key names as in LongSafari checkpoints)."""

    def __init__(self, config: HyenaDNAConfig) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(config.d_model, eps=config.layer_norm_epsilon)
        self.mixer = HyenaOperator(config)
        self.norm2 = nn.LayerNorm(config.d_model, eps=config.layer_norm_epsilon)
        self.mlp = Mlp(config)

    def forward(self, hidden_states: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        # hidden_states: [B, L, d_model]
        hidden_states = hidden_states + self.mixer(self.norm1(hidden_states), keep)
        return hidden_states + self.mlp(self.norm2(hidden_states))
