"""HyenaDNA (Nguyen et al. 2023, arXiv 2306.15794) as a Hugging Face model package.

Importing `hyenadna` registers the config, models and tokenizer with the Auto classes, so
`AutoModelForCausalLM.from_pretrained(directory)` and `AutoTokenizer.from_pretrained(directory)`
load our own and LongSafari `*-seqlen-hf` directories without `trust_remote_code`.

Files, one concept each: `configuration_hyenadna` (config, family sizes), `implicit_filter`
(positional embedding, Sin MLP, exponential modulation), `fft_conv` (causal FFT convolution),
`short_conv` (short causal depthwise convolution), `hyena_operator`, `block`,
`modeling_hyenadna` (backbone and heads), `tokenization_hyenadna` (vocabulary, `encode_dna`),
`convert_lightning` (original `weights.ckpt` -> this format).
"""

from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
)

from .configuration_hyenadna import MODEL_SIZES, HyenaDNAConfig, config_for_size
from .modeling_hyenadna import (
    HyenaDNAForCausalLM,
    HyenaDNAForSequenceClassification,
    HyenaDNAModel,
    HyenaDNAPreTrainedModel,
)
from .tokenization_hyenadna import (
    N_ID,
    PAD_ID,
    SEP_ID,
    SPECIAL_TOKEN_IDS,
    UNK_ID,
    CharacterTokenizer,
    encode_dna,
    first_invalid_dna_position,
)

AutoConfig.register(HyenaDNAConfig.model_type, HyenaDNAConfig, exist_ok=True)
AutoModel.register(HyenaDNAConfig, HyenaDNAModel, exist_ok=True)
AutoModelForCausalLM.register(HyenaDNAConfig, HyenaDNAForCausalLM, exist_ok=True)
AutoModelForSequenceClassification.register(HyenaDNAConfig, HyenaDNAForSequenceClassification, exist_ok=True)
AutoTokenizer.register(HyenaDNAConfig, tokenizer_class=CharacterTokenizer, exist_ok=True)

__all__ = [
    "MODEL_SIZES",
    "N_ID",
    "PAD_ID",
    "SEP_ID",
    "SPECIAL_TOKEN_IDS",
    "UNK_ID",
    "CharacterTokenizer",
    "HyenaDNAConfig",
    "HyenaDNAForCausalLM",
    "HyenaDNAForSequenceClassification",
    "HyenaDNAModel",
    "HyenaDNAPreTrainedModel",
    "config_for_size",
    "encode_dna",
    "first_invalid_dna_position",
]
