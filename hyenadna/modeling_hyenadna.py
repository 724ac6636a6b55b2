"""HyenaDNA models in Hugging Face form: backbone, causal LM and sequence classifier.

State-dict keys are those of the LongSafari `*-seqlen-hf` checkpoints
(`hyena.backbone.embeddings.word_embeddings.weight`, `hyena.backbone.layers.N.mixer...`,
`hyena.backbone.ln_f.*`, `lm_head.weight`), so their directories load with `from_pretrained`.

Padding: the reference ignores padding, so with left padding (its tokenizer's default) the pad
tokens leak into the real tokens through the causal convolutions. Here, passing the
tokenizer's `attention_mask` zeroes the padding positions before every convolution, which makes
the outputs at real tokens equal to those of the unpadded sequence. Without a mask the model
computes exactly what the reference computes.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import (
    BaseModelOutputWithNoAttention,
    CausalLMOutput,
    SequenceClassifierOutput,
)

from .block import HyenaBlock
from .configuration_hyenadna import HyenaDNAConfig
from .implicit_filter import (
    ExponentialModulation,
    HyenaFilter,
    PositionalEmbedding,
    Sin,
    complex_exponential_embedding,
    modulation_deltas,
)
from .short_conv import CausalDepthwiseConv1d


class HyenaEmbeddings(nn.Module):
    """Token embedding; rows padded to a multiple of `pad_vocab_size_multiple` (12 -> 16)."""

    def __init__(self, config: HyenaDNAConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(config.padded_vocab_size, config.d_model)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.word_embeddings(input_ids)  # [B, L] -> [B, L, d_model]


class HyenaLMBackbone(nn.Module):
    """Embeddings -> dropout -> n_layer HyenaBlocks -> final LayerNorm."""

    def __init__(self, config: HyenaDNAConfig) -> None:
        super().__init__()
        self.max_seq_len = config.max_seq_len
        self.embeddings = HyenaEmbeddings(config)
        self.dropout = nn.Dropout(config.embed_dropout)
        self.layers = nn.ModuleList([HyenaBlock(config) for _ in range(config.n_layer)])
        self.ln_f = nn.LayerNorm(config.d_model, eps=config.layer_norm_epsilon)

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        output_hidden_states: bool = False,
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        hidden_states = self.embeddings(input_ids) if inputs_embeds is None else inputs_embeds
        length = hidden_states.shape[1]
        if length > self.max_seq_len:
            raise ValueError(
                f"sequence of {length} tokens is longer than this model's max_seq_len={self.max_seq_len} "
                "(its implicit filters are defined up to that length); split the sequence into windows "
                "or use a model configured with a larger max_seq_len"
            )
        keep = padding_keep_mask(attention_mask, hidden_states.dtype)
        hidden_states = self.dropout(hidden_states)
        all_hidden_states = [hidden_states] if output_hidden_states else []
        for layer in self.layers:
            hidden_states = layer(hidden_states, keep)
            if output_hidden_states:
                all_hidden_states.append(hidden_states)
        hidden_states = self.ln_f(hidden_states)
        if output_hidden_states:
            all_hidden_states.append(hidden_states)
        return hidden_states, all_hidden_states


def padding_keep_mask(attention_mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """[B, L] attention mask (1 = token, 0 = padding) -> [B, L, 1] multiplier, or None if nothing is padded."""
    if attention_mask is None or bool(attention_mask.all()):
        return None
    return attention_mask[:, :, None].to(dtype)


class HyenaDNAPreTrainedModel(PreTrainedModel):
    """Weight init and HF plumbing shared by the HyenaDNA heads."""

    config_class = HyenaDNAConfig
    config: HyenaDNAConfig
    base_model_prefix = "hyena"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True
    _no_split_modules = ["HyenaBlock"]

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """The reference's init: normal(0.02) Linear/Embedding, GPT-2 scaled residual projections,
        torch default depthwise conv, randn filter bias, and the filter's fixed buffers."""
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            init.normal_(module.weight, mean=0.0, std=std)
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, CausalDepthwiseConv1d):
            bound = 1 / module.kernel_size**0.5  # torch's Conv1d default, as the reference
            init.uniform_(module.weight, -bound, bound)
            init.uniform_(module.bias, -bound, bound)
        elif isinstance(module, Sin):
            init.constant_(module.freq, self.config.activation_freq)
        elif isinstance(module, PositionalEmbedding):
            z, t = complex_exponential_embedding(module.z.shape[1], module.z.shape[2])
            init.copy_(module.z, z)
            init.copy_(module.t, t)
        elif isinstance(module, ExponentialModulation):
            init.copy_(module.deltas, modulation_deltas(module.deltas.shape[-1]))
        elif isinstance(module, HyenaFilter):
            init.normal_(module.bias, mean=0.0, std=1.0)
        elif isinstance(module, HyenaBlock):
            # GPT-2 scheme: residual-path output projections scaled by 1/sqrt(2 n_layer).
            scaled_std = std / (2 * self.config.n_layer) ** 0.5
            init.normal_(module.mixer.out_proj.weight, mean=0.0, std=scaled_std)
            init.normal_(module.mlp.fc2.weight, mean=0.0, std=scaled_std)


class HyenaDNAModel(HyenaDNAPreTrainedModel):
    """The bare backbone: token ids -> final-LayerNorm hidden states [B, L, d_model]."""

    def __init__(self, config: HyenaDNAConfig) -> None:
        super().__init__(config)
        self.backbone = HyenaLMBackbone(config)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.backbone.embeddings.word_embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.backbone.embeddings.word_embeddings = value

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> BaseModelOutputWithNoAttention | tuple:
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids or inputs_embeds")
        output_hidden_states = bool(output_hidden_states or self.config.output_hidden_states)
        return_dict = self.config.return_dict if return_dict is None else return_dict
        hidden_states, all_hidden_states = self.backbone(
            input_ids, inputs_embeds, attention_mask, output_hidden_states
        )
        all_hidden_states = tuple(all_hidden_states) if output_hidden_states else None
        if not return_dict:
            return (hidden_states, all_hidden_states) if output_hidden_states else (hidden_states,)
        return BaseModelOutputWithNoAttention(
            last_hidden_state=hidden_states, hidden_states=all_hidden_states
        )


class HyenaDNAForCausalLM(HyenaDNAPreTrainedModel):
    """Backbone + LM head over the padded vocabulary; `labels` give the next-token loss."""

    _tied_weights_keys = {"lm_head.weight": "hyena.backbone.embeddings.word_embeddings.weight"}

    def __init__(self, config: HyenaDNAConfig) -> None:
        super().__init__(config)
        self.hyena = HyenaDNAModel(config)
        self.lm_head = nn.Linear(config.d_model, config.padded_vocab_size, bias=False)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.hyena.backbone.embeddings.word_embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.hyena.backbone.embeddings.word_embeddings = value

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head

    def set_output_embeddings(self, new_embeddings: nn.Linear) -> None:
        self.lm_head = new_embeddings

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> CausalLMOutput | tuple:
        """labels: [B, L] token ids (normally input_ids); shifted here, -100 positions ignored.

        The loss is the mean next-token cross-entropy over the non-ignored positions.
        """
        return_dict = self.config.return_dict if return_dict is None else return_dict
        outputs = self.hyena(
            input_ids,
            attention_mask=attention_mask,
            inputs_embeds=inputs_embeds,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        logits = self.lm_head(outputs.last_hidden_state)  # [B, L, padded_vocab]
        loss = None
        if labels is not None:
            loss = next_token_loss(logits, labels)
        if not return_dict:
            output = (logits,) + ((outputs.hidden_states,) if outputs.hidden_states is not None else ())
            return ((loss,) + output) if loss is not None else output
        return CausalLMOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states)


def next_token_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of position t's logits against labels[t + 1] (-100 ignored), in float32."""
    shift_logits = logits[:, :-1].reshape(-1, logits.shape[-1]).float()
    shift_labels = labels[:, 1:].reshape(-1).to(logits.device)
    return F.cross_entropy(shift_logits, shift_labels, ignore_index=-100)


class HyenaDNAForSequenceClassification(HyenaDNAPreTrainedModel):
    """Backbone + linear `score` head read at each sequence's last real token (causal summary)."""

    def __init__(self, config: HyenaDNAConfig) -> None:
        super().__init__(config)
        self.num_labels = config.num_labels
        self.hyena = HyenaDNAModel(config)
        self.score = nn.Linear(config.d_model, config.num_labels, bias=False)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.hyena.backbone.embeddings.word_embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.hyena.backbone.embeddings.word_embeddings = value

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> SequenceClassifierOutput | tuple:
        return_dict = self.config.return_dict if return_dict is None else return_dict
        outputs = self.hyena(
            input_ids,
            attention_mask=attention_mask,
            inputs_embeds=inputs_embeds,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        logits = self.score(outputs.last_hidden_state)  # [B, L, num_labels]
        last = last_token_index(input_ids, attention_mask, self.config.pad_token_id, logits.shape[1])
        pooled_logits = logits[torch.arange(logits.shape[0], device=logits.device), last]  # [B, num_labels]
        loss = None
        if labels is not None:
            loss = self.classification_loss(pooled_logits, labels.to(logits.device))
        if not return_dict:
            output = (pooled_logits,) + (
                (outputs.hidden_states,) if outputs.hidden_states is not None else ()
            )
            return ((loss,) + output) if loss is not None else output
        return SequenceClassifierOutput(loss=loss, logits=pooled_logits, hidden_states=outputs.hidden_states)

    def classification_loss(self, pooled_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Regression (1 label), single-label (integer labels) or multi-label, as HF heads decide."""
        problem_type = self.config.problem_type
        if problem_type is None:
            if self.num_labels == 1:
                problem_type = "regression"
            elif labels.dtype in (torch.long, torch.int):
                problem_type = "single_label_classification"
            else:
                problem_type = "multi_label_classification"
        if problem_type == "regression":
            return F.mse_loss(pooled_logits.squeeze(-1).float(), labels.float().view(-1))
        if problem_type == "single_label_classification":
            return F.cross_entropy(pooled_logits.view(-1, self.num_labels).float(), labels.view(-1))
        return F.binary_cross_entropy_with_logits(pooled_logits.float(), labels.float())


def last_token_index(
    input_ids: torch.Tensor | None, attention_mask: torch.Tensor | None, pad_token_id: int | None, length: int
) -> torch.Tensor | int:
    """Index of each row's last real token: from the attention mask, else the last non-pad id.

    Works for left padding (the last position) and right padding alike.
    """
    if attention_mask is not None:
        real = attention_mask.bool()
    elif input_ids is not None and pad_token_id is not None:
        real = input_ids != pad_token_id
    else:
        return length - 1
    positions = torch.arange(length, device=real.device)
    return torch.where(real, positions, -1).amax(dim=-1).clamp(min=0)
