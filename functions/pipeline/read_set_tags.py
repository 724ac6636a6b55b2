"""The read-set tags that say what a read set's records are (docs/contracts.md, "Read-set
metadata"): ingest writes them, the model registry reads them back. Each tag holds the distinct
values of the file's records, joined by its separator."""

from __future__ import annotations

ORGANISM_TAG = "hyenaflow:organism"
TAXONOMY_ID_TAG = "hyenaflow:taxonomy-id"
MOLECULE_TYPE_TAG = "hyenaflow:molecule-type"
# Organisms are joined by "; " (a name may hold a comma), ids and molecule types by ", ".
SEPARATORS = {ORGANISM_TAG: "; ", TAXONOMY_ID_TAG: ", ", MOLECULE_TYPE_TAG: ", "}


def joined(tag: str, values: tuple[str, ...] | list[str]) -> str:
    return SEPARATORS[tag].join(values)


def split(tag: str, value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(SEPARATORS[tag].strip()) if part.strip()]
