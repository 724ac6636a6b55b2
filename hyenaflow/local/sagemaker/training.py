"""SageMaker training jobs: CreateTrainingJob and StopTrainingJob, run as local processes.

moto 5.2.5 marks a training job Completed the moment it is created, has no StopTrainingJob,
overwrites a job's MetricDefinitions and accepts duplicate job names. Here moto keeps the record
(so DescribeTrainingJob/ListTrainingJobs stay moto's) and a TrainingRun (training_run.py) drives
its state: InProgress -> Completed | Failed | Stopped, with FinalMetricDataList, FailureReason and
model.tar.gz, and a "SageMaker Training Job State Change" event on every status change. A managed
spot job can lose its instance (`interrupt_spot_job`): it restarts from its synced checkpoints.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from hyenaflow.local.sagemaker.context import Key, Operation, OperationCall, SageMakerContext
from hyenaflow.local.sagemaker.instance_types import instance_types
from hyenaflow.local.sagemaker.training_run import DEFAULT_TRAINING_CODE_DIR, TrainingRun
from hyenaflow.local.wsgi import forward, json_error, json_response, read_json

TRAINING_EVENT = "SageMaker Training Job State Change"


class TrainingJobs:
    """The training-job operations of one server and the runs they started."""

    def __init__(self, context: SageMakerContext) -> None:
        self.context = context
        self.runs: dict[Key, TrainingRun] = {}

    def operations(self) -> dict[str, Operation]:
        return {"CreateTrainingJob": self.create_training_job, "StopTrainingJob": self.stop_training_job}

    def create_training_job(
        self, environ: dict[str, Any], start_response: Callable[..., Any], account: str, region: str
    ) -> Any:
        call = OperationCall(environ, start_response, account, region, read_json(environ))
        with self.context.lock:  # check and create as one step: concurrent replays race otherwise
            outcome = self._register(call)
        if not isinstance(outcome, TrainingRun):
            return outcome  # refused: the error response
        # Outside the lock: event listeners may call back into this server.
        self._put_event(account, region, outcome.name)
        outcome.start()
        return json_response(start_response, {"TrainingJobArn": outcome.arn})

    def _register(self, call: OperationCall) -> TrainingRun | Any:
        """Validate, let moto record the job, put it InProgress; a TrainingRun, or an error response."""
        name = call.request.get("TrainingJobName", "")
        backend = self.context.backend(call.account, call.region)
        if self.context.closing.is_set():  # its script could outlive the stack
            return json_error(
                call.start_response, "ServiceUnavailable", "The local stack is shutting down", status=503
            )
        if name in backend.training_jobs:
            return json_error(
                call.start_response,
                "ResourceInUse",
                "Training job names must be unique within an AWS account and region, and a training job "
                f"with this name already exists ({backend.training_jobs[name].arn})",
            )
        instance_type = (call.request.get("ResourceConfig") or {}).get("InstanceType")
        if instance_type and instance_type not in instance_types("TrainingInstanceType"):
            return json_error(
                call.start_response,
                "ValidationException",
                f"Value '{instance_type}' at 'resourceConfig.instanceType' failed to satisfy constraint: "
                "Member must satisfy enum value set (TrainingInstanceType)",
            )
        status, headers, body = self.context.call_moto(call.environ)
        if status != 200:
            return forward(call.start_response, status, headers, body)
        job = backend.training_jobs[name]
        # moto replaces the job's MetricDefinitions with a canned one and marks it Completed.
        job.algorithm_specification["MetricDefinitions"] = (
            call.request.get("AlgorithmSpecification") or {}
        ).get("MetricDefinitions", [])
        job.training_job_status, job.secondary_status = "InProgress", "Starting"
        job.training_end_time = None
        job.final_metric_data_list = []
        job.failure_reason = None
        job.secondary_status_transitions = [
            {"Status": "Starting", "StartTime": job.creation_time, "StatusMessage": "Preparing the local run"}
        ]
        run = TrainingRun(
            name=name,
            arn=job.arn,
            request=call.request,
            job_dir=self.context.workdir / "training" / name,
            s3=self.context.client("s3", call.region),
            aws_env=self.context.aws_env(call.region),
            training_code_dir=DEFAULT_TRAINING_CODE_DIR,
            processes=self.context.processes,
            on_status=lambda run, *change: self._on_status(call.account, call.region, run, *change),
        )
        self.runs[(call.account, call.region, name)] = run
        return run

    def _on_status(
        self, account: str, region: str, run: TrainingRun, status: str, secondary: str, reason: str | None
    ) -> None:
        """A run's progress, written into moto's record of the job as DescribeTrainingJob shows it."""
        job = self.context.backend(account, region).training_jobs.get(run.name)
        if job is None:
            return
        now = datetime.now(UTC)
        previous_status, previous_secondary = job.training_job_status, job.secondary_status
        if job.secondary_status_transitions:
            job.secondary_status_transitions[-1].setdefault("EndTime", now)
        if secondary != previous_secondary:
            job.secondary_status_transitions.append(
                {"Status": secondary, "StartTime": now, "StatusMessage": secondary}
            )
        job.training_job_status, job.secondary_status = status, secondary
        job.last_modified_time = now
        job.final_metric_data_list = run.metrics.final_metric_data_list()
        if reason:
            job.failure_reason = reason
        if status in ("Completed", "Failed", "Stopped"):
            job.training_end_time = now
        if status != previous_status:
            self._put_event(account, region, run.name)

    def _put_event(self, account: str, region: str, name: str) -> None:
        detail = self.context.backend(account, region).describe_training_job(name)
        self.context.put_event(account, region, TRAINING_EVENT, detail, [detail["TrainingJobArn"]])

    def stop_training_job(
        self, environ: dict[str, Any], start_response: Callable[..., Any], account: str, region: str
    ) -> Any:
        name = read_json(environ).get("TrainingJobName", "")
        job = self.context.backend(account, region).training_jobs.get(name)
        if job is None:
            return json_error(
                start_response, "ValidationException", f"Requested resource not found: training job {name}"
            )
        run = self.runs.get((account, region, name))
        if job.training_job_status == "Stopping":
            return json_response(start_response, {})
        if job.training_job_status != "InProgress" or run is None:
            return json_error(
                start_response,
                "ValidationException",
                f"The request was rejected because the training job is in status {job.training_job_status}.",
            )
        job.training_job_status, job.secondary_status = "Stopping", "Stopping"
        self._put_event(account, region, name)
        self.context.background(run.stop, f"stop-{name}")
        return json_response(start_response, {})

    def interrupt_spot_job(self, account: str, region: str, name: str) -> None:
        """Test/demo hook: the job's spot instance is reclaimed (TrainingRun.interrupt)."""
        run = self.runs.get((account, region, name))
        if run is None:
            raise KeyError(f"no training job {name} runs on this server")
        run.interrupt()

    def mark_all_stopped(self) -> None:
        """The server is shutting down: every run ends Stopped (their scripts are ended with every
        other child process of the server, by ChildProcesses.stop_all)."""
        with self.context.lock:
            runs = list(self.runs.values())
        for run in runs:
            run.mark_stopped()

    def join_all(self, deadline: float) -> None:
        """Wait for the runs' threads until `deadline` (time.monotonic()), no longer."""
        for run in list(self.runs.values()):
            run.join(max(0.0, deadline - time.monotonic()))
