"""HealthOmics requests and responses: moto parses each request and serialises each answer from
botocore's omics service model (`automated_parameter_parsing` + `ActionResult`), so shapes, status
codes and error codes are those boto3 expects."""

from __future__ import annotations

from typing import Any

from moto.core.common_types import TYPE_RESPONSE
from moto.core.responses import ActionResult, BaseResponse

from hyenaflow.local.omics.exceptions import ThrottlingException, ValidationException
from hyenaflow.local.omics.models import OmicsBackend, members, omics_backends
from hyenaflow.local.throttling import THROTTLING_MESSAGE, throttling


def _page(items: list[Any], max_results: int | None, next_token: str | None) -> tuple[list[Any], str | None]:
    if next_token and not next_token.isdigit():
        raise ValidationException(f"nextToken {next_token!r} is not one this service returned")
    start = int(next_token) if next_token else 0
    size = max_results or 100
    end = start + size
    return items[start:end], (str(end) if end < len(items) else None)


class OmicsResponse(BaseResponse):
    def __init__(self) -> None:
        super().__init__(service_name="omics")
        self.automated_parameter_parsing = True

    @property
    def backend(self) -> OmicsBackend:
        return omics_backends[self.current_account][self.region]

    def call_action(self) -> TYPE_RESPONSE:
        if throttling.take("omics", self._get_action()):  # a test asked for it
            return self.serialized(ActionResult(ThrottlingException(THROTTLING_MESSAGE)))
        return super().call_action()

    def create_sequence_store(self) -> ActionResult:
        store = self.backend.create_sequence_store(
            name=self._get_param("name"),
            description=self._get_param("description"),
            fallback_location=self._get_param("fallbackLocation"),
            tags=self._get_param("tags"),
            e_tag_algorithm_family=self._get_param("eTagAlgorithmFamily"),
            sse_config=self._get_param("sseConfig"),
        )
        return ActionResult(store.detail() | {"s3Access": {"s3Uri": store.s3_uri}})

    def get_sequence_store(self) -> ActionResult:
        store = self.backend.get_sequence_store(self._get_param("id"))
        s3_access = {"s3Uri": store.s3_uri, "s3AccessPointArn": store.s3_access_point_arn}
        return ActionResult(store.detail() | {"s3Access": s3_access})

    def list_sequence_stores(self) -> ActionResult:
        stores = [store.detail() for store in self.backend.sequence_stores.values()]
        page, token = _page(stores, self._get_param("maxResults"), self._get_param("nextToken"))
        return ActionResult({"sequenceStores": page, "nextToken": token})

    def start_read_set_import_job(self) -> ActionResult:
        job, created = self.backend.start_read_set_import_job(
            store_id=self._get_param("sequenceStoreId"),
            role_arn=self._get_param("roleArn"),
            sources=self._get_param("sources"),
            client_token=self._get_param("clientToken"),
        )
        # A new job is reported as SUBMITTED even if its thread has already picked it up.
        return ActionResult(job.header() | ({"status": "SUBMITTED"} if created else {}))

    def get_read_set_import_job(self) -> ActionResult:
        job = self.backend.get_import_job(self._get_param("sequenceStoreId"), self._get_param("id"))
        sources = [source.detail() for source in job.sources]
        return ActionResult(job.header() | {"sources": sources} | members(job, optional=("status_message",)))

    def list_read_set_import_jobs(self) -> ActionResult:
        store_id = self._get_param("sequenceStoreId")
        self.backend.get_sequence_store(store_id)
        wanted = (self._get_param("filter") or {}).get("status")
        jobs = [
            job.header()
            for job in self.backend.import_jobs.values()
            if job.sequence_store_id == store_id and (wanted is None or job.status == wanted)
        ]
        page, token = _page(jobs, self._get_param("maxResults"), self._get_param("nextToken"))
        return ActionResult({"importJobs": page, "nextToken": token})

    def list_read_sets(self) -> ActionResult:
        store_id = self._get_param("sequenceStoreId")
        self.backend.get_sequence_store(store_id)
        wanted = {key: value for key, value in (self._get_param("filter") or {}).items() if value}
        matching_fields = {"status", "sampleId", "subjectId", "name"}
        read_sets = [
            read_set.summary()
            for read_set in self.backend.read_sets.values()
            if read_set.sequence_store_id == store_id
            and all(
                read_set.summary().get(key) == value
                for key, value in wanted.items()
                if key in matching_fields
            )
        ]
        page, token = _page(read_sets, self._get_param("maxResults"), self._get_param("nextToken"))
        return ActionResult({"readSets": page, "nextToken": token})

    def get_read_set_metadata(self) -> ActionResult:
        read_set = self.backend.get_read_set(self._get_param("sequenceStoreId"), self._get_param("id"))
        return ActionResult(self.backend.read_set_metadata(read_set))

    def list_tags_for_resource(self) -> ActionResult:
        return ActionResult({"tags": self.backend.tags_of(self._get_param("resourceArn"))})

    def start_read_set_activation_job(self) -> ActionResult:
        sources = self._get_param("sources") or []
        job = self.backend.start_read_set_activation_job(
            store_id=self._get_param("sequenceStoreId"),
            read_set_ids=[source["readSetId"] for source in sources],
            client_token=self._get_param("clientToken"),
        )
        return ActionResult(job.header())

    def get_read_set_activation_job(self) -> ActionResult:
        job = self.backend.get_activation_job(self._get_param("sequenceStoreId"), self._get_param("id"))
        return ActionResult(
            job.header() | {"sources": job.sources} | members(job, optional=("status_message",))
        )
