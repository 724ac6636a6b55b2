"""The instance types AWS accepts, from botocore's SageMaker model (moto's lists are older)."""

from __future__ import annotations

import functools
from typing import Any

import botocore.session


@functools.cache
def instance_types(shape: str) -> frozenset[str]:
    """The enum of `shape` (TrainingInstanceType, ProductionVariantInstanceType) in botocore's model."""
    model = botocore.session.get_session().get_service_model("sagemaker")
    return frozenset(model.shape_for(shape).enum)


def use_botocore_instance_types() -> None:
    """Validate endpoint-config instance types against botocore's (current) enum.

    moto 5.2.5's FakeEndpointConfig checks a hard-coded list that predates ml.g5/ml.g6/ml.p4d/
    ml.p5, so the pipeline's GPU endpoint configs would be refused. The real list lives in
    botocore's service model; a class-level replacement is acceptable because moto is pinned
    (aws_server.SUPPORTED_MOTO_VERSION) and the local stack owns this process.
    """
    from moto.sagemaker.exceptions import ValidationError
    from moto.sagemaker.models import FakeEndpointConfig

    def validate_instance_type(self: Any, instance_type: str) -> None:
        if instance_type not in instance_types("ProductionVariantInstanceType"):
            raise ValidationError(
                message=f"Value '{instance_type}' at 'instanceType' failed to satisfy constraint: "
                "Member must satisfy enum value set (ProductionVariantInstanceType)"
            )

    FakeEndpointConfig.validate_instance_type = validate_instance_type  # type: ignore[method-assign]
