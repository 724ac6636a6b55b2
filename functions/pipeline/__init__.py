"""Everything the hyenaflow Lambdas do, shared by their thin handlers (boto3 + Powertools + pydantic).

- `ingest/`, `genbank/`, `training/`: the logic, one subpackage per concept, each with the
  settings of the functions that run it.
- `state_table` (every item of the DynamoDB table), `aws_clients`, `alerts`: data access.
- `settings` (the base every function's settings extend), `dependencies` (clients, state table
  and alerts in one object), `events` (the EventBridge envelope), `idempotency`,
  `observability`, `rate_limiter`, `aws_errors`, `dna_alphabet` (a link to
  hyenadna/alphabet.py) and `sequence_files` (a link to training_job/sequence_files.py): what
  all of them use.

Imports point down: a function folder's `handler.py` -> the logic -> data access. Nothing here
imports a function folder, and no function folder imports another
(tests/unit/test_lambda_layout.py checks both).
"""
