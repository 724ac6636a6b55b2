"""The AWS container images the training jobs and the endpoint run on, resolved per Region.

Both containers pip-install transformers 5.23.0 (training_job/requirements.txt,
endpoint/requirements.txt), which needs torch >= 2.6: on an older torch it switches its PyTorch
support off (`is_torch_available()` is False) and HyenaDNA cannot be built. The choice, with the
evidence (research notes /work/research/aws-facts.md sections A1, A2):

- training: `pytorch-amzn2023` 2.13, the AWS Deep Learning Container `pytorch:2.13-<cpu|cu133>-
  amzn2023-sagemaker`: torch 2.13.0 on Python 3.12, the torch this project pins and tests with.
  It carries the SageMaker PyTorch training toolkit (`SAGEMAKER_TRAINING_MODULE`), so the jobs'
  script-mode hyperparameters work unchanged. The stock `pytorch-training` 2.10 image is Python
  3.13 only, 2.9 would do (py312) but is four torch releases behind.
  Source: aws/deep-learning-containers docker/pytorch/2.13/{cuda,cpu}/pyproject.toml + uv.lock.
- inference: `pytorch-inference` 2.6 (py312), the newest SageMaker PyTorch inference image
  (image_uris has no 2.7+; the amzn2023 images are not set up for serving): torch 2.6.0, exactly
  transformers' floor. Source: pytorch/inference/docker/2.6/py3/cu124/Dockerfile.gpu @a70e18c8.

Neither image has accelerate (transformers checks its version at import only when installed,
and only its Trainer needs it; hyenaflow never uses the Trainer) nor transformers.

`image_uri()` needs the sagemaker SDK's `sagemaker.core.image_uris` (the `deploy` dependency
group): it works offline and knows each Region's registry account and DNS suffix.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ContainerImage:
    """An AWS image as `image_uris.retrieve` names it, and what is inside it."""

    framework: str  # image_uris framework key
    version: str  # image_uris version (the tag's leading version)
    py_version: str | None  # image_uris py_version; None where the tag has none
    image_scope: str  # "training" | "inference"
    torch: str  # torch version inside the image
    python: str  # Python version inside the image
    # Packages transformers checks at import when present (dependency_versions_check):
    # name -> version inside the image, None = not installed.
    preinstalled: dict[str, str | None] = field(default_factory=dict)
    source: str = ""


TRAINING_IMAGE = ContainerImage(
    framework="pytorch-amzn2023",
    version="2.13",
    py_version=None,
    image_scope="training",
    torch="2.13.0",
    python="3.12",
    preinstalled={"accelerate": None},
    source="aws/deep-learning-containers docker/pytorch/2.13/cuda/uv.lock (torch 2.13.0+cu130, no accelerate)",
)

INFERENCE_IMAGE = ContainerImage(
    framework="pytorch",
    version="2.6",
    py_version="py312",
    image_scope="inference",
    torch="2.6.0",
    python="3.12",
    preinstalled={"accelerate": None},
    source="aws/deep-learning-containers pytorch/inference/docker/2.6/py3/cu124/Dockerfile.gpu @a70e18c8",
)


def image_uri(image: ContainerImage, region: str, instance_type: str) -> str:
    """`image` in `region`'s registry, CPU or GPU build after `instance_type` (offline)."""
    from sagemaker.core import image_uris  # the `deploy` group; imported here: ~2 s and pandas

    return image_uris.retrieve(
        framework=image.framework,
        region=region,
        version=image.version,
        py_version=image.py_version,
        instance_type=instance_type,
        image_scope=image.image_scope,
    )


def training_image_uri(region: str, instance_type: str) -> str:
    return image_uri(TRAINING_IMAGE, region, instance_type)


def inference_image_uri(region: str, instance_type: str) -> str:
    return image_uri(INFERENCE_IMAGE, region, instance_type)
