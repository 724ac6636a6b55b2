"""template.yaml read as CloudFormation reads it: short-form tags and intrinsic functions.

`load_template` turns the YAML (with `!Ref`, `!GetAtt`, `!Sub` ...) into plain dicts;
`IntrinsicResolver` resolves Ref / GetAtt / Sub / Join / If ... against the resources and
parameters of the local stack, so the event router, the Lambda runtime and the pipeline all see
the values a deployed stack would have.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hyenaflow.local.account import ACCOUNT_ID

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
