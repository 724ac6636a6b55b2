"""The local stack: the whole pipeline on one machine, without AWS.

Two layers, each usable on its own:

- `start_aws_server()` (aws_server.py) -> `AwsServer`: one moto server for every AWS service the
  pipeline uses, plus what moto lacks: HealthOmics sequence stores (`omics/`, laid out as a moto
  service) and SageMaker training jobs, endpoints and InvokeEndpoint run as local processes,
  and the model registry where moto's falls short (`sagemaker/`, one module per resource).
- `LocalPipeline` (pipeline.py): template.yaml deployed onto that server: its resources
  (`template.py` resolves the intrinsics), its EventBridge rules routing events to the functions
  (`event_routing.py`, `event_patterns.py`, `s3_events.py`) and its Lambda handlers run in this
  process (`lambda_runtime.py`). `hyenaflow local up` and `hyenaflow demo` (demo.py) build on it.

API of the AWS server (the CLI, `make demo` and the tests build on it)::

    from hyenaflow.local import start_aws_server

    with start_aws_server(workdir=Path(".local"), port=0) as aws:   # -> AwsServer
        aws.endpoint_url        # "http://127.0.0.1:<port>" - one endpoint for every service
        aws.region              # "us-east-1"
        aws.account_id          # "123456789012" (moto's default account)
        aws.env()               # AWS_ENDPOINT_URL, AWS_DEFAULT_REGION, test credentials,
                                # AWS_DISABLE_HOST_PREFIX_INJECTION=true (for HealthOmics calls);
                                # what `hyenaflow local up` prints as export lines
        aws.client("omics")     # boto3 client for this endpoint, inject_host_prefix=False
        aws.events.history      # every aws.omics / aws.sagemaker event emitted, in order
                                # (full EventBridge envelopes)
    # leaving the block (or aws.stop()) stops the server, then ends every training/endpoint
    # subprocess at once (SIGTERM, SIGKILL after STOP_GRACE_S: sagemaker/processes.py)

`start_aws_server(workdir, port=0, host="127.0.0.1", region="us-east-1")`: `workdir` receives
training-job and endpoint work dirs and logs (`workdir/sagemaker/training/<job>/training.log`,
`workdir/sagemaker/endpoints/<name>/...`). Endpoints whose model has no `code/serve.py` run the
repository's `endpoint/serve.py`; training jobs without a `sagemaker_submit_directory`
hyperparameter run `training_job/`. moto's state is process-global: each call resets it, one
AwsServer per process at a time.

Events emitted (moto `put_events` on the default bus, so rules with SQS / log group / archive /
event bus targets receive them; moto 5.2.5 raises NotImplementedError for Lambda targets, so
route rules to SQS queues and run the Lambda from there):
- aws.omics "Read Set Import Job Status Change": detail {omicsVersion, arn, sequenceStoreId, id,
  status[, statusMessage]} on IN_PROGRESS and on the end state; "Read Set Activation Job Status
  Change" likewise.
- aws.sagemaker "SageMaker Training Job State Change": detail = DescribeTrainingJob with epoch-ms
  timestamps, on every TrainingJobStatus change (InProgress, Stopping, Completed/Failed/Stopped).
- aws.sagemaker "SageMaker Endpoint State Change": {EndpointName, EndpointArn,
  EndpointConfigName, EndpointStatus, ...} when an endpoint settles or starts updating.

Waiting: `wait_for(probe, what, timeout_s, until=...)` (polling.py) polls with a deadline (import
jobs, training jobs and endpoints all change state in the background, as on AWS).

Test/demo hooks, for what a real account does on its own:
- `hyenaflow.local.omics.archive_read_sets(store_id, [read_set_ids])` archives read sets as
  HealthOmics does after 30 days unread;
- `aws.inject_throttling(service, operation, times)` answers the next calls of a HealthOmics or
  SageMaker operation with ThrottlingException, as a busy account does (throttling.py);
- `aws.hold_endpoint_updates()` / `aws.release_endpoint_updates()` keep UpdateEndpoints at
  Updating (the old config serving) until released: a blue/green update in flight;
- `aws.interrupt_spot_training(job_name)` reclaims a managed spot job's instance: the job restarts
  from the checkpoints synced to its CheckpointConfig.S3Uri (sagemaker/training_run.py).
Alarm-driven rollback of a blue/green UpdateEndpoint reads the alarms' states from moto's
CloudWatch, which evaluates no metric: `cloudwatch.set_alarm_state(...)` trips one
(sagemaker/endpoints.py).
"""

from hyenaflow.local.aws_server import AwsServer, start_aws_server
from hyenaflow.local.polling import wait_for

__all__ = ["AwsServer", "start_aws_server", "wait_for"]
