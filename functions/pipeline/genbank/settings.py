"""poll_genbank's settings (pipeline.settings explains the scheme)."""

from pydantic import Field

from pipeline.settings import PipelineSettings

DEFAULT_EUTILS_BASE_URL = "https://eutils.ncbi.nlm.nih.gov/entrez/eutils/"


class PollSettings(PipelineSettings):
    # An Entrez query, e.g. "Caudoviricetes[Organism] AND complete genome[Title]".
    genbank_query: str = Field(min_length=1)
    genbank_db: str = "nuccore"
    genbank_batch_size: int = Field(default=100, gt=0, le=10_000)
    # Caps on one run's FASTA object; the template sets the byte cap to ingest's MAX_INPUT_BYTES.
    genbank_max_records_per_run: int = Field(default=500, gt=0)
    genbank_max_bytes_per_run: int = Field(default=5 * 1024**3, gt=0)
    genbank_initial_lookback_days: int = Field(default=7, gt=0)
    ncbi_api_key_parameter: str | None = None  # SSM SecureString name; with a key NCBI allows 10 req/s
    ncbi_email: str | None = None
    ncbi_tool: str = "hyenaflow"
    eutils_base_url: str = DEFAULT_EUTILS_BASE_URL
