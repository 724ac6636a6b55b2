"""One local SageMaker training job: `train.py` as a subprocess with the SageMaker environment contract.

Mirrors what the SageMaker training toolkit does inside the container, on this machine:
channels are downloaded from (moto) S3 to `SM_CHANNEL_<NAME>` directories, the
`sagemaker_submit_directory` tarball is unpacked and `sagemaker_program` runs with the
hyperparameters as `--key value` arguments, stdout/stderr go to a log file, the job's
MetricDefinitions regexes turn log lines into FinalMetricDataList, and `SM_MODEL_DIR` is packed
into `<S3OutputPath>/<job>/output/model.tar.gz`.

CheckpointConfig.S3Uri is synced into the checkpoint dir before the run, and the checkpoint dir
back to it while the script runs (every CHECKPOINT_SYNC_S) and once more after it: "SageMaker AI
saves checkpoints to Amazon S3 and syncs your training job with the checkpoint S3 bucket"
(SageMaker developer guide, "Enable checkpointing"). A managed spot job can be interrupted
(`interrupt()`, the local stack's stand-in for losing the spot instance): its script is killed
without warning, nothing more is synced, and the job restarts as SageMaker restarts it on a new
instance: SecondaryStatus Interrupted, then a fresh job folder whose checkpoint dir holds what
CheckpointConfig.S3Uri holds, and the script runs again from the start (it resumes from its
checkpoints). TrainingJobStatus stays InProgress throughout.
TensorBoardOutputConfig gets the TensorBoard dir under `<S3OutputPath>/<job>/tensorboard-output/`.
Paths on this machine replace the container's `/opt/ml/...` ones; the script sees them through
the usual variables plus `SM_CHECKPOINT_DIR` (the container's `/opt/ml/checkpoints`, synced
from/to CheckpointConfig.S3Uri) and `SM_TENSORBOARD_DIR` (`/opt/ml/output/tensorboard`).
Layout of `<workdir>/sagemaker/training/<job>/`: `input/data/<channel>/`, `model/`,
`output/data/`, `output/checkpoints/`, `code/` (unpacked source dir), `training.log`.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from hyenaflow.local.sagemaker.processes import ChildProcesses, StackStopping, terminate_process_group
from hyenaflow.local.sagemaker.s3_uri import split_s3_uri

REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_TRAINING_CODE_DIR = REPO_ROOT / "training_job"
FAILURE_REASON_MAX = 1024  # DescribeTrainingJob FailureReason length limit
CHECKPOINT_SYNC_S = 0.5  # how often a running job's checkpoint dir is synced to CheckpointConfig.S3Uri


def decode_hyperparameter(value: str) -> Any:
    """The SageMaker SDK JSON-encodes hyperparameter values ('"train.py"', '0.001'); undo it."""
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        return value


def cli_args(hyperparameters: dict[str, str]) -> list[str]:
    """`--key value` for each hyperparameter except the SDK's own `sagemaker_*` ones."""
    args: list[str] = []
    for key, raw in hyperparameters.items():
        if key.startswith("sagemaker_"):
            continue
        value = decode_hyperparameter(raw)
        args += [f"--{key}", value if isinstance(value, str) else json.dumps(value)]
    return args


@dataclass
class MetricTracker:
    """Applies MetricDefinitions regexes to log lines; keeps each metric's last value."""

    definitions: list[dict[str, str]]
    last: dict[str, tuple[float, datetime]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._compiled = [(d["Name"], re.compile(d["Regex"])) for d in self.definitions]

    def feed(self, line: str) -> None:
        for name, pattern in self._compiled:
            match = pattern.search(line)
            if match:
                try:
                    self.last[name] = (float(match.group(1)), datetime.now(UTC))
                except (IndexError, ValueError):
                    continue  # SageMaker skips values that do not parse as numbers

    def final_metric_data_list(self) -> list[dict[str, Any]]:
        return [
            {"MetricName": name, "Value": value, "Timestamp": stamp}
            for name, (value, stamp) in sorted(self.last.items())
        ]


class TrainingFailed(Exception):
    """The job ends Failed with this message as FailureReason."""


@dataclass
class TrainingRun:
    """One local training job: a thread that downloads, runs the script, uploads."""

    name: str
    arn: str
    request: dict[str, Any]
    job_dir: Path
    s3: Any  # boto3 S3 client for the local endpoint
    aws_env: dict[str, str]
    training_code_dir: Path
    processes: ChildProcesses  # the server's: its shutdown ends this script with every other
    on_status: Callable[[TrainingRun, str, str, str | None], None]  # (run, status, secondary, reason)
    process: subprocess.Popen[bytes] | None = None
    stop_requested: bool = False
    interruptions: int = 0  # spot interruptions so far (each one restarts the script)
    metrics: MetricTracker = field(init=False)

    def __post_init__(self) -> None:
        spec = self.request.get("AlgorithmSpecification", {})
        self.metrics = MetricTracker(spec.get("MetricDefinitions") or [])
        self.log_path = self.job_dir / "training.log"
        # Where training_job/train.py puts them outside a container (next to SM_OUTPUT_DATA_DIR);
        # also exported as SM_CHECKPOINT_DIR / SM_TENSORBOARD_DIR.
        self.checkpoint_dir = self.job_dir / "output" / "checkpoints"
        self.tensorboard_dir = self.job_dir / "output" / "data" / "tensorboard"
        self._log_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"training-{self.name}", daemon=True)
        self._interrupted = threading.Event()
        self._synced: dict[Path, tuple[int, int]] = {}  # checkpoint file -> (size, mtime) uploaded

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """StopTrainingJob: the script gets SIGTERM (then SIGKILL), the job ends Stopped."""
        self.stop_requested = True
        terminate_process_group(self.process, timeout_s)

    def interrupt(self) -> None:
        """Lose the spot instance: the script is killed now and the job restarts (see the module
        docstring). Only for EnableManagedSpotTraining jobs whose script is running."""
        if not self.request.get("EnableManagedSpotTraining"):
            raise ValueError(f"training job {self.name} is not a managed spot job")
        if self.process is None or self.process.poll() is not None:
            raise ValueError(f"training job {self.name} has no running script to interrupt")
        self._interrupted.set()
        terminate_process_group(self.process, 0.0)  # no grace: the instance is gone

    def join(self, timeout_s: float | None = None) -> None:
        self._thread.join(timeout_s)

    def mark_stopped(self) -> None:
        """The server is shutting down: the job ends Stopped once its script has been ended
        (with every other child process, by ChildProcesses.stop_all)."""
        self.stop_requested = True

    # --- the job ----------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self.on_status(self, "InProgress", "Downloading", None)
            code_dir, program = self._prepare()
            if self.stop_requested:
                self.on_status(self, "Stopped", "Stopped", None)
                return
            while True:
                self.on_status(self, "InProgress", "Training", None)
                returncode, stderr_tail = self._execute(code_dir, program)
                if not self._interrupted.is_set() or self.stop_requested:
                    break
                self._restart_after_interruption()
            if self.stop_requested:
                self.on_status(self, "Stopped", "Stopped", None)
                return
            if returncode == "timeout":
                self.on_status(self, "Stopped", "MaxRuntimeExceeded", None)
                return
            if returncode != 0:
                raise TrainingFailed(_failure_reason(returncode, stderr_tail, program))
            self.on_status(self, "InProgress", "Uploading", None)
            self._upload_outputs()
            self.on_status(self, "Completed", "Completed", None)
        except TrainingFailed as error:
            self.on_status(self, "Failed", "Failed", str(error)[-FAILURE_REASON_MAX:])
        except Exception as error:  # any other problem still ends the job, as SageMaker's would
            self._log(f"[local sagemaker] internal error: {error!r}")
            self.on_status(self, "Failed", "Failed", f"InternalServerError: {error!r}"[:FAILURE_REASON_MAX])

    def _prepare(self) -> tuple[Path, str]:
        for sub in ("input/data", "input/config", "model", "output/data"):
            (self.job_dir / sub).mkdir(parents=True, exist_ok=True)
        for path in (self.checkpoint_dir, self.tensorboard_dir):
            path.mkdir(parents=True, exist_ok=True)
        for channel in self.request.get("InputDataConfig") or []:
            self._download_channel(channel)
        checkpoint_uri = (self.request.get("CheckpointConfig") or {}).get("S3Uri")
        if checkpoint_uri:
            self._download_prefix(checkpoint_uri, self.checkpoint_dir, required=False)
        hps = self.request.get("HyperParameters") or {}
        program = str(decode_hyperparameter(hps.get("sagemaker_program", '"train.py"')))
        submit = hps.get("sagemaker_submit_directory")
        if submit is None:
            return self.training_code_dir, program
        code_dir = self.job_dir / "code"
        code_dir.mkdir(exist_ok=True)
        source = str(decode_hyperparameter(submit))
        if source.startswith("s3://"):
            bucket, key = _split_s3(source)
            archive = self.job_dir / "sourcedir.tar.gz"
            self._s3_download(bucket, key, archive, f"sagemaker_submit_directory {source}")
            with tarfile.open(archive) as tar:
                tar.extractall(code_dir, filter="data")
        else:
            shutil.copytree(Path(source.removeprefix("file://")), code_dir, dirs_exist_ok=True)
        return code_dir, program

    def _restart_after_interruption(self) -> None:
        """What SageMaker does after a spot interruption: a new instance, whose checkpoint dir
        starts as CheckpointConfig.S3Uri holds it (the job's data is still downloaded here)."""
        self.interruptions += 1
        self._interrupted.clear()
        self.on_status(self, "InProgress", "Interrupted", None)
        self._log(f"[local sagemaker] spot interruption {self.interruptions}: restarting the job")
        for directory in (self.checkpoint_dir, self.job_dir / "model", self.job_dir / "output/data"):
            shutil.rmtree(directory, ignore_errors=True)
            directory.mkdir(parents=True)
        self.tensorboard_dir.mkdir(parents=True, exist_ok=True)
        self._synced.clear()
        self.on_status(self, "InProgress", "Downloading", None)
        checkpoint_uri = (self.request.get("CheckpointConfig") or {}).get("S3Uri")
        if checkpoint_uri:
            self._download_prefix(checkpoint_uri, self.checkpoint_dir, required=False)

    def _sync_checkpoints_while(self, process: subprocess.Popen[bytes]) -> None:
        """Upload new or changed checkpoint files while `process` runs (not after an interruption:
        what the lost instance wrote last is lost with it)."""
        checkpoint_uri = (self.request.get("CheckpointConfig") or {}).get("S3Uri")
        if not checkpoint_uri:
            return
        while True:
            try:
                process.wait(timeout=CHECKPOINT_SYNC_S)
                return
            except subprocess.TimeoutExpired:
                pass
            if self._interrupted.is_set():
                return
            try:
                self._upload_tree(self.checkpoint_dir, checkpoint_uri, only_changed=True)
            except Exception as error:  # a file renamed or removed mid-sync: the next round has it
                self._log(f"[local sagemaker] checkpoint sync: {error!r}")

    def _download_channel(self, channel: dict[str, Any]) -> None:
        name = channel["ChannelName"]
        source = (channel.get("DataSource") or {}).get("S3DataSource")
        if not source:
            raise TrainingFailed(f"ClientError: channel {name}: only S3DataSource is emulated locally")
        data_type = source.get("S3DataType", "S3Prefix")
        if data_type == "ManifestFile":
            self._download_manifest(source["S3Uri"], self.job_dir / "input/data" / name)
            return
        if data_type != "S3Prefix":
            raise TrainingFailed(f"ClientError: channel {name}: S3DataType {data_type} is not emulated")
        self._download_prefix(source["S3Uri"], self.job_dir / "input/data" / name, required=True)

    def _download_manifest(self, uri: str, target: Path) -> None:
        """S3DataType ManifestFile (botocore's S3DataSource.S3Uri doc): a JSON array, first
        {"prefix": "s3://..."}, then keys relative to it; each lands at <channel>/<relative key>."""
        bucket, key = _split_s3(uri)
        manifest_path = self.job_dir / "input" / "manifest.json"
        self._s3_download(bucket, key, manifest_path, f"manifest {uri}")
        try:
            head, *suffixes = json.loads(manifest_path.read_text())
            prefix = head["prefix"]
        except (ValueError, TypeError, KeyError) as error:
            raise TrainingFailed(
                f"ClientError: manifest {uri} is not a SageMaker manifest: {error}"
            ) from error
        if not suffixes:
            raise TrainingFailed(f"ClientError: manifest {uri} lists no objects")
        data_bucket, data_prefix = _split_s3(prefix)
        for suffix in suffixes:
            self._s3_download(data_bucket, data_prefix + suffix, target / suffix, f"manifest {uri} entry")
        self._log(f"[local sagemaker] downloaded {len(suffixes)} objects listed in {uri} to {target}")

    def _download_prefix(self, uri: str, target: Path, required: bool) -> None:
        bucket, prefix = _split_s3(uri)
        target.mkdir(parents=True, exist_ok=True)
        found = 0
        try:
            pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for page in pages:
                for item in page.get("Contents", []):
                    relative = item["Key"][len(prefix) :].lstrip("/") or item["Key"].rsplit("/", 1)[-1]
                    if item["Key"].endswith("/"):
                        continue
                    self._s3_download(bucket, item["Key"], target / relative, uri)
                    found += 1
        except self.s3.exceptions.NoSuchBucket as error:
            if required:
                raise TrainingFailed(
                    f"ClientError: Data download failed: bucket of {uri} does not exist"
                ) from error
        if required and not found:
            raise TrainingFailed(
                f'ClientError: Data download failed: No S3 objects found under S3 URL "{uri}"'
            )
        self._log(f"[local sagemaker] downloaded {found} objects from {uri} to {target}")

    def _s3_download(self, bucket: str, key: str, path: Path, what: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.s3.download_file(bucket, key, str(path))
        except Exception as error:
            raise TrainingFailed(
                f"ClientError: could not download {what} (s3://{bucket}/{key}): {error}"
            ) from error

    def _environment(self, code_dir: Path, program: str) -> dict[str, str]:
        hps = {k: decode_hyperparameter(v) for k, v in (self.request.get("HyperParameters") or {}).items()}
        channels = [c["ChannelName"] for c in self.request.get("InputDataConfig") or []]
        resource = self.request.get("ResourceConfig") or {}
        env = dict(os.environ)
        env.update(self.aws_env)
        env.update(
            {
                "TRAINING_JOB_NAME": self.name,
                "TRAINING_JOB_ARN": self.arn,
                "SM_MODEL_DIR": str(self.job_dir / "model"),
                "SM_OUTPUT_DIR": str(self.job_dir / "output"),
                "SM_OUTPUT_DATA_DIR": str(self.job_dir / "output/data"),
                "SM_INPUT_DIR": str(self.job_dir / "input"),
                "SM_INPUT_CONFIG_DIR": str(self.job_dir / "input/config"),
                "SM_CHECKPOINT_DIR": str(self.checkpoint_dir),
                "SM_TENSORBOARD_DIR": str(self.tensorboard_dir),
                "SM_CHANNELS": json.dumps(channels),
                "SM_HPS": json.dumps({k: v for k, v in hps.items() if not k.startswith("sagemaker_")}),
                "SM_USER_ENTRY_POINT": program,
                "SM_MODULE_DIR": str(code_dir),
                "SM_HOSTS": json.dumps(["algo-1"]),
                "SM_CURRENT_HOST": "algo-1",
                "SM_NUM_GPUS": str(_gpu_count()),
                "SM_NUM_CPUS": str(os.cpu_count() or 1),
                "SM_CURRENT_INSTANCE_TYPE": str(resource.get("InstanceType", "local")),
                "PYTHONUNBUFFERED": "1",
                "PYTHONPATH": os.pathsep.join(filter(None, [str(code_dir), os.environ.get("PYTHONPATH")])),
            }
        )
        for channel in channels:
            env[f"SM_CHANNEL_{channel.upper()}"] = str(self.job_dir / "input/data" / channel)
        for key, value in hps.items():
            if not key.startswith("sagemaker_"):
                env[f"SM_HP_{key.upper()}"] = value if isinstance(value, str) else json.dumps(value)
        env.update(self.request.get("Environment") or {})
        return env

    def _execute(self, code_dir: Path, program: str) -> tuple[int | str, list[str]]:
        script = code_dir / program
        if not script.is_file():
            raise TrainingFailed(
                f"AlgorithmError: entry point {program} not found in the source directory {code_dir}"
            )
        command = [sys.executable, str(script), *cli_args(self.request.get("HyperParameters") or {})]
        self._log(f"[local sagemaker] running: {' '.join(command)} (cwd {code_dir})")
        try:
            # In its own process group (ChildProcesses), so stop() ends its children too.
            self.process = self.processes.start(
                command,
                cwd=code_dir,
                env=self._environment(code_dir, program),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        except StackStopping:
            self.stop_requested = True  # the server is shutting down: the job ends Stopped
            return "stopped", []
        if self.stop_requested:  # StopTrainingJob arrived while the process was starting
            terminate_process_group(self.process, 10.0)
        stderr_tail: deque[str] = deque(maxlen=30)
        readers = [
            threading.Thread(target=self._pump, args=(self.process.stdout, None), daemon=True),
            threading.Thread(target=self._pump, args=(self.process.stderr, stderr_tail), daemon=True),
            threading.Thread(target=self._sync_checkpoints_while, args=(self.process,), daemon=True),
        ]
        for reader in readers:
            reader.start()
        max_runtime = (self.request.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds")
        try:
            returncode: int | str = self.process.wait(timeout=max_runtime)
        except subprocess.TimeoutExpired:
            terminate_process_group(self.process, 10.0)
            returncode = "timeout"
        for reader in readers:
            reader.join(10.0)
        return returncode, list(stderr_tail)

    def _pump(self, stream: IO[bytes], tail: deque[str] | None) -> None:
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self._log(line)
            self.metrics.feed(line)
            if tail is not None:
                tail.append(line)

    def _log(self, line: str) -> None:
        with self._log_lock, self.log_path.open("a", encoding="utf-8") as log:
            log.write(line + "\n")

    def _upload_outputs(self) -> None:
        output_path = self.request["OutputDataConfig"]["S3OutputPath"].rstrip("/")
        bucket, prefix = _split_s3(f"{output_path}/{self.name}/output/")
        uploads = [("model", "model.tar.gz"), ("output/data", "output.tar.gz")]
        for directory, archive_name in uploads:
            source = self.job_dir / directory
            if archive_name == "output.tar.gz" and not any(source.iterdir()):
                continue
            archive = self.job_dir / archive_name
            with tarfile.open(archive, "w:gz") as tar:
                for item in sorted(source.iterdir()):
                    tar.add(item, arcname=item.name)
            self.s3.upload_file(str(archive), bucket, prefix + archive_name)
        checkpoint_uri = (self.request.get("CheckpointConfig") or {}).get("S3Uri")
        if checkpoint_uri:
            self._upload_tree(self.checkpoint_dir, checkpoint_uri)
        tensorboard_uri = (self.request.get("TensorBoardOutputConfig") or {}).get("S3OutputPath")
        if tensorboard_uri:
            self._upload_tree(
                self.tensorboard_dir, f"{tensorboard_uri.rstrip('/')}/{self.name}/tensorboard-output"
            )

    def _upload_tree(self, directory: Path, uri: str, only_changed: bool = False) -> None:
        bucket, prefix = _split_s3(uri.rstrip("/") + "/")
        for path in sorted(directory.rglob("*")):
            if not path.is_file():
                continue
            stat = path.stat()
            if only_changed and self._synced.get(path) == (stat.st_size, stat.st_mtime_ns):
                continue
            self.s3.upload_file(str(path), bucket, prefix + path.relative_to(directory).as_posix())
            self._synced[path] = (stat.st_size, stat.st_mtime_ns)


@functools.cache
def _gpu_count() -> int:
    """GPUs on this machine, as SM_NUM_GPUS reports them in a container (no torch import here)."""
    if not shutil.which("nvidia-smi"):
        return 0
    try:
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(line.startswith("GPU ") for line in listing.stdout.splitlines())


def _failure_reason(returncode: int | str, stderr_tail: list[str], program: str) -> str:
    message = "\n".join(line for line in stderr_tail if line.strip())
    head = f"AlgorithmError: ExecuteUserScriptError:\nExitCode {returncode}\nCommand {program}\nErrorMessage "
    room = FAILURE_REASON_MAX - len(head) - 2
    return f'{head}"{message[-room:]}"'


def _split_s3(uri: str) -> tuple[str, str]:
    try:
        return split_s3_uri(uri)
    except ValueError as error:
        raise TrainingFailed(f"ClientError: {error}") from error
