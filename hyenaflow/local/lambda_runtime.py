"""Runs the template's Lambda handlers in this process, with Lambda's semantics.

The same code that runs in AWS runs here: `functions/` (the template's `CodeUri`) is put on
`sys.path` as Lambda's `/var/task`, the handler is imported by its `Handler` string, and it is
called with the event and a `LambdaContext` look-alike while the process environment holds the
function's variables (template `Globals` + function `Environment`, Refs resolved to the local
resources, plus the variables Lambda itself sets).

Asynchronous invocation (what EventBridge and schedules do) follows Lambda's rules: an error is
retried twice (`MaximumRetryAttempts`, default 2, from `EventInvokeConfig`), then the event goes
to the function's on-failure destination (`EventInvokeConfig.DestinationConfig.OnFailure`, an
invocation record) or dead-letter queue (`DeadLetterQueue`, the bare event), whichever the
template sets. Retries come after a short local delay instead of Lambda's 1 and 2 minutes.

Handlers of different functions share one interpreter here, so invocations run one at a time
(the environment is process-wide) and each function's stdout (Powertools logs, EMF metrics)
goes to its own log file instead of the terminal. One at a time honours any reserved concurrency
(`ReservedConcurrentExecutions`, read into `LambdaFunction.reserved_concurrency`) of 1 or more;
a function that reserves 0 is throttled, as in Lambda: its events wait in its invoke queue.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import sys
import threading
import time
import traceback
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO

from hyenaflow.local.account import ACCOUNT_ID
from hyenaflow.local.event_routing import SCHEDULE_ATTRIBUTE, as_delivered_event
from hyenaflow.local.template import IntrinsicResolver, resource_enabled

DEFAULT_RETRY_DELAYS_S = (0.5, 1.0)  # Lambda: about 1 and 2 minutes


@dataclass
class LambdaFunction:
    """One function of the template, resolved to local values."""

    logical_id: str
    name: str
    handler: str
    code_dir: Path
    environment: dict[str, str]
    timeout_s: int = 3
    memory_mb: int = 128
    maximum_retry_attempts: int = 2
    on_failure_arn: str | None = None  # EventInvokeConfig OnFailure destination (SQS/SNS)
    dead_letter_arn: str | None = None  # DeadLetterQueue target (SQS/SNS)
    region: str = "us-east-1"
    reserved_concurrency: int | None = None  # ReservedConcurrentExecutions; None: the account's pool
    runtime: str = "python3.12"  # the template's Runtime; handlers run on this process's Python

    @property
    def arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{ACCOUNT_ID}:function:{self.name}"


def functions_from_template(
    template: Mapping[str, Any],
    resolver: IntrinsicResolver,
    template_dir: Path,
    region: str,
    stack_name: str,
) -> dict[str, LambdaFunction]:
    """Every `AWS::Serverless::Function` of the template, keyed by logical id."""
    globals_ = resolver.resolve(template.get("Globals", {}).get("Function", {}))
    functions: dict[str, LambdaFunction] = {}
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function" or not resource_enabled(resource, resolver):
            continue
        raw_properties = {k: v for k, v in resource.get("Properties", {}).items() if k != "Events"}
        properties = resolver.resolve(raw_properties)
        variables = {
            **globals_.get("Environment", {}).get("Variables", {}),
            **properties.get("Environment", {}).get("Variables", {}),
        }
        invoke_config = {**globals_.get("EventInvokeConfig", {}), **properties.get("EventInvokeConfig", {})}
        on_failure = invoke_config.get("DestinationConfig", {}).get("OnFailure", {})
        dead_letter = properties.get("DeadLetterQueue") or globals_.get("DeadLetterQueue") or {}
        code_uri = properties.get("CodeUri", globals_.get("CodeUri", "."))
        reserved = properties.get(
            "ReservedConcurrentExecutions", globals_.get("ReservedConcurrentExecutions")
        )
        functions[logical_id] = LambdaFunction(
            logical_id=logical_id,
            name=properties.get("FunctionName") or f"{stack_name}-{logical_id}",
            handler=properties.get("Handler", globals_.get("Handler")),
            code_dir=(template_dir / code_uri).resolve(),
            environment={key: _env_text(value) for key, value in variables.items()},
            timeout_s=int(properties.get("Timeout", globals_.get("Timeout", 3))),
            memory_mb=int(properties.get("MemorySize", globals_.get("MemorySize", 128))),
            maximum_retry_attempts=int(invoke_config.get("MaximumRetryAttempts", 2)),
            on_failure_arn=on_failure.get("Destination"),
            dead_letter_arn=dead_letter.get("TargetArn"),
            region=region,
            reserved_concurrency=None if reserved is None else int(reserved),
            runtime=properties.get("Runtime", globals_.get("Runtime", LambdaFunction.runtime)),
        )
    return functions


def _env_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return (
        value
        if isinstance(value, str)
        else json.dumps(value)
        if isinstance(value, list | dict)
        else str(value)
    )


class LambdaContext:
    """The context object handlers receive (the attributes of Lambda's Python runtime)."""

    def __init__(self, function: LambdaFunction, request_id: str) -> None:
        self.function_name = function.name
        self.function_version = "$LATEST"
        self.invoked_function_arn = function.arn
        self.memory_limit_in_mb = function.memory_mb
        self.aws_request_id = request_id
        self.log_group_name = f"/aws/lambda/{function.name}"
        self.log_stream_name = f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
        self.identity = None
        self.client_context = None
        self._deadline = time.monotonic() + function.timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class _ThreadRoutedStdout(io.TextIOBase):
    """sys.stdout replacement: writes from a thread that is running a handler go to that
    function's log file, everything else to the real stdout. Powertools' Logger binds
    `sys.stdout` when it is created, so a process-wide redirect would capture the demo's own
    output too."""

    def __init__(self, real: TextIO) -> None:
        self.real = real
        self.local = threading.local()

    def _target(self) -> TextIO:
        return getattr(self.local, "target", None) or self.real

    def write(self, text: str) -> int:
        return self._target().write(text)

    def flush(self) -> None:
        self._target().flush()

    def isatty(self) -> bool:
        return self.real.isatty()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.real, "encoding", "utf-8")


@dataclass
class InvocationResult:
    request_id: str
    ok: bool
    response: Any = None
    error: dict[str, Any] | None = None
    duration_ms: float = 0.0


@dataclass
class _PendingRetry:
    function: LambdaFunction
    event: Any
    request_id: str
    attempts: int
    due: float
    errors: list[dict[str, Any]] = field(default_factory=list)


def _module_locations(module: object) -> list[str]:
    """Where a loaded module lives, read from its import spec. Not from `__file__`/`__path__`:
    some modules answer any attribute through `__getattr__` (torch._classes returns a
    namespace object for `__path__`), which broke a scan of sys.modules."""
    spec = getattr(module, "__spec__", None)
    if not isinstance(spec, ModuleSpec):
        return []
    locations = [spec.origin] if isinstance(spec.origin, str) else []
    locations += [str(path) for path in (spec.submodule_search_locations or [])]
    return locations


class LambdaRuntime:
    """Invokes template functions in-process; `deliver_pending()` drains their invoke queues."""

    def __init__(
        self,
        functions: Mapping[str, LambdaFunction],
        base_environment: Mapping[str, str],
        sqs_client: Any,
        sns_client: Any,
        log_dir: Path,
        queue_urls: Mapping[str, str] | None = None,
        retry_delays_s: tuple[float, ...] = DEFAULT_RETRY_DELAYS_S,
        on_invocation: Any = None,
        accept: Callable[[str, Any, bool], bool] | None = None,
    ) -> None:
        self.functions = dict(functions)
        self.base_environment = dict(base_environment)
        self.sqs = sqs_client
        self.sns = sns_client
        self.log_dir = log_dir
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.queue_urls = dict(queue_urls or {})
        self.retry_delays_s = retry_delays_s
        self.on_invocation = on_invocation  # callback(function, event, result) for progress output
        self.retries: list[_PendingRetry] = []
        # accept(function, event, scheduled): False drops a queued event (see EventRouter.template_matches).
        self.accept = accept
        self.dropped: list[tuple[str, Any]] = []
        self.invocations: list[tuple[str, Any, InvocationResult]] = []
        # Events whose retries ran out (sent to the on-failure destination / DLQ).
        self.exhausted: list[tuple[str, Any, InvocationResult]] = []
        self._lock = threading.RLock()
        self._log_files: dict[str, TextIO] = {}
        self._containers: dict[str, dict[str, ModuleType]] = {}
        self._code_dirs_added: list[str] = []

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        self._containers.clear()  # a new stack gets cold starts
        for function in self.functions.values():
            code_dir = str(function.code_dir)
            if code_dir not in sys.path:
                sys.path.insert(0, code_dir)
                self._code_dirs_added.append(code_dir)

    def stop(self) -> None:
        if isinstance(sys.stdout, _ThreadRoutedStdout):
            sys.stdout = sys.stdout.real
        for handle in self._log_files.values():
            handle.close()
        self._log_files.clear()
        self._containers.clear()

    def _take_code_modules(self) -> dict[str, ModuleType]:
        """Remove and return every loaded module that lives under a function's code dir."""
        prefixes = tuple({str(function.code_dir) + os.sep for function in self.functions.values()})
        taken: dict[str, ModuleType] = {}
        for name, module in list(sys.modules.items()):
            if any(location.startswith(prefixes) for location in _module_locations(module)):
                taken[name] = sys.modules.pop(name)
        return taken

    @contextmanager
    def _container(self, function: LambdaFunction) -> Iterator[None]:
        """The function's own module objects, as in its own Lambda container: functions share
        `pipeline/`, and its module-level caches (settings, clients, the Powertools idempotency
        layer, which configures itself once) must not leak from one function into another, nor
        into the rest of this process (tests that imported the same modules), nor into a later
        stack. The process's own copies are put back after each invocation."""
        outside = self._take_code_modules()
        sys.modules.update(self._containers.get(function.logical_id, {}))
        try:
            yield
        finally:
            self._containers[function.logical_id] = self._take_code_modules()
            sys.modules.update(outside)

    def log_path(self, function: LambdaFunction) -> Path:
        return self.log_dir / f"{function.logical_id}.log"

    def update_function_environment(self, logical_id: str, variables: Mapping[str, str]) -> None:
        """UpdateFunctionConfiguration's Environment: the function's variables change, and as
        Lambda does, its next invocation runs in a new execution environment (a cold start
        that reads them), never in one that read the old values."""
        with self._lock:  # not while an invocation of any function runs
            self.functions[logical_id].environment.update(variables)
            self._containers.pop(logical_id, None)

    # -- one invocation --------------------------------------------------------------------

    def invoke(self, logical_id: str, event: Any, request_id: str | None = None) -> InvocationResult:
        """Run the handler once (synchronous, no retries), as `Invoke` with RequestResponse."""
        function = self.functions[logical_id]
        request_id = request_id or str(uuid.uuid4())
        with (
            self._lock,
            self._container(function),
            self._function_environment(function),
            self._function_stdout(function) as log,
            warnings.catch_warnings(record=True) as caught,
        ):
            warnings.simplefilter("default")
            started = time.monotonic()
            log.write(f"START RequestId: {request_id} Version: $LATEST\n")
            try:
                handler = self._handler(function)
                response = handler(event, LambdaContext(function, request_id))
                result = InvocationResult(request_id, ok=True, response=response)
            except Exception as error:  # noqa: BLE001 - any handler error is a function error in Lambda
                result = InvocationResult(
                    request_id,
                    ok=False,
                    error={
                        "errorMessage": str(error),
                        "errorType": type(error).__name__,
                        "stackTrace": traceback.format_exception(error),
                    },
                )
                log.write("".join(traceback.format_exception(error)))
            result.duration_ms = (time.monotonic() - started) * 1000
            if result.duration_ms > function.timeout_s * 1000:
                log.write(
                    f"WARNING: ran {result.duration_ms:.0f} ms, over the function's Timeout {function.timeout_s} s\n"
                )
            for warning in caught:
                log.write(f"{warning.category.__name__}: {warning.message}\n")
            log.write(
                f"END RequestId: {request_id}\nREPORT RequestId: {request_id} Duration: {result.duration_ms:.2f} ms\n"
            )
            log.flush()
        self.invocations.append((logical_id, event, result))
        if self.on_invocation is not None:
            self.on_invocation(function, event, result)
        return result

    def _handler(self, function: LambdaFunction) -> Any:
        module_name, _, attribute = function.handler.rpartition(".")
        module = importlib.import_module(module_name)
        return getattr(module, attribute)

    @contextmanager
    def _function_environment(self, function: LambdaFunction) -> Iterator[None]:
        saved = dict(os.environ)
        os.environ.update(self.base_environment)
        os.environ.update(
            {
                "AWS_LAMBDA_FUNCTION_NAME": function.name,
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_mb),
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function.name}",
                "AWS_REGION": function.region,
                "AWS_DEFAULT_REGION": function.region,
                "AWS_EXECUTION_ENV": f"AWS_Lambda_{function.runtime}",
                "LAMBDA_TASK_ROOT": str(function.code_dir),
                "_HANDLER": function.handler,
            }
        )
        os.environ.update(function.environment)
        # No X-Ray daemon locally, whatever TraceAwsCalls says: Powertools' Tracer would try to reach one.
        os.environ["POWERTOOLS_TRACE_DISABLED"] = "true"
        try:
            yield
        finally:
            os.environ.clear()
            os.environ.update(saved)

    @contextmanager
    def _function_stdout(self, function: LambdaFunction) -> Iterator[TextIO]:
        log = self._log_files.get(function.logical_id)
        if log is None:
            log = open(self.log_path(function), "a", encoding="utf-8")  # noqa: SIM115 - kept open for the run
            self._log_files[function.logical_id] = log
        # Re-installed per invocation: test runners and CLIs swap sys.stdout in between.
        if not isinstance(sys.stdout, _ThreadRoutedStdout):
            sys.stdout = _ThreadRoutedStdout(sys.stdout)
        routed = sys.stdout
        previous = getattr(routed.local, "target", None)
        routed.local.target = log
        try:
            yield log
        finally:
            routed.local.target = previous

    # -- asynchronous invocation: retries, then DLQ / on-failure destination ----------------

    def invoke_async(self, logical_id: str, event: Any, request_id: str | None = None) -> InvocationResult:
        """First attempt of an asynchronous invocation; failures are retried by `deliver_pending`."""
        function = self.functions[logical_id]
        result = self.invoke(logical_id, event, request_id)
        if not result.ok:
            self._after_failure(
                _PendingRetry(function, event, result.request_id, attempts=1, due=0.0), result
            )
        return result

    def _after_failure(self, pending: _PendingRetry, result: InvocationResult) -> None:
        pending.errors.append(result.error or {})
        if pending.attempts <= pending.function.maximum_retry_attempts:
            delays = self.retry_delays_s or (0.0,)
            delay = delays[min(pending.attempts - 1, len(delays) - 1)]
            pending.due = time.monotonic() + delay
            self.retries.append(pending)
        else:
            self._send_to_failure_destination(pending, result)

    def _send_to_failure_destination(self, pending: _PendingRetry, result: InvocationResult) -> None:
        function = pending.function
        error = result.error or {}
        self.exhausted.append((function.logical_id, pending.event, result))
        if function.on_failure_arn:
            record = {
                "version": "1.0",
                "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "requestContext": {
                    "requestId": pending.request_id,
                    "functionArn": f"{function.arn}:$LATEST",
                    "condition": "RetriesExhausted",
                    "approximateInvokeCount": pending.attempts,
                },
                "requestPayload": pending.event,
                "responseContext": {
                    "statusCode": 200,
                    "executedVersion": "$LATEST",
                    "functionError": "Unhandled",
                },
                "responsePayload": {k: error.get(k) for k in ("errorMessage", "errorType", "stackTrace")},
            }
            self._send(function.on_failure_arn, json.dumps(record), {})
        if function.dead_letter_arn:
            attributes = {
                "RequestID": {"DataType": "String", "StringValue": pending.request_id},
                "ErrorCode": {"DataType": "Number", "StringValue": "200"},
                "ErrorMessage": {
                    "DataType": "String",
                    "StringValue": str(error.get("errorMessage", ""))[:1000],
                },
            }
            self._send(function.dead_letter_arn, json.dumps(pending.event), attributes)

    def _send(self, arn: str, body: str, attributes: dict[str, Any]) -> None:
        if ":sqs:" in arn:
            _, _, _, region, account, name = arn.split(":")
            url = self.sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
            self.sqs.send_message(QueueUrl=url, MessageBody=body, MessageAttributes=attributes)
        elif ":sns:" in arn:
            self.sns.publish(TopicArn=arn, Message=body, MessageAttributes=attributes)
        else:
            raise ValueError(f"on-failure destination {arn}: the local stack supports SQS and SNS")

    def deliver_pending(self, stop: threading.Event | None = None) -> int:
        """Invoke every event waiting in the invoke queues and every retry that is due; returns
        how many invocations ran (0 when idle). Once `stop` is set, starts no further invocation."""
        ran = 0
        now = time.monotonic()
        due = [retry for retry in self.retries if retry.due <= now]
        self.retries = [retry for retry in self.retries if retry.due > now]
        for pending in due:
            if stop is not None and stop.is_set():
                self.retries.append(pending)
                continue
            result = self.invoke(pending.function.logical_id, pending.event, pending.request_id)
            pending.attempts += 1
            ran += 1
            if not result.ok:
                self._after_failure(pending, result)
        for logical_id, url in self.queue_urls.items():
            if getattr(self.functions.get(logical_id), "reserved_concurrency", None) == 0:
                continue  # throttled: Lambda keeps the events queued (up to the event age limit)
            messages = self.sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0, MessageAttributeNames=["All"]
            ).get("Messages", [])
            for message in messages:
                if stop is not None and stop.is_set():
                    return ran  # not taken: it stays in its queue
                # Taken: from here on the retries are the runtime's, as in Lambda's own queue.
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
                event = as_delivered_event(message["Body"], message["MessageId"])
                scheduled = SCHEDULE_ATTRIBUTE in message.get("MessageAttributes", {})
                if self.accept is not None and not self.accept(logical_id, event, scheduled):
                    self.dropped.append((logical_id, event))
                    continue
                self.invoke_async(logical_id, event)
                ran += 1
        return ran


class DeliveryLoop:
    """Background thread that keeps calling `LambdaRuntime.deliver_pending()`."""

    def __init__(self, runtime: LambdaRuntime, idle_wait_s: float = 0.5) -> None:
        self.runtime = runtime
        self.idle_wait_s = idle_wait_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hyenaflow-lambda-delivery", daemon=True)
        self.errors: list[str] = []

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 0.5) -> None:
        """Deliver nothing more. A handler still running after `timeout_s` is left to finish on
        its own (a daemon thread): a stopping stack does not wait for it (Ctrl-C on `local up`
        must stop it within 3 s, and poll_genbank may be in the middle of NCBI's back-off)."""
        self._stop.set()
        self._thread.join(timeout_s)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                ran = self.runtime.deliver_pending(self._stop)
            except Exception as error:  # noqa: BLE001 - keep delivering; the error is reported
                self.errors.append("".join(traceback.format_exception(error)))
                ran = 0
            if not ran:
                self._stop.wait(self.idle_wait_s)
