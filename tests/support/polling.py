"""Waiting in tests: poll with a deadline, never sleep a fixed time.

A fixed sleep is too short on a busy machine and wasted on a quiet one, and a wall-clock upper
bound makes a test fail because the machine is slow, not because the code is wrong. Tests use the
project's one polling helper, the same the demo uses.
"""

from typing import Any

from hyenaflow.local.polling import wait_for

__all__ = ["ended_training_job", "wait_for"]

TRAINING_ENDED = ("Completed", "Failed", "Stopped")


def ended_training_job(sagemaker: Any, timeout_s: float) -> dict[str, Any]:
    """DescribeTrainingJob of the first training job start_training creates, once it has ended."""
    job_name = wait_for(
        lambda: [j["TrainingJobName"] for j in sagemaker.list_training_jobs()["TrainingJobSummaries"]],
        "start_training to create the training job",
        timeout_s,
        interval_s=0.5,
    )[0]
    return wait_for(
        lambda: sagemaker.describe_training_job(TrainingJobName=job_name),
        f"training job {job_name} to end",
        timeout_s,
        until=lambda job: job["TrainingJobStatus"] in TRAINING_ENDED,
        interval_s=0.5,
    )
