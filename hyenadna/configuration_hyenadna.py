"""HyenaDNA configuration, with the field names of the LongSafari `*-seqlen-hf` `config.json` files.

A LongSafari `config.json` loads unchanged; `config_for_size` builds the published family sizes.
"""

from __future__ import annotations

from typing import Any

from transformers import PretrainedConfig


class HyenaDNAConfig(PretrainedConfig):
    """Configuration of a HyenaDNA model (arXiv 2306.15794).

    Field names and defaults follow LongSafari's `HyenaConfig` (the tiny-1k model), so their
    `config.json` files load as they are.

    Args:
        vocab_size: tokenizer vocabulary (12: 7 specials + A C G T N); the embedding is padded up
            to a multiple of `pad_vocab_size_multiple`.
        d_model: width of the residual stream.
        d_inner: hidden width of the MLP in each block (4 * d_model in the published models).
        n_layer: number of Hyena blocks.
        use_bias: kept for LongSafari compatibility (the long-filter bias `D` is always used).
        train_freq: whether the Sin activation frequency is trained (a parameter) or fixed.
        max_seq_len: longest sequence the implicit filters are defined for (`l_max`).
        emb_dim: width of the filter's positional embedding (time + cos/sin bands); odd, >= 3.
        num_inner_mlps: hidden Linear+Sin layers in the filter MLP after the first one.
        hyena_order: depth of the Hyena recurrence (2: one long convolution, two gates).
        short_filter_order: kernel size of the short depthwise causal convolution.
        filter_order: width of the filter MLP.
        activation_freq: initial frequency of the Sin activation.
        embed_dropout: dropout on the token embeddings (training only).
        hyena_dropout: dropout inside the Hyena recurrence (training only).
        hyena_filter_dropout: kept for LongSafari compatibility (not used by the reference either).
        layer_norm_epsilon: LayerNorm epsilon.
        initializer_range: std of the normal init of Linear and Embedding weights.
        pad_vocab_size_multiple: the embedding / LM head rows are padded to this multiple.
        tie_word_embeddings: share the LM head with the word embedding. LongSafari files say
            False and store `lm_head.weight` separately; it is then loaded as stored.
    """

    model_type = "hyenadna"

    def __init__(
        self,
        vocab_size: int = 12,
        d_model: int = 128,
        d_inner: int | None = None,
        n_layer: int = 2,
        use_bias: bool = True,
        train_freq: bool = True,
        max_seq_len: int = 1026,
        emb_dim: int = 5,
        num_inner_mlps: int = 2,
        hyena_order: int = 2,
        short_filter_order: int = 3,
        filter_order: int = 64,
        activation_freq: float = 10.0,
        embed_dropout: float = 0.1,
        hyena_dropout: float = 0.0,
        hyena_filter_dropout: float = 0.0,
        layer_norm_epsilon: float = 1e-5,
        initializer_range: float = 0.02,
        pad_vocab_size_multiple: int = 8,
        pad_token_id: int = 4,
        tie_word_embeddings: bool = False,
        **kwargs: Any,
    ) -> None:
        if emb_dim % 2 == 0 or emb_dim < 3:
            raise ValueError(f"emb_dim must be odd and >= 3 (time, cos and sin bands), got {emb_dim}")
        if hyena_order < 2:
            raise ValueError(f"hyena_order must be >= 2, got {hyena_order}")
        self.vocab_size = vocab_size
        self.d_model = d_model
        self.d_inner = d_inner if d_inner is not None else 4 * d_model
        self.n_layer = n_layer
        self.use_bias = use_bias
        self.train_freq = train_freq
        self.max_seq_len = max_seq_len
        self.emb_dim = emb_dim
        self.num_inner_mlps = num_inner_mlps
        self.hyena_order = hyena_order
        self.short_filter_order = short_filter_order
        self.filter_order = filter_order
        self.activation_freq = activation_freq
        self.embed_dropout = embed_dropout
        self.hyena_dropout = hyena_dropout
        self.hyena_filter_dropout = hyena_filter_dropout
        self.layer_norm_epsilon = layer_norm_epsilon
        self.initializer_range = initializer_range
        self.pad_vocab_size_multiple = pad_vocab_size_multiple
        super().__init__(pad_token_id=pad_token_id, tie_word_embeddings=tie_word_embeddings, **kwargs)

    @property
    def padded_vocab_size(self) -> int:
        """Rows of the embedding and LM head: vocab_size rounded up to pad_vocab_size_multiple."""
        multiple = self.pad_vocab_size_multiple
        return -(-self.vocab_size // multiple) * multiple


# The published LongSafari family (`LongSafari/hyenadna-<name>-seqlen-hf` config.json files).
# max_seq_len is the pretraining context + 2 (room for the [CLS]/[SEP] the original data added).
MODEL_SIZES: dict[str, dict[str, Any]] = {
    "tiny": {"d_model": 128, "n_layer": 2, "d_inner": 512, "max_seq_len": 1026},  # tiny-1k
    "small": {"d_model": 256, "n_layer": 4, "d_inner": 1024, "max_seq_len": 32770},  # small-32k
    "medium": {"d_model": 256, "n_layer": 8, "d_inner": 1024, "max_seq_len": 160002},  # medium-160k
    "large": {"d_model": 256, "n_layer": 8, "d_inner": 1024, "max_seq_len": 1000002},  # large-1m
}


def config_for_size(name: str, **overrides: Any) -> HyenaDNAConfig:
    """The config of a LongSafari family size ("tiny", "small", "medium", "large"), with field overrides.

    Example: `config_for_size("small", max_seq_len=8194, embed_dropout=0.0)`.

    New models tie the LM head to the word embedding, as the original training did (saved files
    then hold the embedding only); LongSafari's released configs say untied and store both.
    """
    if name not in MODEL_SIZES:
        raise ValueError(f"unknown HyenaDNA size {name!r}; choose one of {sorted(MODEL_SIZES)}")
    fields = {
        "tie_word_embeddings": True,
        "emb_dim": 5,
        "filter_order": 64,
        "num_inner_mlps": 2,
        "hyena_order": 2,
        "short_filter_order": 3,
        "activation_freq": 10,
        **MODEL_SIZES[name],
        **overrides,
    }
    return HyenaDNAConfig(**fields)
