"""A GenBank poll of 500 records on the local stack (template.yaml on moto + the HealthOmics and
SageMaker emulations), against the fake E-utilities server: what reaches HealthOmics' ~5 TPS
quotas is one file, one ingest, one StartReadSetImportJob, one read set and one training job,
not 500 of each. Every wait polls with a deadline.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hyenaflow.local.pipeline import LocalPipeline, PipelineConfig, local_environment_overrides
from tests.integration.eutils_server import EutilsServer, FakeEutils, GenbankRecord
from tests.support import polling

pytestmark = pytest.mark.slow

RECORDS = 500
DEADLINE_S = 300.0


def phage_records(count: int) -> list[GenbankRecord]:
    rng = random.Random(13)
    today = datetime.now(UTC).date()  # inside the first poll's lookback window
    return [
        GenbankRecord(
            str(700_000 + n),
            f"OQ{700_000 + n}.1",
            f"Escherichia phage vB_EcoS_{n}, complete genome",
            "".join(rng.choices("ACGT", k=300)),
            today,
        )
        for n in range(count)
    ]


@pytest.fixture
def eutils() -> Iterator[EutilsServer]:
    with EutilsServer(FakeEutils(records=phage_records(RECORDS))) as server:
        yield server


@pytest.fixture
def pipeline(
    tmp_path: Path, eutils: EutilsServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LocalPipeline]:
    # As README.md tells users: point the poller at another E-utilities server.
    monkeypatch.setenv("HYENAFLOW_LOCAL_EUTILS_BASE_URL", eutils.base_url)
    monkeypatch.setenv("HYENAFLOW_LOCAL_MAX_STEPS", "2")  # the test stops once the job exists
    config = PipelineConfig(workdir=tmp_path / "local", environment_overrides=local_environment_overrides())
    with LocalPipeline(config) as running:
        yield running
        assert running.delivery_errors() == []


def test_a_poll_of_500_records_makes_one_import_and_at_most_one_training_job(pipeline: LocalPipeline) -> None:
    s3, omics, sagemaker = pipeline.client("s3"), pipeline.client("omics"), pipeline.client("sagemaker")
    ingest = pipeline.function_for_handler("ingest_fasta").logical_id
    start_training = pipeline.function_for_handler("start_training").logical_id

    pipeline.fire_schedule("PollGenBankFunction")

    jobs = polling.wait_for(
        lambda: sagemaker.list_training_jobs()["TrainingJobSummaries"],
        "start_training to create the training job",
        DEADLINE_S,
        interval_s=0.5,
    )
    polling.wait_for(
        lambda: any(name == start_training for name, _, _ in pipeline.runtime.invocations),
        "start_training to finish",
        DEADLINE_S,
        interval_s=0.2,
    )

    listing = s3.list_objects_v2(Bucket=pipeline.data_bucket, Prefix="incoming/genbank/")
    keys = [o["Key"] for o in listing.get("Contents", [])]
    assert len(keys) == 1, f"{len(keys)} objects in incoming/genbank/"  # one multi-record FASTA
    [poll] = [r for name, _, r in pipeline.runtime.invocations if name == "PollGenBankFunction"]
    assert poll.ok and poll.response["complete"]
    assert (poll.response["key"], poll.response["written"]) == (keys[0], RECORDS)
    ingests = [r for name, _, r in pipeline.runtime.invocations if name == ingest]
    assert len(ingests) == 1 and ingests[0].response["records"] == RECORDS
    [import_job] = omics.list_read_set_import_jobs(sequenceStoreId=pipeline.sequence_store_id)["importJobs"]
    [read_set] = omics.list_read_sets(sequenceStoreId=pipeline.sequence_store_id)["readSets"]
    stem = keys[0].removeprefix("incoming/genbank/").removesuffix(".fa")
    assert import_job["status"] == "COMPLETED" and read_set["sampleId"] == stem
    assert len(jobs) == 1 and import_job["id"] in jobs[0]["TrainingJobName"]
    assert [name for name, _, _ in pipeline.runtime.invocations].count(start_training) == 1
    # The caps the template declares are the ones the local runtime runs with (one at a time here).
    assert pipeline.function(ingest).reserved_concurrency == int(pipeline.parameters["IngestConcurrency"])
    assert pipeline.function(start_training).reserved_concurrency == 1
