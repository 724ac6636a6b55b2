"""The poll_genbank trigger event."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict


class PollTrigger(BaseModel):
    """Any schedule payload: an EventBridge "Scheduled Event", an EventBridge Scheduler input such as
    `{"time": "<aws.scheduler.scheduled-time>"}`, or `{}`. `time` (the scheduled time) ends the
    modification-date window; without it the poll uses the current time.
    """

    model_config = ConfigDict(extra="allow")

    time: datetime | None = None
