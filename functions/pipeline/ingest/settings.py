"""ingest_fasta's settings (pipeline.settings explains the scheme)."""

from pydantic import Field

from pipeline.settings import PipelineSettings

GIB = 1024**3


class IngestSettings(PipelineSettings):
    sequence_store_id: str = Field(pattern=r"^[0-9]{10,36}$")
    omics_import_role_arn: str = Field(pattern=r"^arn:")
    max_input_bytes: int = Field(default=5 * GIB, gt=0)
    sample_id: str | None = None  # default: the file name without its extensions
    subject_id: str | None = None
    # Staged FASTQ.gz bytes per read-set source; a larger file is split over several sources.
    max_source_bytes: int = Field(default=2 * GIB, gt=0)
    # gzip level of the staged tiles: 1-3 use ISA-L (pipeline.ingest.staging), 0 is stored, 4-9 zlib.
    staging_gzip_level: int = Field(default=1, ge=0, le=9)
    # StartReadSetImportJob calls per second for the whole function (HealthOmics' quota: 5 TPS), and
    # the function's reserved concurrency (0: none). Each execution environment takes an equal
    # share, so all of them together stay under OMICS_TPS.
    omics_tps: float = Field(default=4.0, gt=0)
    max_concurrency: int = Field(default=0, ge=0)

    @property
    def omics_tps_per_environment(self) -> float:
        return self.omics_tps / max(1, self.max_concurrency)
