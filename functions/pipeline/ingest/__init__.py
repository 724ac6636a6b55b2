"""Ingest: an uploaded FASTA(.gz), validated while streaming, becomes FASTQ.gz tiles in staged/
and one HealthOmics read-set import."""
