"""Reading AWS errors: which ones mean "it is already there" or "it is not there"."""

from __future__ import annotations

from botocore.exceptions import ClientError


def error_code(err: ClientError) -> str:
    return err.response.get("Error", {}).get("Code", "")


def error_message(err: ClientError) -> str:
    return err.response.get("Error", {}).get("Message", "")


def is_not_found(err: ClientError) -> bool:
    """SageMaker answers Describe* of a missing resource with ValidationException "Could not find"."""
    code = error_code(err)
    message = error_message(err).lower()
    return code in {"ResourceNotFound", "ResourceNotFoundException", "NotFoundException"} or (
        code == "ValidationException" and ("could not find" in message or "not found" in message)
    )


def is_already_exists(err: ClientError) -> bool:
    """Create* of a name that exists: ResourceInUse (training jobs) or ValidationException (models)."""
    code = error_code(err)
    message = error_message(err).lower()
    return code in {"ResourceInUse", "ResourceInUseException", "ConflictException"} or (
        code == "ValidationException" and "already exist" in message
    )
