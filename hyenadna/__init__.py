"""HyenaDNA (Nguyen et al. 2023, arXiv 2306.15794) as a Hugging Face model package.

Importing `hyenadna` registers the config, models and tokenizer with the Auto classes, so
`AutoModelForCausalLM.from_pretrained(directory)` and `AutoTokenizer.from_pretrained(directory)`
load our own and LongSafari `*-seqlen-hf` directories without `trust_remote_code`.

The package stands alone (torch, transformers, safetensors, numpy and the standard library):
copy this folder next to any script, as the training bundle and the model artifact's `code/` do.

Files: `configuration_hyenadna` (config, family sizes), `modeling_hyenadna` (the whole forward
pass, top to bottom: implicit filter, short conv, Hyena operator, block, backbone, heads, and the
optimizer groups), `fft_conv` (the causal FFT convolution with its hand-written backward),
`alphabet` (bases, IUPAC codes and token ids; standard library only, shared with the Lambdas),
`tokenization_hyenadna` (`CharacterTokenizer`, `encode_dna`), `convert_lightning` (original
`weights.ckpt` -> this format).
"""

from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
)

from . import alphabet
from .alphabet import N_ID, NUCLEOTIDE_IDS, PAD_ID, SEP_ID, SPECIAL_TOKEN_IDS, UNK_ID
from .configuration_hyenadna import MODEL_SIZES, HyenaDNAConfig, config_for_size
from .modeling_hyenadna import (
    HyenaDNAForCausalLM,
    HyenaDNAForSequenceClassification,
    HyenaDNAModel,
    HyenaDNAPreTrainedModel,
    HyenaGenerationCache,
)
from .tokenization_hyenadna import CharacterTokenizer, encode_dna, first_invalid_dna_position

AutoConfig.register(HyenaDNAConfig.model_type, HyenaDNAConfig, exist_ok=True)
AutoModel.register(HyenaDNAConfig, HyenaDNAModel, exist_ok=True)
AutoModelForCausalLM.register(HyenaDNAConfig, HyenaDNAForCausalLM, exist_ok=True)
AutoModelForSequenceClassification.register(HyenaDNAConfig, HyenaDNAForSequenceClassification, exist_ok=True)
AutoTokenizer.register(HyenaDNAConfig, tokenizer_class=CharacterTokenizer, exist_ok=True)

__all__ = [
    "MODEL_SIZES",
    "NUCLEOTIDE_IDS",
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
    "HyenaGenerationCache",
    "alphabet",
    "config_for_size",
    "encode_dna",
    "first_invalid_dna_position",
]
