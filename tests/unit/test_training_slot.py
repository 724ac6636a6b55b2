"""The training slot in the state table: one job at a time, one coalesced follow-up, no double work.

DynamoDB is moto's in-process mock here (conditional writes and transactions are what is tested);
the handlers are tested against a moto server in tests/integration.
"""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from pipeline.state_table import ACTIVATING, IDLE, IMPORT_JOB, RUNNING, TRAINING_JOB, Claim, PipelineState


@pytest.fixture
def state(monkeypatch: pytest.MonkeyPatch) -> Iterator[PipelineState]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        ddb.create_table(
            TableName="state",
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        yield PipelineState(ddb, "state")


def _marker(job_id: str) -> tuple[str, str, dict]:
    return (IMPORT_JOB, job_id, {"status": "COMPLETED"})


def test_first_claim_takes_the_slot_and_a_second_trigger_must_wait(state: PipelineState) -> None:
    assert state.claim(trigger="1", state=RUNNING, job_name="job-1", marker=_marker("1")) is Claim.CLAIMED
    assert state.claim(trigger="2", state=RUNNING, job_name="job-2", marker=_marker("2")) is Claim.BUSY
    slot = state.slot()
    assert (slot.state, slot.job_name, slot.trigger) == (RUNNING, "job-1", "1")


def test_replayed_trigger_is_recognised_whatever_the_slot_state(state: PipelineState) -> None:
    state.claim(trigger="1", state=RUNNING, job_name="job-1", marker=_marker("1"))
    assert (
        state.claim(trigger="1", state=RUNNING, job_name="job-1", marker=_marker("1"))
        is Claim.ALREADY_HANDLED
    )
    state.release(job_name="job-1", marker=(TRAINING_JOB, "job-1", {}))
    assert (
        state.claim(trigger="1", state=RUNNING, job_name="job-1", marker=_marker("1"))
        is Claim.ALREADY_HANDLED
    )
    assert state.slot().state == IDLE


def test_many_waiting_triggers_coalesce_into_one_follow_up(state: PipelineState) -> None:
    state.claim(trigger="1", state=RUNNING, job_name="job-1", marker=_marker("1"))
    for trigger in ("2", "3", "4"):
        assert state.mark_pending(trigger=trigger, marker=_marker(trigger)) is Claim.PENDING
    assert state.mark_pending(trigger="3", marker=_marker("3")) is Claim.ALREADY_HANDLED

    assert state.release(job_name="job-1", marker=(TRAINING_JOB, "job-1", {})) is Claim.CLAIMED
    slot = state.slot()
    assert (slot.state, slot.pending, slot.pending_trigger) == (IDLE, True, "2")

    assert state.claim(trigger="2", state=RUNNING, job_name="job-2", from_pending=True) is Claim.CLAIMED
    assert state.claim(trigger="2", state=RUNNING, job_name="job-2", from_pending=True) is Claim.BUSY
    slot = state.slot()
    assert (slot.state, slot.job_name, slot.pending) == (RUNNING, "job-2", False)


def test_pending_cannot_be_recorded_on_an_idle_slot(state: PipelineState) -> None:
    # Start would be lost: the caller has to claim instead (request_training loops on BUSY).
    assert state.mark_pending(trigger="1", marker=_marker("1")) is Claim.BUSY
    assert state.marker(IMPORT_JOB, "1") is None


def test_release_by_a_job_that_does_not_hold_the_slot_only_marks_it(state: PipelineState) -> None:
    state.claim(trigger="2", state=RUNNING, job_name="job-2", marker=_marker("2"))
    assert state.release(job_name="job-old", marker=(TRAINING_JOB, "job-old", {})) is Claim.BUSY
    assert state.slot().job_name == "job-2"
    assert state.release(job_name="job-old", marker=(TRAINING_JOB, "job-old", {})) is Claim.ALREADY_HANDLED


def test_activation_moves_to_running_only_for_its_own_trigger(state: PipelineState) -> None:
    state.claim(trigger="1", state=ACTIVATING, job_name=None, marker=_marker("1"))
    assert state.record_activation_jobs(trigger="1", job_ids=["7000000000"])
    assert state.mark_pending(trigger="2", marker=_marker("2")) is Claim.PENDING
    assert not state.activation_done(trigger="2", job_name="job-2")
    assert state.activation_done(trigger="1", job_name="job-1")
    slot = state.slot()
    assert (slot.state, slot.job_name, slot.pending_trigger) == (RUNNING, "job-1", "2")


def test_abandoned_activation_keeps_its_trigger_pending_and_counts_the_failure(state: PipelineState) -> None:
    state.claim(trigger="1", state=ACTIVATING, job_name=None, marker=_marker("1"))
    assert state.abandon_activation(trigger="1")
    slot = state.slot()
    assert (slot.state, slot.pending, slot.pending_trigger, slot.activation_failures) == (IDLE, True, "1", 1)


def test_serving_model_keeps_the_one_it_replaced(state: PipelineState) -> None:
    state.set_serving_model({"model_name": "m1", "eval_perplexity": 3.5})
    state.set_serving_model({"model_name": "m2", "eval_perplexity": 3.25})
    serving = state.serving_model()
    assert serving["model_name"] == "m2" and serving["eval_perplexity"] == 3.25
    assert serving["previous"]["model_name"] == "m1" and serving["previous"]["eval_perplexity"] == 3.5


def test_redeploying_the_serving_model_keeps_its_history(state: PipelineState) -> None:
    state.set_serving_model({"model_name": "m1", "eval_perplexity": 3.5})
    state.set_serving_model({"model_name": "m2", "eval_perplexity": 3.25})
    state.set_serving_model({"model_name": "m2", "eval_perplexity": 3.25})  # a replayed deploy
    assert state.serving_model()["previous"]["model_name"] == "m1"
