"""The training job reads straight from S3 (moto server over HTTP): read-set tiles under a prefix,
streamed with boto3, and a warm-start model.tar.gz."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

import boto3
import numpy as np
import pytest
import torch
from moto.server import ThreadedMotoServer

from hyenadna import HyenaDNAForCausalLM, config_for_size, encode_dna
from sequence_data import load_records
from tests.support.fastq_tiles import records_to_fastq
from training_artifact import fetch_model_dir

REPO = Path(__file__).resolve().parents[2]
BUCKET = "omics-access-point-alias-s3alias"


@pytest.fixture(scope="module")
def s3() -> Iterator:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    saved = dict(os.environ)
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": f"http://{host}:{port}",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    )
    try:
        client = boto3.client("s3")
        client.create_bucket(Bucket=BUCKET)
        yield client
    finally:
        os.environ.clear()
        os.environ.update(saved)
        server.stop()


def genome(path: Path) -> tuple[str, bytes]:
    header, *lines = path.read_bytes().splitlines()
    return header[1:].split()[0].decode(), b"".join(lines).upper()


def test_read_sets_under_an_s3_prefix_are_streamed_and_rejoined(s3):
    lambda_id, lambda_bases = genome(REPO / "data" / "lambda_phage_NC_001416.fa")
    phix_id, phix_bases = genome(REPO / "data" / "phix174_NC_001422.fa")
    prefix = "111122223333/sequenceStore/1234567890/"
    tiles = b"".join(records_to_fastq([(lambda_id, lambda_bases)], tile_len=4000))
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}readSet/rs1/lambda.fastq.gz", Body=gzip.compress(tiles))
    s3.put_object(
        Bucket=BUCKET,
        Key=f"{prefix}readSet/rs2/phix.fastq.gz",
        Body=gzip.compress(b"".join(records_to_fastq([(phix_id, phix_bases)]))),
    )
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}readSet/rs2/import-manifest.json", Body=b"{}")
    s3.put_object(Bucket=BUCKET, Key="elsewhere/other.fastq.gz", Body=b"not under the prefix")

    records = {r.record_id: r for r in load_records(f"s3://{BUCKET}/{prefix}")}
    assert sorted(records) == sorted([lambda_id, phix_id])
    np.testing.assert_array_equal(records[lambda_id].tokens, encode_dna(lambda_bases))
    np.testing.assert_array_equal(records[phix_id].tokens, encode_dna(phix_bases))
    assert records[lambda_id].source == f"s3://{BUCKET}/{prefix}readSet/rs1/lambda.fastq.gz:1"


def test_warm_start_model_tar_gz_from_s3_loads_the_same_weights(s3, tmp_path):
    model = HyenaDNAForCausalLM(config_for_size("tiny", n_layer=1)).eval()
    model.save_pretrained(tmp_path / "model")
    packed = io.BytesIO()
    with tarfile.open(fileobj=packed, mode="w:gz") as archive:
        for path in (tmp_path / "model").iterdir():
            archive.add(path, arcname=path.name)
    s3.put_object(Bucket=BUCKET, Key="models/job-1/output/model.tar.gz", Body=packed.getvalue())

    fetched = fetch_model_dir(f"s3://{BUCKET}/models/job-1/output/model.tar.gz", tmp_path / "scratch")
    reloaded = HyenaDNAForCausalLM.from_pretrained(fetched).eval()
    input_ids = torch.from_numpy(encode_dna(b"ACGTACGGTTACN" * 8)[None])
    with torch.no_grad():
        torch.testing.assert_close(reloaded(input_ids=input_ids).logits, model(input_ids=input_ids).logits)


def test_warm_start_source_without_a_model_says_what_is_missing(s3, tmp_path):
    s3.put_object(Bucket=BUCKET, Key="empty-model/readme.txt", Body=b"")
    with pytest.raises(SystemExit, match="no config.json there"):
        fetch_model_dir(f"s3://{BUCKET}/empty-model/", tmp_path)
