"""Ingest: an uploaded FASTA or GenBank/EMBL flat file (plain or gzip), validated while
streaming, becomes FASTQ.gz tiles in staged/ and one HealthOmics read-set import."""
