"""GenBank: new or updated records of an Entrez query, fetched through E-utilities into
incoming/genbank/ (where ingest picks them up)."""
