"""HealthOmics errors, as botocore's omics model names them (moto serialises them for the wire)."""

from __future__ import annotations

from moto.core.exceptions import ServiceException


class ResourceNotFoundException(ServiceException):
    code = "ResourceNotFoundException"


class ValidationException(ServiceException):
    code = "ValidationException"


class ThrottlingException(ServiceException):
    """Only when a test asks for it (hyenaflow.local.throttling): HTTP 429, as the model says."""

    code = "ThrottlingException"


class SourceInvalid(Exception):
    """A source file HealthOmics would refuse. Not a wire error: an import job reports it as the
    source's statusMessage (status FAILED) and goes on with its other sources."""
