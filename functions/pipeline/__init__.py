"""Everything the hyenaflow Lambdas do, shared by their thin handlers (boto3 + Powertools only).

Imports point down: a function folder's `handler.py` -> the logic here (`ingest/`, `genbank/`,
`training_slot`, `deployment`, `reconciler`) -> data access (`state_table`, `aws_clients`).
Nothing here imports a function folder, and no function folder imports another
(tests/unit/test_lambda_layout.py checks both).
"""
