"""The template parameters `make deploy` hands to `sam deploy`.

`sam deploy --parameter-overrides ...` on the command line replaces samconfig.toml's saved
`parameter_overrides` instead of adding to them (SAM CLI takes a command-line option over the
config file's), so `make deploy` passes the whole set, in this order of precedence:

1. `PARAMETER_OVERRIDES="Key=Value ..."` on the make command line;
2. samconfig.toml's `[default.deploy.parameters] parameter_overrides` (what `--guided` saved);
3. for `TrainingImageUri` / `InferenceImageUri` still empty: the AWS PyTorch image of the
   deploy Region, CPU or GPU after `TrainingInstanceType` / `EndpointInstanceType`
   (hyenaflow/images.py).

So a value you give wins. The result is written as a YAML file that `sam deploy
--parameter-overrides file://...` reads (SAM CLI 1.170 reads .yaml/.toml parameter files).
Standard library only, plus sagemaker-core for the images: it runs in `.venv-deploy`, no torch.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from hyenaflow.images import inference_image_uri, training_image_uri

# image parameter -> (the instance type parameter that picks CPU or GPU, resolver)
IMAGE_PARAMETERS: dict[str, tuple[str, Callable[[str, str], str]]] = {
    "TrainingImageUri": ("TrainingInstanceType", training_image_uri),
    "InferenceImageUri": ("EndpointInstanceType", inference_image_uri),
}

# SAM CLI's own grammar for `Key=Value` pairs (samcli/cli/types.py CfnParameterOverridesType):
# a value is double- or single-quoted (backslash escapes inside) or a run without blanks.
_VALUE = r"\"(?:\\.|[^\"\\])*\"|'(?:\\.|[^'\\])*'|(?:\\.|[^ \"\\])+"
_PAIR = re.compile(rf"(?:^|\s)([A-Za-z0-9]+)=({_VALUE})")
_ECR_URI = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.[a-z.]+/(?P<repo>[^:@]+)[:@](?P<tag>.+)$"
)
_GPU_INSTANCE = re.compile(r"^ml\.(g|p)\d")


def parse_parameter_overrides(value: str | list[str] | None) -> dict[str, str]:
    """`Key=Value Key2="a b"` (or a list of such strings) -> {Key: Value}, unquoted as SAM does."""
    if not value:
        return {}
    text = " ".join(value) if isinstance(value, list) else value
    parsed = {}
    for key, raw in _PAIR.findall(text):
        if raw[0] == raw[-1] and raw[0] in "\"'" and len(raw) > 1:
            raw = raw[1:-1]
        parsed[key] = raw.replace("\\ ", " ").replace('\\"', '"').replace("\\'", "'")
    return parsed


def samconfig_deploy_parameters(path: Path = Path("samconfig.toml")) -> dict[str, Any]:
    """`sam deploy`'s saved answers (stack_name, region, parameter_overrides ...), if any."""
    if not path.exists():
        return {}
    config = tomllib.loads(path.read_text())
    return config.get("default", {}).get("deploy", {}).get("parameters", {})


def template_parameter_defaults(template: Path) -> dict[str, str]:
    """Parameters' Default values of template.yaml (short-form tags are read as nothing)."""
    import yaml  # PyYAML: a dependency of sagemaker-core (the deploy group) and of the dev group

    class _Loader(yaml.SafeLoader):
        pass

    _Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    document = yaml.load(template.read_text(), Loader=_Loader)
    return {
        name: str(spec["Default"])
        for name, spec in (document.get("Parameters") or {}).items()
        if "Default" in spec
    }


def deploy_parameters(
    *,
    region: str,
    saved: Mapping[str, str],
    overrides: Mapping[str, str],
    defaults: Mapping[str, str],
) -> tuple[dict[str, str], list[str]]:
    """(parameters to pass, warnings): saved < overrides, image URIs resolved where still empty."""
    parameters = {**saved, **overrides}
    effective = {**defaults, **parameters}
    warnings = []
    for image_parameter, (instance_parameter, resolve) in IMAGE_PARAMETERS.items():
        instance_type = effective.get(instance_parameter, "")
        if parameters.get(image_parameter):
            warnings += _mismatches(image_parameter, parameters[image_parameter], region, instance_type)
            continue
        parameters[image_parameter] = resolve(region, instance_type)
    return parameters, warnings


def _mismatches(parameter: str, uri: str, region: str, instance_type: str) -> list[str]:
    """An image you (or an earlier --guided run) saved that no longer fits the deployment."""
    match = _ECR_URI.match(uri)
    if not match:
        return []
    found = []
    if match["region"] != region:
        found.append(
            f"{parameter}={uri} is in {match['region']}, the stack deploys to {region}: "
            f"set {parameter}= (empty) to resolve the image of {region}"
        )
    gpu_image = "-gpu-" in match["tag"] or re.search(r"(^|-)cu\d", match["tag"]) is not None
    if instance_type and gpu_image != bool(_GPU_INSTANCE.match(instance_type)):
        kind = "a GPU" if gpu_image else "a CPU"
        found.append(
            f"{parameter}={uri} is {kind} image but the instances are {instance_type}: "
            f"set {parameter}= (empty) to resolve the matching one"
        )
    return found


def write_parameter_file(parameters: Mapping[str, str], path: Path) -> Path:
    """A YAML mapping (written as JSON, which YAML reads) for `--parameter-overrides file://`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dict(parameters), indent=2) + "\n")
    return path
