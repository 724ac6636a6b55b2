"""start_training / deploy_model / reconcile on the local AWS server (tests/support/local_stack.py).

The handlers run in this process against moto + the HealthOmics and SageMaker emulations over
HTTP, wired as template.yaml wires them. Read sets are really imported; training jobs, endpoints
and blue/green updates are the emulation's, with their background state changes, events and
subprocesses. Only the training script and the model it writes are stand-ins, so that a test
chooses how a job ends without hours of training:

- STAND_IN_TRAIN (the job's `train.py`, from TRAINING_SOURCE_URI) waits until the test decides
  the job's end (`end_job`), then prints the metric lines train.py prints (docs/contracts.md)
  and writes a model whose `code/serve.py` is STAND_IN_SERVE; or exits 1 (Failed); a Stopped job
  is stopped with StopTrainingJob.
- STAND_IN_SERVE answers the container contract (GET /ping, POST /invocations); a model ended
  with `broken_model=True` raises on every invocation (HTTP 500, as a model whose forward pass
  fails), so InvokeEndpoint errors.

The HealthOmics rate limiter runs at its default OMICS_TPS on a virtual clock
(tests/support/virtual_clock.py): spaced as in AWS, without the waiting.
"""

from __future__ import annotations

import copy
import json
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from hyenaflow.local import wait_for
from tests.support.archives import tar_gz
from tests.support.lambda_env import EVENTS, LambdaContext, fresh_lambda_module
from tests.support.local_stack import LocalStack, local_stack
from tests.support.virtual_clock import VirtualClock, rate_limiters_on, record_requests

ENDPOINT = "hyenaflow-test"
MODEL_PACKAGE_GROUP = "hyenaflow-models"
ROLLBACK_ALARMS = ["hyenaflow-endpoint-5xx", "hyenaflow-endpoint-latency"]
TRAINING_ENDED = ("Completed", "Failed", "Stopped")
ENDPOINT_BUSY = ("Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting")
JOB_ENDS_VARIABLE = "HYENAFLOW_TEST_JOB_ENDS"  # the folder where end_job writes a job's end

STAND_IN_TRAIN = textwrap.dedent(
    '''
    """Stand-in for training_job/train.py: same contract, ends as the test decides."""
    import json, os, shutil, sys, time
    from pathlib import Path

    decision = Path(os.environ["HYENAFLOW_TEST_JOB_ENDS"]) / (os.environ["TRAINING_JOB_NAME"] + ".json")
    print("[stand-in] waiting for the test to end the job", flush=True)
    while not decision.exists():
        time.sleep(0.05)
    end = json.loads(decision.read_text())
    if end["exit_code"]:
        print(end["error"], file=sys.stderr, flush=True)
        sys.exit(end["exit_code"])
    print("[train] step=1 loss=1.400000 perplexity=4.055200 tokens_per_s=100.0 lr=0.001000", flush=True)
    if end["eval_perplexity"] is not None:
        # The last eval is a little worse than the best one (as after a late uptick), so a gate
        # that read `[eval]` instead of `[best]` would decide on other figures.
        print(f"[eval] step=2 loss=1.300000 perplexity={end['eval_perplexity'] + 0.01:.6f}", flush=True)
        # the summary the quality gate reads (docs/contracts.md, "Training job log lines")
        best = f"[best] step=1 eval_perplexity={end['eval_perplexity']:.6f}"
        if end["baseline"] is not None:
            best += f" baseline_eval_perplexity={end['baseline']:.6f}"
        if end["seen"] is not None:
            best += " seen_baseline_eval_perplexity={:.6f} seen_eval_perplexity={:.6f}".format(*end["seen"])
        print(best, flush=True)
    model_dir = Path(os.environ["SM_MODEL_DIR"])
    (model_dir / "code").mkdir(parents=True, exist_ok=True)
    shutil.copy(Path(__file__).with_name("serve.py"), model_dir / "code" / "serve.py")
    (model_dir / "model.json").write_text(
        json.dumps({"trained_by": os.environ["TRAINING_JOB_NAME"], "broken": end["broken_model"]})
    )
    '''
)

STAND_IN_SERVE = textwrap.dedent(
    """
    import argparse, json, os
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    parser = argparse.ArgumentParser()
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    model = json.load(open(os.path.join(args.model_dir, "model.json")))

    class Handler(BaseHTTPRequestHandler):
        def reply(self, status, payload):
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            self.reply(200 if self.path == "/ping" else 404, {})

        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            if model["broken"]:
                self.reply(500, {"error": "RuntimeError: the model's forward pass returned NaN"})
            else:
                self.reply(200, {"model": model["trained_by"]})

        def log_message(self, *args):
            pass

    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()
    """
)


def pipeline_env(stack: LocalStack, model_package_group_arn: str) -> dict[str, str]:
    """The functions' variables as template.yaml sets them, with the local stack's resources; left
    out (so at their defaults): OMICS_TPS, QUALITY_GATE_MARGIN, FORGETTING_TOLERANCE."""
    return {
        "STATE_TABLE": stack.table,
        "ALERT_TOPIC_ARN": stack.topic_arn,
        "DATA_BUCKET": stack.bucket,
        "SEQUENCE_STORE_ID": stack.sequence_store_id,
        "SAGEMAKER_ROLE_ARN": "arn:aws:iam::123456789012:role/hyenaflow-sagemaker",
        "TRAINING_IMAGE_URI": "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch:2.13-cu133-amzn2023-sagemaker",
        "TRAINING_SOURCE_URI": f"s3://{stack.bucket}/code/training/sourcedir.tar.gz",
        "INFERENCE_IMAGE_URI": "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.6-cpu-py312",
        "ENDPOINT_NAME": ENDPOINT,
        "JOB_NAME_PREFIX": "hyenaflow",
        "MODEL_PACKAGE_GROUP": model_package_group_arn,
        "ROLLBACK_ALARM_NAMES": ",".join(ROLLBACK_ALARMS),
        "AWS_MAX_ATTEMPTS": "3",  # keeps the retries-exhausted test short
        "USE_SPOT": "true",
        "MAX_RUNTIME_SECONDS": "3600",
        # Blue/green: no bake unless a test asks for one (deploy_with_bake); no wait for the old fleet.
        "BAKE_SECONDS": "0",
        "TERMINATION_WAIT_SECONDS": "0",
        "POWERTOOLS_SERVICE_NAME": "hyenaflow",
        "POWERTOOLS_METRICS_NAMESPACE": "hyenaflow",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "AWS_REGION": stack.aws.region,
    }


@dataclass
class TrainingPipeline:
    """The local stack + the three handlers, and what the tests do to and read from it."""

    stack: LocalStack
    job_ends: Path
    clock: VirtualClock
    modules: dict[str, Any] = field(default_factory=dict)
    omics_requests: list[tuple[str, float]] = field(default_factory=list)  # (operation, virtual time)
    sagemaker_requests: list[tuple[str, float]] = field(default_factory=list)
    update_endpoint_requests: list[dict[str, Any]] = field(default_factory=list)  # as sent

    # -- HealthOmics -------------------------------------------------------------------------
    def import_reads(self, name: str, tags: dict[str, str] | None = None) -> str:
        """Import a few reads as read set `name` (tagged with `tags`, as ingest tags read sets);
        the import job's id, once it COMPLETED."""
        job_id = self.stack.import_fastq(name, tags=tags)
        assert self.stack.import_job(job_id)["status"] == "COMPLETED"
        return job_id

    def import_bad_reads(self, name: str) -> str:
        """Import a source HealthOmics refuses (not FASTQ); the job's id, once it FAILED."""
        job_id = self.stack.import_fastq(name, fastq=b"this is not FASTQ\n")
        assert self.stack.import_job(job_id)["status"] == "FAILED"
        return job_id

    def activation_jobs(self) -> list[str]:
        """The activation jobs started so far (HealthOmics has no list call for them: their events)."""
        events = self.stack.events("Read Set Activation Job Status Change")
        return list(dict.fromkeys(event["detail"]["id"] for event in events))

    def wait_for_activations(self) -> None:
        """Until every activation job started so far has ended."""
        ended = ("COMPLETED", "COMPLETED_WITH_FAILURES", "FAILED", "CANCELLED")
        omics = self.stack.client("omics")
        for job_id in self.activation_jobs():
            wait_for(
                lambda job_id=job_id: omics.get_read_set_activation_job(
                    id=job_id, sequenceStoreId=self.stack.sequence_store_id
                )["status"],
                f"activation job {job_id} to end",
                60,
                until=lambda status: status in ended,
            )

    # -- events --------------------------------------------------------------------------------
    def import_event(
        self, job_id: str, status: str = "COMPLETED", event_id: str | None = None
    ) -> dict[str, Any]:
        """The event the import job emitted on reaching `status`; `event_id`: a redelivery of it
        under another id (an archive replay, a second delivery)."""
        event = copy.deepcopy(self.stack.import_event(job_id, status))
        if event_id:
            event["id"] = event_id
        return event

    def early_import_event(self, job_id: str, status: str = "COMPLETED") -> dict[str, Any]:
        """An import event in AWS's shape that the job did not (yet) emit: early or stale."""
        event = json.loads((EVENTS / "omics_import_completed.json").read_text())
        store = self.stack.sequence_store_id
        arn = f"arn:aws:omics:{self.stack.aws.region}:{self.stack.aws.account_id}:sequenceStore/{store}/importJob/{job_id}"
        event.update({"account": self.stack.aws.account_id, "resources": [arn]})
        event["detail"].update({"arn": arn, "id": job_id, "sequenceStoreId": store, "status": status})
        return event

    def training_event(self, job_name: str, status: str | None = None) -> dict[str, Any]:
        """The job's last "SageMaker Training Job State Change" event (of `status`, if given)."""
        matching = [
            event
            for event in self.stack.events("SageMaker Training Job State Change", TrainingJobName=job_name)
            if status is None or event["detail"]["TrainingJobStatus"] == status
        ]
        return copy.deepcopy(matching[-1])

    def stale_training_event(self, job_name: str, status: str = "Completed") -> dict[str, Any]:
        """The job's latest event with `status` in place of its own: an event that says the job
        ended while DescribeTrainingJob does not (stale, misrouted or out of order)."""
        event = self.training_event(job_name)
        event["detail"]["TrainingJobStatus"] = status
        return event

    # -- invoking the handlers -------------------------------------------------------------------
    def start_training(self, event: dict[str, Any]) -> dict[str, Any]:
        return self.modules["start"].lambda_handler(copy.deepcopy(event), LambdaContext("start-training"))

    def deploy_model(self, event: dict[str, Any]) -> dict[str, Any]:
        return self.modules["deploy"].lambda_handler(copy.deepcopy(event), LambdaContext("deploy-model"))

    def reconcile(self) -> dict[str, Any]:
        event = json.loads((EVENTS / "schedule_reconcile.json").read_text())
        return self.modules["reconcile"].lambda_handler(event, LambdaContext("reconcile"))

    def reload(self, monkeypatch: pytest.MonkeyPatch, **variables: str) -> None:
        """Set function variables and reload the handlers (each reads its settings at import)."""
        for name, value in variables.items():
            monkeypatch.setenv(name, value)
        self.modules.update(_load_handlers())
        self._observe_clients()

    def drop_idempotency_records(self) -> int:
        """Delete Powertools' records: the state after their TTL (7 days), or after a crash between
        the side effect and the saved record, once its in-progress expiry has passed."""
        ddb = self.stack.client("dynamodb")
        dropped = 0
        for item in ddb.scan(TableName=self.stack.table)["Items"]:
            if item["pk"]["S"].startswith("idempotency#"):
                ddb.delete_item(TableName=self.stack.table, Key={"pk": item["pk"], "sk": item["sk"]})
                dropped += 1
        return dropped

    # -- SageMaker as the tests see it -----------------------------------------------------------
    def training_jobs(self) -> list[str]:
        summaries = self.stack.client("sagemaker").list_training_jobs(MaxResults=100)["TrainingJobSummaries"]
        return sorted(job["TrainingJobName"] for job in summaries)

    def describe_job(self, name: str) -> dict[str, Any]:
        return self.stack.client("sagemaker").describe_training_job(TrainingJobName=name)

    def end_job(
        self,
        name: str,
        status: str = "Completed",
        eval_perplexity: float | None = 3.5,
        broken_model: bool = False,
        baseline: float | None = None,
        seen: tuple[float, float] | None = None,
    ) -> dict[str, Any]:
        """End a running job as `status` (its script decides, or StopTrainingJob); once the
        emulation has it ended, DescribeTrainingJob. `baseline` is the starting model's figure (a
        warm start's step 0), `seen` (baseline, candidate) on the data it was trained on."""
        if status == "Stopped":
            self.stack.client("sagemaker").stop_training_job(TrainingJobName=name)
        else:
            end = {
                "exit_code": 0 if status == "Completed" else 1,
                "error": "ValueError: reads.fastq.gz line 3: bad base",
                "eval_perplexity": eval_perplexity,
                "broken_model": broken_model,
                "baseline": baseline,
                "seen": seen,
            }
            (self.job_ends / f"{name}.json").write_text(json.dumps(end))
        job = wait_for(
            lambda: self.describe_job(name),
            f"training job {name} to end",
            60,
            until=lambda job: job["TrainingJobStatus"] in TRAINING_ENDED,
        )
        assert job["TrainingJobStatus"] == status, job.get("FailureReason")
        return job

    def endpoint(self) -> dict[str, Any] | None:
        sagemaker = self.stack.client("sagemaker")
        try:
            return sagemaker.describe_endpoint(EndpointName=ENDPOINT)
        except sagemaker.exceptions.ClientError:
            return None

    def settled_endpoint(self) -> dict[str, Any]:
        """DescribeEndpoint once the endpoint is neither creating nor updating."""
        return wait_for(
            lambda: self.endpoint(),
            f"endpoint {ENDPOINT} to settle",
            120,
            until=lambda endpoint: endpoint is not None and endpoint["EndpointStatus"] not in ENDPOINT_BUSY,
        )

    def invoke(self) -> dict[str, Any]:
        """InvokeEndpoint; the answer, or the ModelError it raised as {"error": ...}."""
        runtime = self.stack.client("sagemaker-runtime")
        try:
            response = runtime.invoke_endpoint(
                EndpointName=ENDPOINT,
                ContentType="application/json",
                Body=json.dumps({"sequences": ["ACGT"]}),
            )
        except runtime.exceptions.ModelError as error:
            return {"error": error.response["Error"]["Message"]}
        return json.loads(response["Body"].read())

    def create_rollback_alarms(self) -> None:
        """The two endpoint alarms of template.yaml (EndpointErrorsAlarm, EndpointLatencyAlarm)."""
        cloudwatch = self.stack.client("cloudwatch")
        for name, metric in zip(ROLLBACK_ALARMS, ("Invocation5XXErrors", "ModelLatency"), strict=True):
            cloudwatch.put_metric_alarm(
                AlarmName=name,
                Namespace="AWS/SageMaker",
                MetricName=metric,
                Dimensions=[
                    {"Name": "EndpointName", "Value": ENDPOINT},
                    {"Name": "VariantName", "Value": "AllTraffic"},
                ],
                Statistic="Sum",
                Period=60,
                EvaluationPeriods=1,
                Threshold=1,
                ComparisonOperator="GreaterThanOrEqualToThreshold",
                TreatMissingData="notBreaching",
            )

    def model_packages(self) -> list[dict[str, Any]]:
        """The registry's packages of the group, oldest first, as DescribeModelPackage shows them."""
        sagemaker = self.stack.client("sagemaker")
        summaries = sagemaker.list_model_packages(
            ModelPackageGroupName=MODEL_PACKAGE_GROUP, SortBy="CreationTime", SortOrder="Ascending"
        )["ModelPackageSummaryList"]
        return [sagemaker.describe_model_package(ModelPackageName=s["ModelPackageArn"]) for s in summaries]

    # -- the state table ---------------------------------------------------------------------------
    def slot(self) -> dict[str, Any]:
        from pipeline.state_table import PipelineState

        return PipelineState(self.stack.client("dynamodb"), self.stack.table).slot().__dict__

    def job_record(self, name: str) -> dict[str, Any] | None:
        """The state table's record of a training job (lineage and gate decision)."""
        from pipeline.state_table import PipelineState

        return PipelineState(self.stack.client("dynamodb"), self.stack.table).training_job(name)

    def serving_model(self) -> dict[str, Any] | None:
        from pipeline.state_table import PipelineState

        return PipelineState(self.stack.client("dynamodb"), self.stack.table).serving_model()

    def _observe_clients(self) -> None:
        """Record the requests the handlers' (freshly made) omics and SageMaker clients send."""
        from pipeline import aws_clients

        self.omics_requests = record_requests(aws_clients.client("omics"), self.clock)
        self.sagemaker_requests = record_requests(aws_clients.client("sagemaker"), self.clock)
        self.update_endpoint_requests = []
        aws_clients.client("sagemaker").meta.events.register(
            "before-send.sagemaker.UpdateEndpoint",
            lambda request, **_: self.update_endpoint_requests.append(json.loads(request.body)),
        )


def _load_handlers() -> dict[str, Any]:
    return {
        "start": fresh_lambda_module("start_training.handler"),
        "deploy": fresh_lambda_module("deploy_model.handler"),
        "reconcile": fresh_lambda_module("reconcile.handler"),
    }


@pytest.fixture(name="pipeline")
def pipeline_fixture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TrainingPipeline]:
    job_ends = tmp_path / "job-ends"
    job_ends.mkdir()
    with local_stack(tmp_path / "aws") as stack:
        monkeypatch.setenv(JOB_ENDS_VARIABLE, str(job_ends))  # training scripts inherit it
        stack.client("s3").put_object(
            Bucket=stack.bucket,
            Key="code/training/sourcedir.tar.gz",
            Body=tar_gz({"train.py": STAND_IN_TRAIN, "serve.py": STAND_IN_SERVE}),
        )
        clock = VirtualClock()
        rate_limiters_on(clock, monkeypatch)
        harness = TrainingPipeline(stack=stack, job_ends=job_ends, clock=clock)
        group_arn = stack.client("sagemaker").create_model_package_group(
            ModelPackageGroupName=MODEL_PACKAGE_GROUP
        )["ModelPackageGroupArn"]
        harness.reload(monkeypatch, **pipeline_env(stack, group_arn))
        yield harness
