"""How many GPUs a SageMaker training instance has, and so how train.py is launched on it.

SageMaker starts one process per instance unless the job turns on the PyTorch toolkit's
`torch_distributed` launcher (hyperparameter `sagemaker_torch_distributed_enabled`), which runs
`torchrun --nnodes <instances> --nproc_per_node <GPUs of the instance>` instead
(aws/sagemaker-pytorch-training-toolkit src/sagemaker_pytorch_container/training.py,
aws/sagemaker-training-toolkit src/sagemaker_training/torch_distributed.py and runner.py: the
process count is the container's own GPU count). So the table only has to tell one GPU from
several; the toolkit counts them itself.

Counts (research notes /work/research/aws-facts.md section D): sagemaker-core 2.27.0
`image_uri_config/instance_gpu_info.json` (p3, p3dn, p4d, p4de, p5.48xlarge, g4dn, g5),
meta-pytorch/torchx `named_resources_aws.py` (p5e, p5en, g6e), rapidsai/deployment's AWS page
(g6.24xlarge, g6.48xlarge), AWS P6 write-ups (p6-b200, p6-b300: eight Blackwell GPUs); g6 sizes
below 12xlarge follow the family's pattern and g6.12xlarge (4 x L4) is EC2's G6 table. Types
not listed here (ml.p5.4xlarge, ml.p6e-gb200, ml.g7*, Trainium, ml.p2: unconfirmed counts or no
CUDA GPUs our image supports) train as one process per instance, with a warning.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

GPUS_PER_TRAINING_INSTANCE: dict[str, int] = {
    # V100
    "ml.p3.2xlarge": 1,
    "ml.p3.8xlarge": 4,
    "ml.p3.16xlarge": 8,
    "ml.p3dn.24xlarge": 8,
    # A100
    "ml.p4d.24xlarge": 8,
    "ml.p4de.24xlarge": 8,
    # H100 / H200
    "ml.p5.48xlarge": 8,
    "ml.p5e.48xlarge": 8,
    "ml.p5en.48xlarge": 8,
    # B200 / B300
    "ml.p6-b200.48xlarge": 8,
    "ml.p6-b300.48xlarge": 8,
    # T4
    "ml.g4dn.xlarge": 1,
    "ml.g4dn.2xlarge": 1,
    "ml.g4dn.4xlarge": 1,
    "ml.g4dn.8xlarge": 1,
    "ml.g4dn.16xlarge": 1,
    "ml.g4dn.12xlarge": 4,
    # A10G
    "ml.g5.xlarge": 1,
    "ml.g5.2xlarge": 1,
    "ml.g5.4xlarge": 1,
    "ml.g5.8xlarge": 1,
    "ml.g5.16xlarge": 1,
    "ml.g5.12xlarge": 4,
    "ml.g5.24xlarge": 4,
    "ml.g5.48xlarge": 8,
    # L4
    "ml.g6.xlarge": 1,
    "ml.g6.2xlarge": 1,
    "ml.g6.4xlarge": 1,
    "ml.g6.8xlarge": 1,
    "ml.g6.16xlarge": 1,
    "ml.g6.12xlarge": 4,
    "ml.g6.24xlarge": 4,
    "ml.g6.48xlarge": 8,
    # L40S
    "ml.g6e.xlarge": 1,
    "ml.g6e.2xlarge": 1,
    "ml.g6e.4xlarge": 1,
    "ml.g6e.8xlarge": 1,
    "ml.g6e.16xlarge": 1,
    "ml.g6e.12xlarge": 4,
    "ml.g6e.24xlarge": 4,
    "ml.g6e.48xlarge": 8,
}

# General purpose, compute and memory optimised families: CPUs only (botocore's TrainingInstanceType).
_CPU_ONLY = re.compile(r"^ml\.(c|m|r|t)\d+[a-z]*(-flex)?\.[0-9a-z]+$")


@dataclass(frozen=True)
class Launch:
    """How the training toolkit starts train.py: `torchrun` (torch_distributed) or one process."""

    torchrun: bool
    gpus_per_instance: int | None  # None: not in the table
    note: str | None = None  # say it in the log: why the job may not use every GPU


def gpus_per_instance(instance_type: str) -> int | None:
    """GPUs of a training instance type: 0 for CPU families, None when unknown."""
    if instance_type in GPUS_PER_TRAINING_INSTANCE:
        return GPUS_PER_TRAINING_INSTANCE[instance_type]
    if _CPU_ONLY.match(instance_type):
        return 0
    return None


def training_launch(instance_type: str, instance_count: int) -> Launch:
    """torchrun whenever more than one process can train: several instances or several GPUs."""
    gpus = gpus_per_instance(instance_type)
    torchrun = instance_count > 1 or (gpus or 0) > 1
    note = None
    if gpus is None:
        note = f"{instance_type}: GPU count unknown to pipeline/training/instance_gpus.py; " + (
            "torchrun starts one process per GPU on each instance"
            if torchrun
            else "training runs as one process (add the type to GPUS_PER_TRAINING_INSTANCE to use every GPU)"
        )
    return Launch(torchrun=torchrun, gpus_per_instance=gpus, note=note)
