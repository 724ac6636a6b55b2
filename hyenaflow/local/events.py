"""Event routing for the local stack, taken from template.yaml itself.

Every EventBridge rule the template declares (a function's `EventBridgeRule`/`CloudWatchEvent`
events, `AWS::Events::Rule` resources targeting a function) is created on moto's EventBridge with
its real pattern. moto cannot invoke Lambda targets, but moto 5.2.5 does deliver matching events
to SQS targets, so each function gets one SQS "invoke queue" as the rule's target and the local
Lambda runtime (lambda_runtime.py) drains it. moto does the matching, so a wrong pattern in the
template leaves the function uninvoked locally, exactly as in AWS.

Schedules (`Schedule`, `ScheduleV2`, `AWS::Scheduler::Schedule`, rules with a
`ScheduleExpression`) do not fire by clock; `fire_schedule()` sends the event that EventBridge
would send straight to the function's invoke queue. Their rules are created without targets:
moto treats a rule without a pattern as "match everything".

S3: moto 5.2.5 emits EventBridge events for buckets with EventBridge notifications, but not in
AWS's shape (one constant event id, `eTag` instead of `etag`, `reason: ObjectCreated`,
`version-id: "null"`). `install_s3_eventbridge_hook()` replaces that emitter with one that emits
the documented shape.

This module also loads the template (CloudFormation short-form tags) and resolves intrinsic
functions against the local resources, because both the router and the Lambda runtime need it.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import yaml

ACCOUNT_ID = "123456789012"
INVOKE_QUEUE_PREFIX = "hyenaflow-local-invoke-"
# Message attribute naming the schedule that sent an invoke-queue message (no pattern to check).
SCHEDULE_ATTRIBUTE = "hyenaflow-schedule"

# ---------------------------------------------------------------------------------------------
# template.yaml: loading and intrinsic functions
# ---------------------------------------------------------------------------------------------

_TAGS_WITH_LIST_ARGS = {
    "GetAtt": "Fn::GetAtt",
    "Join": "Fn::Join",
    "Select": "Fn::Select",
    "Split": "Fn::Split",
    "If": "Fn::If",
    "Equals": "Fn::Equals",
    "And": "Fn::And",
    "Or": "Fn::Or",
    "Not": "Fn::Not",
    "FindInMap": "Fn::FindInMap",
    "Sub": "Fn::Sub",
    "Base64": "Fn::Base64",
    "Cidr": "Fn::Cidr",
    "GetAZs": "Fn::GetAZs",
    "ImportValue": "Fn::ImportValue",
    "ToJsonString": "Fn::ToJsonString",
    "Length": "Fn::Length",
}


class _TemplateLoader(yaml.SafeLoader):
    """SafeLoader that reads CloudFormation short-form tags (!Ref, !GetAtt, !Sub ...)."""


def _construct_cfn_tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "Condition":
        return {"Condition": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {_TAGS_WITH_LIST_ARGS.get(tag_suffix, f"Fn::{tag_suffix}"): value}


_TemplateLoader.add_multi_constructor("!", _construct_cfn_tag)


def load_template(path: str | Path) -> dict[str, Any]:
    """Read a CloudFormation/SAM template (YAML with short-form tags) into plain dicts."""
    with open(path, encoding="utf-8") as handle:
        template = yaml.load(handle, Loader=_TemplateLoader)  # noqa: S506 - SafeLoader subclass
    if not isinstance(template, dict) or "Resources" not in template:
        raise ValueError(f"{path}: not a CloudFormation template (no Resources section)")
    return template


@dataclass
class LocalResource:
    """What a template resource resolves to locally: its `Ref` value and its `GetAtt` attributes."""

    ref: str
    attributes: dict[str, str] = field(default_factory=dict)


_NO_VALUE = object()


class IntrinsicResolver:
    """Resolves Ref / GetAtt / Sub / Join / If ... against the local resources and parameters."""

    def __init__(
        self,
        template: Mapping[str, Any],
        resources: Mapping[str, LocalResource],
        parameters: Mapping[str, str],
        region: str,
        stack_name: str,
    ) -> None:
        self.template = template
        self.resources = resources
        self.parameters = dict(parameters)
        self.pseudo = {
            "AWS::Region": region,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::StackName": stack_name,
            "AWS::StackId": f"arn:aws:cloudformation:{region}:{ACCOUNT_ID}:stack/{stack_name}/local",
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": _NO_VALUE,
        }

    def resolve(self, value: Any) -> Any:
        resolved = self._resolve(value)
        return None if resolved is _NO_VALUE else resolved

    def condition(self, name: str) -> bool:
        return bool(self._resolve(self.template.get("Conditions", {})[name]))

    def _ref(self, name: str) -> Any:
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.resources:
            return self.resources[name].ref
        raise KeyError(f"template.yaml: !Ref {name}: no such parameter or resource in the local stack")

    def _get_att(self, logical_id: str, attribute: str) -> str:
        resource = self.resources.get(logical_id)
        if resource is None:
            raise KeyError(f"template.yaml: !GetAtt {logical_id}.{attribute}: no such resource")
        if attribute not in resource.attributes:
            raise KeyError(
                f"template.yaml: !GetAtt {logical_id}.{attribute}: the local stack does not provide "
                f"this attribute (has: {sorted(resource.attributes)})"
            )
        return resource.attributes[attribute]

    def _sub(self, text: str, variables: Mapping[str, Any]) -> str:
        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name and name.split(".", 1)[0] in self.resources:
                return self._get_att(*name.split(".", 1))
            return str(self._ref(name))

        return re.sub(r"\$\{([^}]+)\}", replace, text)

    def _resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            items = [self._resolve(item) for item in value]
            return [item for item in items if item is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self._ref(arg)
            if key == "Condition":
                return self.condition(arg)
            if key.startswith("Fn::"):
                return self._function(key, arg)
        resolved = {key: self._resolve(item) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not _NO_VALUE}

    def _function(self, name: str, arg: Any) -> Any:  # noqa: C901 - one branch per intrinsic
        if name == "Fn::GetAtt":
            logical_id, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
            return self._get_att(self._resolve(logical_id), self._resolve(attribute))
        if name == "Fn::Sub":
            if isinstance(arg, list):
                text, variables = arg
                return self._sub(text, {k: self._resolve(v) for k, v in variables.items()})
            return self._sub(arg, {})
        if name == "Fn::Join":
            separator, items = arg
            return separator.join(str(item) for item in self._resolve(items))
        if name == "Fn::Select":
            index, items = arg
            return self._resolve(items)[int(self._resolve(index))]
        if name == "Fn::Split":
            separator, text = arg
            return self._resolve(text).split(separator)
        if name == "Fn::If":
            condition, when_true, when_false = arg
            return self._resolve(when_true if self.condition(condition) else when_false)
        if name == "Fn::Equals":
            left, right = (self._resolve(item) for item in arg)
            return str(left) == str(right)
        if name == "Fn::Not":
            return not self._resolve(arg[0])
        if name == "Fn::And":
            return all(self._resolve(item) for item in arg)
        if name == "Fn::Or":
            return any(self._resolve(item) for item in arg)
        if name == "Fn::FindInMap":
            mapping, top, second = (self._resolve(item) for item in arg)
            return self.template["Mappings"][mapping][top][second]
        if name == "Fn::ToJsonString":
            return json.dumps(self._resolve(arg), separators=(",", ":"))
        if name == "Fn::Length":
            return len(self._resolve(arg))
        if name == "Fn::GetAZs":
            region = self._resolve(arg) or self.pseudo["AWS::Region"]
            return [f"{region}a", f"{region}b"]
        raise ValueError(f"template.yaml: {name} is not supported by the local stack")


def resource_enabled(resource: Mapping[str, Any], resolver: IntrinsicResolver) -> bool:
    """False for resources whose `Condition` is false (they do not exist in the stack)."""
    condition = resource.get("Condition")
    return condition is None or resolver.condition(condition)


# ---------------------------------------------------------------------------------------------
# Routes: which events invoke which function
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventRoute:
    """One template event source feeding one function.

    `pattern` is set for pattern rules, `schedule` for schedules (never both). `input` is the
    constant payload a schedule/rule target may declare (`Input`), as JSON text.
    """

    name: str
    function_logical_id: str
    pattern: dict[str, Any] | None = None
    schedule: str | None = None
    input: str | None = None
    enabled: bool = True
    kind: str = "EventBridgeRule"

    @property
    def rule_name(self) -> str:
        # EventBridge rule names: 64 chars of [.-_A-Za-z0-9].
        return re.sub(r"[^.\-_A-Za-z0-9]", "-", f"{self.function_logical_id}-{self.name}")[:64]


_PATTERN_EVENT_TYPES = {"EventBridgeRule", "CloudWatchEvent"}
_SCHEDULE_EVENT_TYPES = {"Schedule", "ScheduleV2"}


def _as_json_text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value)


def _is_enabled(properties: Mapping[str, Any]) -> bool:
    if "Enabled" in properties:
        return bool(properties["Enabled"])
    state = properties.get("State", "ENABLED")
    return str(state).upper() == "ENABLED"


def _function_target(arn_value: Any, function_ids: set[str]) -> str | None:
    """The logical id of the function an (unresolved) target ARN points at, if any."""
    if isinstance(arn_value, dict):
        if "Fn::GetAtt" in arn_value:
            target = arn_value["Fn::GetAtt"]
            logical_id = target[0] if isinstance(target, list) else target.split(".", 1)[0]
            return logical_id if logical_id in function_ids else None
        if "Ref" in arn_value and arn_value["Ref"] in function_ids:
            return arn_value["Ref"]
        if "Fn::Sub" in arn_value:
            text = arn_value["Fn::Sub"] if isinstance(arn_value["Fn::Sub"], str) else arn_value["Fn::Sub"][0]
            for logical_id in function_ids:
                if "${" + logical_id + ".Arn}" in text or "${" + logical_id + "}" in text:
                    return logical_id
    return None


def routes_from_template(template: Mapping[str, Any], resolver: IntrinsicResolver) -> list[EventRoute]:
    """Every event source of the template that invokes one of its functions."""
    resources = template["Resources"]
    function_ids = {
        logical_id
        for logical_id, resource in resources.items()
        if resource.get("Type") in ("AWS::Serverless::Function", "AWS::Lambda::Function")
        and resource_enabled(resource, resolver)
    }
    routes: list[EventRoute] = []
    for logical_id in sorted(function_ids):
        events = resources[logical_id].get("Properties", {}).get("Events", {}) or {}
        for event_name, event in events.items():
            kind = event.get("Type")
            properties = resolver.resolve(event.get("Properties", {}))
            if kind in _PATTERN_EVENT_TYPES:
                routes.append(
                    EventRoute(
                        name=event_name,
                        function_logical_id=logical_id,
                        pattern=properties["Pattern"],
                        input=_as_json_text(properties.get("Input")),
                        enabled=_is_enabled(properties),
                        kind=kind,
                    )
                )
            elif kind in _SCHEDULE_EVENT_TYPES:
                routes.append(
                    EventRoute(
                        name=event_name,
                        function_logical_id=logical_id,
                        schedule=properties["Schedule"]
                        if kind == "Schedule"
                        else properties["ScheduleExpression"],
                        input=_as_json_text(properties.get("Input")),
                        enabled=_is_enabled(properties),
                        kind=kind,
                    )
                )
    for logical_id, resource in resources.items():
        kind = resource.get("Type")
        if kind not in ("AWS::Events::Rule", "AWS::Scheduler::Schedule") or not resource_enabled(
            resource, resolver
        ):
            continue
        raw_properties = resource.get("Properties", {})
        raw_targets = (
            raw_properties.get("Targets", [])
            if kind == "AWS::Events::Rule"
            else [raw_properties.get("Target", {})]
        )
        properties = resolver.resolve(
            {key: value for key, value in raw_properties.items() if key not in ("Targets", "Target")}
        )
        for raw_target in raw_targets:
            function_id = _function_target(raw_target.get("Arn"), function_ids)
            if function_id is None:
                continue
            target = resolver.resolve(raw_target)
            schedule = properties.get("ScheduleExpression")
            routes.append(
                EventRoute(
                    name=logical_id,
                    function_logical_id=function_id,
                    pattern=None if schedule else properties.get("EventPattern"),
                    schedule=schedule,
                    input=_as_json_text(target.get("Input")),
                    enabled=_is_enabled(properties),
                    kind=kind,
                )
            )
    return routes


def invoke_queue_name(function_logical_id: str) -> str:
    return f"{INVOKE_QUEUE_PREFIX}{function_logical_id}"[:80]


def queue_url(endpoint_url: str, queue_name: str) -> str:
    return f"{endpoint_url.rstrip('/')}/{ACCOUNT_ID}/{queue_name}"


class EventRouter:
    """Creates the template's rules on moto EventBridge, each targeting its function's invoke queue."""

    def __init__(self, events_client: Any, sqs_client: Any, routes: list[EventRoute]) -> None:
        self.events = events_client
        self.sqs = sqs_client
        self.routes = routes
        self.queue_urls: dict[str, str] = {}

    def create(self) -> None:
        for function_id in sorted({route.function_logical_id for route in self.routes}):
            url = self.sqs.create_queue(
                QueueName=invoke_queue_name(function_id),
                # Redelivery after a crashed delivery loop; the runtime deletes each message as
                # soon as it has taken the event, like Lambda's internal async queue.
                Attributes={"VisibilityTimeout": "900", "MessageRetentionPeriod": "21600"},
            )["QueueUrl"]
            self.queue_urls[function_id] = url
        for route in self.routes:
            self._create_rule(route)

    def queue_arn(self, function_id: str) -> str:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_urls[function_id], AttributeNames=["QueueArn"]
        )
        return attributes["Attributes"]["QueueArn"]

    def _create_rule(self, route: EventRoute) -> None:
        state = "ENABLED" if route.enabled else "DISABLED"
        if route.schedule is not None:
            # No target: a pattern-less rule matches every event in moto. fire_schedule() delivers.
            self.events.put_rule(
                Name=route.rule_name, ScheduleExpression=_rule_schedule(route.schedule), State=state
            )
            return
        self.events.put_rule(Name=route.rule_name, EventPattern=json.dumps(route.pattern), State=state)
        target: dict[str, Any] = {"Id": "local-lambda", "Arn": self.queue_arn(route.function_logical_id)}
        if route.input is not None:
            target["Input"] = route.input
        self.events.put_targets(Rule=route.rule_name, Targets=[target])

    def fire_schedule(self, function_logical_id: str, region: str) -> dict[str, Any]:
        """Send the event a schedule of `function_logical_id` would send now; returns it."""
        schedules = [r for r in self.routes if r.function_logical_id == function_logical_id and r.schedule]
        if not schedules:
            known = sorted({r.function_logical_id for r in self.routes if r.schedule})
            raise KeyError(
                f"{function_logical_id} has no schedule in template.yaml (functions with one: {known})"
            )
        route = schedules[0]
        event = scheduled_event(route, region)
        self.sqs.send_message(
            QueueUrl=self.queue_urls[function_logical_id],
            MessageBody=json.dumps(event),
            MessageAttributes=schedule_attributes(route),
        )
        return event

    def template_matches(self, function_logical_id: str, event: Any) -> bool:
        """Whether one of the function's template patterns matches `event`, by the project's own
        reading of EventBridge's pattern language (hyenaflow.local.event_patterns). moto already
        matched it; this second opinion keeps a pattern operator moto reads loosely from
        delivering what AWS would not."""
        from hyenaflow.local.event_patterns import matches

        patterns = [
            r.pattern for r in self.routes if r.function_logical_id == function_logical_id and r.pattern
        ]
        return isinstance(event, dict) and any(matches(pattern, event) for pattern in patterns)


def schedule_attributes(route: EventRoute) -> dict[str, Any]:
    return {SCHEDULE_ATTRIBUTE: {"DataType": "String", "StringValue": route.name}}


def _rule_schedule(expression: str) -> str:
    # EventBridge Scheduler's at(...) has no EventBridge-rule form; the rule only documents it.
    return expression if expression.startswith(("rate(", "cron(")) else "rate(1 day)"


def scheduled_event(route: EventRoute, region: str) -> dict[str, Any]:
    """The payload a function receives from its schedule (an `Input` when the template sets one)."""
    if route.input is not None:
        return json.loads(route.input)
    if route.kind == "ScheduleV2" or route.kind == "AWS::Scheduler::Schedule":
        # EventBridge Scheduler's templated Lambda target sends `{}` when no Input is set.
        return {}
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT_ID,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:aws:events:{region}:{ACCOUNT_ID}:rule/{route.rule_name}"],
        "detail": {},
    }


# moto's default target input (EventTemplateParser) drops `account`; every real event has it.
def as_delivered_event(body: str, message_id: str) -> Any:
    """The event a function receives, from the body of its invoke-queue message."""
    event = json.loads(body)
    if isinstance(event, dict) and "detail-type" in event:
        event.setdefault("account", ACCOUNT_ID)
        if event.get("id") == _MOTO_CONSTANT_EVENT_ID:
            event["id"] = message_id
    return event


_MOTO_CONSTANT_EVENT_ID = "17793124-05d4-b198-2fde-7ededc63b103"


# ---------------------------------------------------------------------------------------------
# S3 -> EventBridge in the documented shape
# ---------------------------------------------------------------------------------------------

_S3_REASONS = {
    "s3:ObjectCreated:Put": "PutObject",
    "s3:ObjectCreated:Post": "POST Object",
    "s3:ObjectCreated:Copy": "CopyObject",
    "s3:ObjectCreated:CompleteMultipartUpload": "CompleteMultipartUpload",
    "s3:ObjectRemoved:Delete": "DeleteObject",
    "s3:ObjectRemoved:DeleteMarkerCreated": "DeleteObject",
}


def s3_eventbridge_event(event_name: str, bucket_name: str, region: str, key: Any) -> dict[str, Any] | None:
    """The EventBridge event S3 sends for `event_name` on `key` (moto FakeKey), per
    https://docs.aws.amazon.com/AmazonS3/latest/userguide/ev-events.html; None for event types
    the pipeline does not use."""
    if event_name.startswith("s3:ObjectCreated:"):
        detail_type = "Object Created"
    elif event_name.startswith("s3:ObjectRemoved:"):
        detail_type = "Object Deleted"
    else:
        return None
    obj: dict[str, Any] = {"key": quote_plus(key.name, safe="/")}
    if detail_type == "Object Created":
        obj["size"] = key.size
        obj["etag"] = key.etag.replace('"', "")
    if key.version_id and key.version_id != "null":
        obj["version-id"] = key.version_id
    obj["sequencer"] = f"{int(datetime.now(UTC).timestamp() * 1e6):X}"
    detail = {
        "version": "0",
        "bucket": {"name": bucket_name},
        "object": obj,
        "request-id": uuid.uuid4().hex[:16].upper(),
        "requester": ACCOUNT_ID,
        "source-ip-address": "127.0.0.1",
        "reason": _S3_REASONS.get(event_name, event_name.split(":")[-1]),
    }
    if detail_type == "Object Deleted":
        detail["deletion-type"] = "Permanently Deleted"
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": "aws.s3",
        "account": ACCOUNT_ID,
        "time": datetime.now(UTC).timestamp(),  # moto's SQS target turns this into ISO-8601
        "region": region,
        "resources": [f"arn:aws:s3:::{bucket_name}"],
        "detail": detail,
    }


def install_s3_eventbridge_hook() -> Callable[[], None]:
    """Make moto S3 (in this process) emit documented-shape EventBridge events; returns an undo."""
    from moto.events.models import events_backends
    from moto.s3 import notifications

    original = notifications._send_event_bridge_message

    def send_event_bridge_message(account_id: str, bucket: Any, event_name: str, key: Any) -> None:
        event = s3_eventbridge_event(
            str(event_name.value if hasattr(event_name, "value") else event_name),
            bucket.name,
            bucket.region_name,
            key,
        )
        if event is None:
            return
        backend = events_backends[account_id][bucket.region_name]
        for event_bus in backend.event_buses.values():
            if event_bus.name != "default":  # S3 sends to the default bus only
                continue
            for rule in list(event_bus.rules.values()):
                if rule.state == "ENABLED":
                    rule.send_to_targets(copy.deepcopy(event), transform_input=False)

    notifications._send_event_bridge_message = send_event_bridge_message

    def undo() -> None:
        notifications._send_event_bridge_message = original

    return undo


class ScheduleClock:
    """Fires chosen functions' schedules every few seconds: the template's clock, shortened."""

    def __init__(self, router: EventRouter, every_s: Mapping[str, float], region: str) -> None:
        self.router = router
        self.every_s = dict(every_s)
        self.region = region
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hyenaflow-schedule-clock", daemon=True)

    def start(self) -> None:
        if self.every_s:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)

    def _run(self) -> None:
        due = {function_id: time.monotonic() + period for function_id, period in self.every_s.items()}
        while not self._stop.wait(min(0.5, *self.every_s.values())):
            now = time.monotonic()
            for function_id, when in due.items():
                if now >= when:
                    self.router.fire_schedule(function_id, self.region)
                    due[function_id] = now + self.every_s[function_id]
