"""The SageMaker model registry where moto 5.2.5 falls short: versioned model packages.

moto keeps the records (so ListModelPackages and the groups stay moto's); this layer answers
the calls it gets wrong, as botocore's sagemaker model (2017-07-24) describes them:

- CreateModelPackage: `ModelPackageGroupName` is a name or an ARN (shape ArnOrName; moto refuses
  the ARN); `CustomerMetadataProperties` is a map of 1-50 entries, keys 1-128 and values 1-256
  characters matching `([\\p{L}\\p{Z}\\p{N}_.:\\/=+\\-@]*)` (shapes CustomerMetadataMap/Key/Value;
  moto checks nothing); `ClientToken` makes the call idempotent (the same token returns the
  package it created).
- DescribeModelPackage: `ModelPackageName` is a name or ARN, a versioned package's name being
  `<group>/<version>` (shape VersionedArnOrName; moto finds only ARNs, and answers a bare group
  name with its newest version); the output's required `ModelPackageName` is kept (moto drops it
  for versioned packages; here it is the group name, which is what moto stores as the name).
- UpdateModelPackage changes only the members it is given; `CustomerMetadataProperties` adds or
  replaces those keys and `CustomerMetadataPropertiesToRemove` removes keys (moto overwrites the
  approval status, its description and the whole metadata map with whatever was passed, None
  included, and crashes removing a key from a package without metadata).
- CreateModel with a container's `ModelPackageName` (ContainerDefinition.ModelPackageName, "the
  name or ARN of the model package to use to create the model") refuses a package that does not
  exist or, for a versioned one, is not Approved (CreateModelPackageInput.ModelApprovalStatus: "For
  versioned models, the value of this parameter must be set to Approved to deploy the model");
  moto stores any name verbatim. `container_for()` gives the endpoint emulation the package's
  container (image, model data, environment) to serve.

The exact error messages of the real service for these refusals are not documented; the ones
here say what was wrong in the ValidationException shape botocore parses.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable
from typing import Any

from hyenaflow.local.sagemaker.context import Operation, OperationCall, SageMakerContext
from hyenaflow.local.wsgi import forward, json_error, json_response, read_json, replace_json_body

APPROVAL_STATUSES = ("Approved", "Rejected", "PendingManualApproval")  # shape ModelApprovalStatus
METADATA_MAX_ENTRIES = 50
METADATA_KEY_MAX, METADATA_VALUE_MAX = 128, 256
_METADATA_PUNCTUATION = set("_.:/=+-@")
_VERSIONED_NAME = re.compile(r"^(?P<group>[a-zA-Z0-9](?:[a-zA-Z0-9-]){0,62})/(?P<version>[0-9]{1,9})$")
_ARN = re.compile(r"^arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]*:[0-9]{12}:(?P<type>[a-z\-]+)/(?P<id>.+)$")


class RegistryError(ValueError):
    """A request the real service refuses with a ValidationException; the message says why."""


def _metadata_text_ok(text: str) -> bool:
    """\\p{L} (letters), \\p{Z} (separators), \\p{N} (numbers) and `_.:/=+-@`, as the pattern says."""
    return all(unicodedata.category(ch)[0] in "LZN" or ch in _METADATA_PUNCTUATION for ch in text)


def validate_customer_metadata(properties: Any, *, field: str = "customerMetadataProperties") -> None:
    """botocore's CustomerMetadataMap constraints (the SDK checks the minimum lengths only)."""
    if not isinstance(properties, dict) or not 1 <= len(properties) <= METADATA_MAX_ENTRIES:
        raise RegistryError(
            f"Value at '{field}' failed to satisfy constraint: Member must have between 1 and "
            f"{METADATA_MAX_ENTRIES} entries"
        )
    for key, value in properties.items():
        for what, text, limit in (("key", key, METADATA_KEY_MAX), ("value", value, METADATA_VALUE_MAX)):
            if not isinstance(text, str) or not 1 <= len(text) <= limit or not _metadata_text_ok(text):
                raise RegistryError(
                    f"Value '{text}' at '{field}' failed to satisfy constraint: Map {what} must have length "
                    f"between 1 and {limit} and match the pattern ([\\p{{L}}\\p{{Z}}\\p{{N}}_.:\\/=+\\-@]*)"
                )


class ModelPackages:
    """The model-registry operations of one server (records in moto's SageMaker backend)."""

    def __init__(self, context: SageMakerContext) -> None:
        self.context = context

    def operations(self) -> dict[str, Operation]:
        return {
            "CreateModelPackage": self._answering(self.create_model_package),
            "DescribeModelPackage": self._answering(self.describe_model_package),
            "UpdateModelPackage": self._answering(self.update_model_package),
        }

    def _answering(self, operation: Callable[[OperationCall], Any]) -> Operation:
        def answer(
            environ: dict[str, Any], start_response: Callable[..., Any], account: str, region: str
        ) -> Any:
            call = OperationCall(environ, start_response, account, region, read_json(environ))
            try:
                with self.context.lock:  # check and change as one step
                    return operation(call)
            except RegistryError as error:
                return json_error(start_response, "ValidationException", str(error))

        return answer

    # --- lookups -------------------------------------------------------------------------------

    def group_name(self, account: str, region: str, name_or_arn: str) -> str:
        """The group's name, given its name or ARN (shape ArnOrName); RegistryError if unknown."""
        match = _ARN.match(name_or_arn)
        name = match.group("id") if match and match.group("type") == "model-package-group" else name_or_arn
        if name not in self.context.backend(account, region).model_package_groups:
            raise RegistryError(f"Model Package Group {name_or_arn} does not exist.")
        return name

    def find(self, account: str, region: str, name_or_arn: str) -> Any | None:
        """moto's record of a package named by ARN, `<group>/<version>` or unversioned name."""
        packages = self.context.backend(account, region).model_packages
        if _ARN.match(name_or_arn):
            return packages.get(name_or_arn)
        versioned = _VERSIONED_NAME.match(name_or_arn)
        for package in packages.values():
            if versioned:
                if package.model_package_group_name == versioned.group("group") and str(
                    package.model_package_version
                ) == versioned.group("version"):
                    return package
            elif package.model_package_version is None and package.model_package_name == name_or_arn:
                return package
        return None

    def _existing(self, account: str, region: str, name_or_arn: str) -> Any:
        package = self.find(account, region, name_or_arn)
        if package is None:
            raise RegistryError(f"Model package {name_or_arn} not found")
        return package

    def container_for(self, account: str, region: str, container: dict[str, Any]) -> dict[str, Any]:
        """A model's container as it is served: a ModelPackageName is resolved to the package's
        first inference container, the model's own Environment added on top."""
        name = container.get("ModelPackageName")
        if not name:
            return container
        with self.context.lock:
            package = self._existing(account, region, name)
            spec = (package.inference_specification or {}).get("Containers") or [{}]
            resolved = dict(spec[0])
        resolved["Environment"] = {
            **(resolved.get("Environment") or {}),
            **(container.get("Environment") or {}),
        }
        return resolved

    def refusing_undeployable(self, create_model: Operation) -> Operation:
        """CreateModel that first checks the model packages its containers name."""

        def checked(
            environ: dict[str, Any], start_response: Callable[..., Any], account: str, region: str
        ) -> Any:
            try:
                self.check_deployable(account, region, read_json(environ))
            except RegistryError as error:
                return json_error(start_response, "ValidationException", str(error))
            return create_model(environ, start_response, account, region)

        return checked

    def check_deployable(self, account: str, region: str, request: dict[str, Any]) -> None:
        """CreateModel: every container's ModelPackageName must exist and, if versioned, be Approved."""
        containers = [request.get("PrimaryContainer") or {}, *(request.get("Containers") or [])]
        with self.context.lock:
            for container in containers:
                name = container.get("ModelPackageName")
                if not name:
                    continue
                package = self.find(account, region, name)
                if package is None:
                    raise RegistryError(f"Model package {name} does not exist.")
                if package.model_package_version is not None and package.model_approval_status != "Approved":
                    raise RegistryError(
                        f"Model package {package.arn} has ModelApprovalStatus "
                        f"{package.model_approval_status or 'unset'}; a versioned model package must be "
                        "Approved to deploy it"
                    )

    # --- operations ----------------------------------------------------------------------------

    def create_model_package(self, call: OperationCall) -> Any:
        token = call.request.get("ClientToken")
        if token:
            for package in self.context.backend(call.account, call.region).model_packages.values():
                if package.client_token == token:  # a retried call: the package it created
                    return json_response(call.start_response, {"ModelPackageArn": package.arn})
        if "CustomerMetadataProperties" in call.request:
            validate_customer_metadata(call.request["CustomerMetadataProperties"])
        if call.request.get("ModelPackageGroupName"):
            call.request["ModelPackageGroupName"] = self.group_name(
                call.account, call.region, call.request["ModelPackageGroupName"]
            )
            replace_json_body(call.environ, call.request)
        return forward(call.start_response, *self.context.call_moto(call.environ))

    def describe_model_package(self, call: OperationCall) -> Any:
        package = self._existing(call.account, call.region, call.request.get("ModelPackageName", ""))
        replace_json_body(call.environ, {**call.request, "ModelPackageName": package.arn})
        status, headers, body = self.context.call_moto(call.environ)
        if status == 200:
            described = json.loads(body)
            described.setdefault("ModelPackageName", package.model_package_name)
            body = json.dumps(described).encode()
        return forward(call.start_response, status, headers, body)

    def update_model_package(self, call: OperationCall) -> Any:
        package = self._existing(call.account, call.region, call.request.get("ModelPackageArn", ""))
        status = call.request.get("ModelApprovalStatus")
        if status is not None and status not in APPROVAL_STATUSES:
            raise RegistryError(
                f"Value '{status}' at 'modelApprovalStatus' failed to satisfy constraint: "
                f"Member must satisfy enum value set: [{', '.join(APPROVAL_STATUSES)}]"
            )
        metadata = dict(package.customer_metadata_properties or {})
        if "CustomerMetadataProperties" in call.request:
            validate_customer_metadata(call.request["CustomerMetadataProperties"])
            metadata.update(call.request["CustomerMetadataProperties"])
        for key in call.request.get("CustomerMetadataPropertiesToRemove") or []:
            metadata.pop(key, None)
        if len(metadata) > METADATA_MAX_ENTRIES:
            raise RegistryError(
                f"A model package can have at most {METADATA_MAX_ENTRIES} customer metadata properties"
            )
        # Validated: now change only what the call.request names.
        if status is not None:
            package.model_approval_status = status
        if "ApprovalDescription" in call.request:
            package.approval_description = call.request["ApprovalDescription"]
        package.customer_metadata_properties = metadata or None
        if "InferenceSpecification" in call.request:
            package.inference_specification = call.request["InferenceSpecification"]
        if call.request.get("AdditionalInferenceSpecificationsToAdd"):
            package.add_additional_inference_specifications(
                call.request["AdditionalInferenceSpecificationsToAdd"]
            )
        package.modifications_done()
        return json_response(call.start_response, {"ModelPackageArn": package.arn})
