"""poll_genbank configuration: environment variables, read once and validated (common.settings)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from common.settings import load_settings
from poll_genbank.eutils import DEFAULT_BASE_URL


class PollSettings(BaseModel, frozen=True):
    data_bucket: str = Field(min_length=3)
    state_table: str = Field(min_length=3)
    alert_topic_arn: str = Field(min_length=1)
    genbank_query: str = Field(
        min_length=1
    )  # an Entrez query, e.g. "Caudoviricetes[Organism] AND complete genome[Title]"
    genbank_db: str = "nuccore"
    genbank_batch_size: int = Field(default=100, gt=0, le=10_000)
    genbank_max_records_per_run: int = Field(default=500, gt=0)
    genbank_initial_lookback_days: int = Field(default=7, gt=0)
    ncbi_api_key_parameter: str | None = None  # SSM SecureString name; with a key NCBI allows 10 req/s
    ncbi_email: str | None = None
    ncbi_tool: str = "hyenaflow"
    eutils_base_url: str = DEFAULT_BASE_URL


def load_poll_settings() -> PollSettings:
    return load_settings(PollSettings)
