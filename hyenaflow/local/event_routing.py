"""Event routing for the local stack, taken from template.yaml itself.

Every EventBridge rule the template declares (a function's `EventBridgeRule`/`CloudWatchEvent`
events, `AWS::Events::Rule` resources targeting a function) is created on moto's EventBridge with
its real pattern. moto cannot invoke Lambda targets, but moto 5.2.5 does deliver matching events
to SQS targets, so each function gets one SQS "invoke queue" as the rule's target and the local
Lambda runtime (lambda_runtime.py) drains it. moto does the matching, so a wrong pattern in the
template leaves the function uninvoked locally, exactly as in AWS.

Schedules (`Schedule`, `ScheduleV2`, `AWS::Scheduler::Schedule`, rules with a
`ScheduleExpression`) do not fire by clock; `fire_schedule()` sends the event that EventBridge
would send straight to the function's invoke queue, and `ScheduleClock` does so on a shortened
clock. Their rules are created without targets: moto treats a rule without a pattern as "match
everything".
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from hyenaflow.local.account import ACCOUNT_ID
from hyenaflow.local.event_patterns import matches
from hyenaflow.local.template import IntrinsicResolver, resource_enabled

INVOKE_QUEUE_PREFIX = "hyenaflow-local-invoke-"
# Message attribute naming the schedule that sent an invoke-queue message (no pattern to check).
SCHEDULE_ATTRIBUTE = "hyenaflow-schedule"


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
    if route.input is not None and route.kind in ("ScheduleV2", "AWS::Scheduler::Schedule"):
        return json.loads(with_scheduler_context(route.input, route, region))
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


def with_scheduler_context(text: str, route: EventRoute, region: str) -> str:
    """EventBridge Scheduler's context attributes in a target Input, replaced by their values
    (https://docs.aws.amazon.com/scheduler/latest/UserGuide/managing-schedule-context-attributes.html)."""
    values = {
        "<aws.scheduler.scheduled-time>": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "<aws.scheduler.schedule-arn>": f"arn:aws:scheduler:{region}:{ACCOUNT_ID}:schedule/default/{route.name}",
        "<aws.scheduler.execution-id>": uuid.uuid4().hex[:16],
        "<aws.scheduler.attempt-number>": "1",
    }
    for attribute, value in values.items():
        text = text.replace(attribute, value)
    return text


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
            self._thread.join(0.5)  # firing a schedule is one SQS message; never hold up a stop

    def _run(self) -> None:
        due = {function_id: time.monotonic() + period for function_id, period in self.every_s.items()}
        while not self._stop.wait(min(0.5, *self.every_s.values())):
            now = time.monotonic()
            for function_id, when in due.items():
                if now >= when:
                    self.router.fire_schedule(function_id, self.region)
                    due[function_id] = now + self.every_s[function_id]
