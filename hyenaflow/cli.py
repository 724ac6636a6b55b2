"""The `hyenaflow` command line.

    hyenaflow demo [--train-steps N] [--no-second-file]   the whole flow on the local stack
    hyenaflow local up [--port 4566]                      run the local stack until Ctrl-C
    hyenaflow fire-schedule ReconcileFunction             fire a template schedule on `local up`
    hyenaflow invoke --endpoint-name hyenaflow --task score --sequence ACGT... [--endpoint-url URL]
    hyenaflow models [--model-package-group hyenaflow-models] [--endpoint-name hyenaflow]
    hyenaflow upload-training-code [--bucket B | --stack-name S]   after `sam deploy`
    hyenaflow package-training-code --out sourcedir.tar.gz
    hyenaflow deploy-parameters [--region R] [--parameter-overrides "K=V ..."]   (make deploy)
    hyenaflow train (--read-set ID ... | --s3-uri s3://...) [--stack-name S] [--wait]

Heavy imports (moto, torch via the demo, the sagemaker SDK) happen inside the commands, so
`hyenaflow --help` and `hyenaflow invoke` start fast, and the commands `make deploy` runs
(deploy-parameters, upload-training-code) need no torch (.venv-deploy).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shlex
import signal
import sys
import threading
from pathlib import Path
from typing import Any

DEFAULT_WORKDIR = Path(".hyenaflow")  # git-ignored
STACK_STATE_FILE = "stack.json"
# The last line `local up` prints once the stack is ready (tests wait for it).
READY_LINE = "# waiting for files and events; Ctrl-C stops the stack"
EXAMPLE_GENOME = "data/lambda_phage_NC_001416.fa"
EXAMPLE_SEQUENCE = "ACGTTGCAGGCTAGCTAGGATCCA"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hyenaflow", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    demo = commands.add_parser("demo", help="run the whole flow on a real phage genome, locally")
    demo.add_argument(
        "--train-steps", type=int, default=None, help="training steps per job (default: demo budget)"
    )
    demo.add_argument(
        "--second-file",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="after the first model: a second genome whose model beats it (the endpoint is updated), "
        "then a job that cannot win (refused; the endpoint keeps serving) (default: on)",
    )
    demo.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR / "demo", help="logs, models, plots")
    demo.set_defaults(run=_cmd_demo)

    local = commands.add_parser("local", help="the local stack").add_subparsers(
        required=True, metavar="ACTION"
    )
    up = local.add_parser("up", help="run the local stack in the foreground (Ctrl-C stops it)")
    up.add_argument("--port", type=int, default=4566)
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR / "local")
    up.add_argument("--train-steps", type=int, default=None)
    up.add_argument(
        "--schedule",
        action="append",
        default=[],
        metavar="FUNCTION=SECONDS",
        help="fire FUNCTION's template schedule every SECONDS (a shortened clock; default: on request only)",
    )
    up.add_argument("--template", type=Path, default=None, help="template.yaml (default: the repository's)")
    up.set_defaults(run=_cmd_local_up)

    fire = commands.add_parser(
        "fire-schedule", help="fire a function's template schedule on a running `local up`"
    )
    fire.add_argument("name", help="function logical id (PollGenbankFunction) or local function name")
    fire.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR / "local")
    fire.set_defaults(run=_cmd_fire_schedule)

    invoke = commands.add_parser("invoke", help="send a request to an endpoint (AWS or the local stack)")
    invoke.add_argument("--endpoint-name", required=True)
    invoke.add_argument("--task", required=True, choices=["score", "embed", "variant_effect", "generate"])
    invoke.add_argument("--sequence", action="append", required=True, help="DNA string (repeat for several)")
    invoke.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="further request fields (JSON values)",
    )
    invoke.add_argument("--endpoint-url", default=os.environ.get("AWS_ENDPOINT_URL"), help="local stack URL")
    invoke.add_argument("--region", default=None)
    invoke.set_defaults(run=_cmd_invoke)

    models = commands.add_parser(
        "models", help="the model registry's history: each job's figures, the gate's decision, what serves"
    )
    models.add_argument(
        "--model-package-group",
        default="hyenaflow-models",
        help="model package group (the stack's ModelPackageGroupName output; default: hyenaflow-models)",
    )
    models.add_argument("--endpoint-name", default="hyenaflow", help="the endpoint deploy_model updates")
    models.add_argument("--endpoint-url", default=os.environ.get("AWS_ENDPOINT_URL"), help="local stack URL")
    models.add_argument("--region", default=None)
    models.set_defaults(run=_cmd_models)

    upload = commands.add_parser("upload-training-code", help="upload the training bundle to the data bucket")
    upload.add_argument("--bucket", default=None, help="data bucket (default: from the stack's outputs)")
    upload.add_argument("--stack-name", default=None, help="CloudFormation stack (default: samconfig.toml's)")
    upload.add_argument("--key", default="code/training/sourcedir.tar.gz")
    upload.add_argument("--region", default=None)
    upload.set_defaults(run=_cmd_upload_training_code)

    package = commands.add_parser("package-training-code", help="build the training source bundle tarball")
    package.add_argument("--out", type=Path, required=True)
    package.set_defaults(run=_cmd_package_training_code)

    parameters = commands.add_parser(
        "deploy-parameters",
        help="template parameters for `sam deploy` with the Region's container images (make deploy)",
    )
    parameters.add_argument("--region", default=None, help="deploy Region (default: samconfig.toml's)")
    parameters.add_argument(
        "--parameter-overrides",
        default="",
        metavar='"K=V ..."',
        help="parameters that win over samconfig.toml's",
    )
    parameters.add_argument("--template", type=Path, default=Path("template.yaml"))
    parameters.add_argument("--samconfig", type=Path, default=Path("samconfig.toml"))
    parameters.add_argument("--out", type=Path, default=Path(".aws-sam/deploy-parameters.yaml"))
    parameters.set_defaults(run=_cmd_deploy_parameters)

    train = commands.add_parser(
        "train",
        help="start one SageMaker training job with the sagemaker SDK (ModelTrainer), as start_training would",
    )
    data = train.add_mutually_exclusive_group(required=True)
    data.add_argument(
        "--read-set", action="append", dest="read_sets", metavar="ID", help="read set id (repeat)"
    )
    data.add_argument("--s3-uri", help="an S3 prefix with FASTA/FASTQ files")
    train.add_argument("--stack-name", default=None, help="CloudFormation stack (default: samconfig.toml's)")
    train.add_argument("--region", default=None)
    train.add_argument(
        "--from-scratch",
        action="store_true",
        help="no warm start from the serving model (start_training warm-starts)",
    )
    train.add_argument("--wait", action="store_true", help="wait for the job and stream its logs")
    train.set_defaults(run=_cmd_train)
    return parser


# --- demo / local stack ------------------------------------------------------------------------


def _cmd_demo(args: argparse.Namespace) -> int:
    from hyenaflow.local.demo import run_demo

    result = run_demo(workdir=args.workdir, train_steps=args.train_steps, second_file=args.second_file)
    return 0 if result.ok else 1


def _cmd_local_up(args: argparse.Namespace) -> int:
    from hyenaflow.local.pipeline import REPO_ROOT, LocalPipeline, PipelineConfig, local_environment_overrides

    extra = {"MAX_STEPS": str(args.train_steps)} if args.train_steps else {}
    schedule_every_s = {}
    for item in args.schedule:
        name, _, seconds = item.partition("=")
        schedule_every_s[name] = float(seconds)
    config = PipelineConfig(
        workdir=args.workdir,
        template_path=args.template or REPO_ROOT / "template.yaml",
        host=args.host,
        port=args.port,
        environment_overrides=local_environment_overrides(extra),
        on_invocation=_print_invocation,
        schedule_every_s=schedule_every_s,
    )
    stopped = threading.Event()
    # While starting, Ctrl-C and SIGTERM abort the start (LocalPipeline.start cleans up). Once up,
    # they only set a flag, so that the stop always runs whole, from the main loop, however often
    # the user presses Ctrl-C; it ends within about 2 s (AwsServer.stop).
    _on_stop_signals(_interrupt)
    with LocalPipeline(config) as pipeline:
        _on_stop_signals(lambda *_: stopped.set())
        state_file = write_stack_state(pipeline)
        print("\n".join(local_up_instructions(pipeline)), flush=True)
        reported = 0
        while not stopped.wait(1.0):
            errors = pipeline.delivery_errors()
            for error in errors[reported:]:
                print(f"delivery error: {error}", file=sys.stderr)
            reported = len(errors)
        print("stopping the local stack ...", flush=True)
        state_file.unlink(missing_ok=True)
    # Stopped. What is left is memory for the OS to take back, but the interpreter's last garbage
    # collections over moto's and botocore's objects take 1-2 s on a busy machine: exempt them.
    gc.freeze()
    return 0


def _on_stop_signals(handler: Any) -> None:
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, handler)


def _interrupt(*_: Any) -> None:
    raise KeyboardInterrupt


def local_up_instructions(stack: Any) -> list[str]:
    """What `hyenaflow local up` prints: the `export` lines that point the AWS CLI, boto3 and
    `hyenaflow invoke` at the stack (its env(), nothing else), then the commands that drop a genome
    and follow it to the endpoint, with this stack's bucket, sequence store and endpoint names."""
    endpoint = stack.parameters.get("EndpointName", "hyenaflow")
    body = json.dumps({"task": "score", "sequences": [EXAMPLE_SEQUENCE]}, separators=(",", ":"))
    lines = [
        f"hyenaflow local stack up at {stack.endpoint_url}",
        "",
        "# point the AWS CLI (>= 1.38.5), boto3 (>= 1.37.5) and hyenaflow invoke at it:",
        *(f"export {name}={shlex.quote(value)}" for name, value in stack.env().items()),
        "",
        "# drop a genome, then follow it: read set, training job, endpoint, an answer",
        f"aws s3 cp {EXAMPLE_GENOME} s3://{stack.data_bucket}/incoming/",
        f"aws omics list-read-sets --sequence-store-id {stack.sequence_store_id}",
        "aws sagemaker list-training-jobs",
        f"aws sagemaker describe-endpoint --endpoint-name {endpoint}",
        f"aws sagemaker-runtime invoke-endpoint --endpoint-name {endpoint} --content-type application/json"
        f" --body {shlex.quote(body)} answer.json   # AWS CLI v2: add --cli-binary-format raw-in-base64-out",
        f"hyenaflow invoke --endpoint-name {endpoint} --task score --sequence {EXAMPLE_SEQUENCE}",
        f"hyenaflow models --model-package-group {stack.model_package_group} --endpoint-name {endpoint}",
        "",
    ]
    schedules = sorted({r.function_logical_id for r in stack.router.routes if r.schedule})
    if schedules:
        lines.append(
            f"# fire a schedule: hyenaflow fire-schedule {schedules[0]}   (schedules: {', '.join(schedules)})"
        )
    lines += [
        f"# Lambda logs: {stack.runtime.log_dir}/   SageMaker logs: {stack.workdir / 'aws' / 'sagemaker'}/",
        READY_LINE,
    ]
    return lines


def _print_invocation(function: Any, event: Any, result: Any) -> None:
    status = "ok" if result.ok else f"ERROR {result.error['errorType']}: {result.error['errorMessage']}"
    print(f"[lambda] {function.logical_id} {status} ({result.duration_ms:.0f} ms)", flush=True)


def write_stack_state(stack: Any) -> Path:
    """Write <workdir>/stack.json: what `fire-schedule` (another process) needs to reach the stack."""
    state = {
        "endpoint_url": stack.endpoint_url,
        "region": stack.config.region,
        "functions": {f.logical_id: f.name for f in stack.functions.values()},
        "queue_urls": stack.router.queue_urls,
        "schedules": [
            {
                "function": r.function_logical_id,
                "name": r.name,
                "kind": r.kind,
                "schedule": r.schedule,
                "input": r.input,
            }
            for r in stack.router.routes
            if r.schedule
        ],
    }
    path = stack.workdir / STACK_STATE_FILE
    path.write_text(json.dumps(state, indent=2))
    return path


def _cmd_fire_schedule(args: argparse.Namespace) -> int:
    import boto3

    from hyenaflow.local.event_routing import EventRoute, schedule_attributes, scheduled_event

    state_file = args.workdir / STACK_STATE_FILE
    if not state_file.exists():
        print(
            f"{state_file}: no running local stack found; start one with `hyenaflow local up`",
            file=sys.stderr,
        )
        return 2
    state = json.loads(state_file.read_text())
    logical_id = next(
        (lid for lid, name in state["functions"].items() if args.name in (lid, name)),
        None,
    )
    schedules = [s for s in state["schedules"] if s["function"] == logical_id]
    if not schedules:
        known = sorted({s["function"] for s in state["schedules"]})
        print(
            f"{args.name}: no schedule in template.yaml for this function (functions with one: {known})",
            file=sys.stderr,
        )
        return 2
    spec = schedules[0]
    route = EventRoute(
        name=spec["name"],
        function_logical_id=logical_id,
        schedule=spec["schedule"],
        input=spec["input"],
        kind=spec["kind"],
    )
    event = scheduled_event(route, state["region"])
    sqs = boto3.client(
        "sqs",
        endpoint_url=state["endpoint_url"],
        region_name=state["region"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    sqs.send_message(
        QueueUrl=state["queue_urls"][logical_id],
        MessageBody=json.dumps(event),
        MessageAttributes=schedule_attributes(route),
    )
    print(f"fired {spec['name']} ({spec['schedule']}) -> {logical_id}")
    return 0


# --- endpoint ----------------------------------------------------------------------------------


def _cmd_invoke(args: argparse.Namespace) -> int:
    import boto3
    from botocore.exceptions import ClientError

    from hyenaflow.client import EndpointError, invoke

    payload: dict[str, Any] = {"task": args.task, "sequences": args.sequence}
    for item in args.param:
        key, separator, value = item.partition("=")
        if not separator:
            print(f"--param {item!r}: expected KEY=VALUE", file=sys.stderr)
            return 2
        try:
            payload[key] = json.loads(value)
        except json.JSONDecodeError:
            payload[key] = value
    kwargs: dict[str, Any] = {"region_name": args.region} if args.region else {}
    if args.endpoint_url:
        kwargs["endpoint_url"] = args.endpoint_url
    runtime = boto3.client("sagemaker-runtime", **kwargs)
    try:
        answer = invoke(payload, endpoint_name=args.endpoint_name, runtime_client=runtime)
    except EndpointError as error:
        print(f"{args.endpoint_name}: {error}", file=sys.stderr)
        return 1
    except ClientError as error:
        print(f"{args.endpoint_name}: {error}", file=sys.stderr)
        return 1
    print(json.dumps(answer, indent=2))
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    import boto3
    from botocore.exceptions import ClientError

    from hyenaflow.model_history import format_model_history, model_history

    kwargs: dict[str, Any] = {"region_name": args.region} if args.region else {}
    if args.endpoint_url:
        kwargs["endpoint_url"] = args.endpoint_url
    sagemaker = boto3.client("sagemaker", **kwargs)
    try:
        versions = model_history(sagemaker, args.model_package_group, args.endpoint_name)
    except ClientError as error:
        print(f"model package group {args.model_package_group}: {error}", file=sys.stderr)
        return 1
    print("\n".join(format_model_history(versions, args.model_package_group, args.endpoint_name)))
    return 0


# --- training code bundle ------------------------------------------------------------------------


def _cmd_package_training_code(args: argparse.Namespace) -> int:
    from hyenaflow.packaging import build_training_bundle

    args.out.parent.mkdir(parents=True, exist_ok=True)
    digest = build_training_bundle(args.out)
    print(f"wrote {args.out} (sha256 {digest})")
    return 0


def _deployed_stack(args: argparse.Namespace) -> tuple[Any, str]:
    """A boto3 session in the stack's Region and the stack's name: the arguments, else what
    `sam deploy --guided` saved in samconfig.toml, else "hyenaflow"."""
    import boto3

    from hyenaflow.deploy_parameters import samconfig_deploy_parameters

    deploy_config = samconfig_deploy_parameters()
    session = boto3.session.Session(region_name=args.region or deploy_config.get("region"))
    return session, args.stack_name or deploy_config.get("stack_name", "hyenaflow")


def _cmd_upload_training_code(args: argparse.Namespace) -> int:
    import tempfile

    from hyenaflow.packaging import build_training_bundle

    session, stack_name = _deployed_stack(args)
    bucket = args.bucket or _data_bucket_from_stack(session, stack_name)
    with tempfile.TemporaryDirectory() as scratch:
        bundle = Path(scratch) / "sourcedir.tar.gz"
        build_training_bundle(bundle)
        session.client("s3").upload_file(str(bundle), bucket, args.key)
    print(f"uploaded the training code to s3://{bucket}/{args.key}")
    return 0


def _data_bucket_from_stack(session: Any, stack_name: str) -> str:
    stacks = session.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    for key in ("DataBucketName", "DataBucket"):
        if key in outputs:
            return outputs[key]
    buckets = [value for key, value in outputs.items() if "Bucket" in key]
    if len(buckets) == 1:
        return buckets[0]
    raise SystemExit(
        f"stack {stack_name}: cannot tell the data bucket from its outputs {sorted(outputs)}; pass --bucket"
    )


# --- deploying and training on AWS ---------------------------------------------------------------


def _cmd_deploy_parameters(args: argparse.Namespace) -> int:
    import boto3

    from hyenaflow.deploy_parameters import (
        deploy_parameters,
        parse_parameter_overrides,
        samconfig_deploy_parameters,
        template_parameter_defaults,
        write_parameter_file,
    )

    saved = samconfig_deploy_parameters(args.samconfig)
    region = args.region or saved.get("region") or boto3.session.Session().region_name
    if not region:
        print("no Region: pass --region or set region in samconfig.toml / AWS_REGION", file=sys.stderr)
        return 2
    parameters, warnings = deploy_parameters(
        region=region,
        saved=parse_parameter_overrides(saved.get("parameter_overrides")),
        overrides=parse_parameter_overrides(args.parameter_overrides),
        defaults=template_parameter_defaults(args.template),
    )
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    write_parameter_file(parameters, args.out)
    print(f"TrainingImageUri={parameters['TrainingImageUri']}")
    print(f"InferenceImageUri={parameters['InferenceImageUri']}")
    print(f"wrote {len(parameters)} parameters for {region} to {args.out}")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from botocore.exceptions import ClientError

    from hyenaflow.manual_training import deployed_training_settings, start_manual_training

    session, stack_name = _deployed_stack(args)
    try:
        settings = deployed_training_settings(session, stack_name)
    except ClientError as error:
        print(f"stack {stack_name}: cannot read start_training's settings: {error}", file=sys.stderr)
        return 1
    job_name = start_manual_training(
        session,
        settings,
        read_set_ids=args.read_sets,
        s3_uri=args.s3_uri,
        warm_start=not args.from_scratch,
        wait=args.wait,
    )
    print(f"started training job {job_name}; deploy_model gates and deploys it when it ends")
    return 0


if __name__ == "__main__":
    sys.exit(main())
