"""AWS HealthOmics sequence stores, emulated on moto's backend framework (moto has no omics).

Laid out as moto lays out a service: `models.py` (the backend), `responses.py` (requests and
answers), `urls.py` (where it is served), `exceptions.py`, plus `fastq_validation.py` (the checks
an import makes). Served by the same moto server as every other service (aws_server.py).
"""

from hyenaflow.local.omics.models import (
    archive_read_sets,
    fail_activations,
    hold_jobs,
    omics_backends,
    release_jobs,
)

__all__ = ["archive_read_sets", "fail_activations", "hold_jobs", "omics_backends", "release_jobs"]
