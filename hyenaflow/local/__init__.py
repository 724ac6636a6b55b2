"""The local stack: one moto server with HealthOmics emulation and SageMaker gap-fill.

API (stable; the CLI, `make demo` and the e2e tests build on it)::

    from hyenaflow.local import start_local_server

    with start_local_server(workdir=Path(".local"), port=0) as aws:   # -> LocalAws
        aws.endpoint_url        # "http://127.0.0.1:<port>" - one endpoint for every service
        aws.region              # "us-east-1"
        aws.account_id          # "123456789012" (moto's default account)
        aws.env()               # AWS_ENDPOINT_URL, AWS_DEFAULT_REGION, test credentials
        aws.client("omics")     # boto3 client for this endpoint, inject_host_prefix=False
        aws.subscribe(fn)       # fn(event) for every aws.omics / aws.sagemaker event emitted
        aws.events.history      # those events, in order (full EventBridge envelopes)
    # leaving the block (or aws.stop()) kills training/endpoint subprocesses, stops the server

`start_local_server(workdir, port=0, host="127.0.0.1", region="us-east-1", serve_script=None,
training_code_dir=None)`: `workdir` receives training-job and endpoint work dirs and logs
(`workdir/sagemaker/training/<job>/training.log`, `workdir/sagemaker/endpoints/<name>/...`).
`serve_script` is the inference server run for endpoints whose model has no `code/serve.py`
(default: the repository's `endpoint/serve.py`); `training_code_dir` is the code run for
training jobs without a `sagemaker_submit_directory` hyperparameter (default: `training_job/`).
moto's state is process-global: each call resets it, one LocalAws per process at a time.

Services: S3, EventBridge, SageMaker (+ sagemaker-runtime InvokeEndpoint), DynamoDB, SNS, SQS,
SSM and everything else moto serves, plus HealthOmics sequence stores (`omics.py`).

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

Training jobs (sagemaker_training.py): code from the `sagemaker_submit_directory` tarball
(a hyenaflow.packaging bundle) else `training_code_dir`; channels S3Prefix only (the sequence
store's access-point s3Uri works: the alias is a moto bucket); CheckpointConfig.S3Uri synced
in before and out after the run. Endpoints (sagemaker_endpoints.py): the model's ModelDataUrl is
unpacked and served by its `code/serve.py` if present, else `serve_script`; the server must
answer GET /ping within HYENAFLOW_ENDPOINT_STARTUP_TIMEOUT_S (300).

Waiting: `wait_for(probe, until, timeout_s, what)` polls with a deadline (import jobs,
training jobs and endpoints all change state in the background, as on AWS).

Standalone: `hyenaflow.local.moto_server.main(["--port", "4566"])` serves until Ctrl-C/SIGTERM
(a candidate for a `hyenaflow local-aws` CLI command).

Test/demo hooks: `hyenaflow.local.omics.archive_read_sets(store_id, [read_set_ids])` archives
read sets as HealthOmics does after 30 days unread.
"""

from hyenaflow.local.moto_server import LocalAws, start_local_server, wait_for

__all__ = ["LocalAws", "start_local_server", "wait_for"]
