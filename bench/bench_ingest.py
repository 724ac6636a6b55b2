"""Benchmark ingest_fasta's streaming FASTA -> FASTQ.gz path: input MB/s and peak RSS.

    python bench/bench_ingest.py                       # 1 GiB generated FASTA, local sink, all CPUs
    python bench/bench_ingest.py --cores 1             # pinned to one CPU (a 1769 MB Lambda has ~1 vCPU)
    python bench/bench_ingest.py --gzip-level 0        # stored gzip: CPU cost without deflate
    python bench/bench_ingest.py --moto --size-mb 256  # through a moto S3 server (separate process) end to end
    python bench/bench_ingest.py --components --cores 1  # CPU cost of parse/validate/tile vs gzip

The FASTA is generated once under --workdir (default /tmp/hyenaflow-bench) and reused:
chromosome-sized records of 80-column lines with soft-masked (lowercase) stretches and N runs.
Each measurement runs in a fresh subprocess, so peak RSS (ru_maxrss) is that of the ingest
code alone, not of the generator or of moto.

"local" mode reads the file in 1 MiB chunks (like the S3 streaming body) and hands the
multipart parts to a sink that only counts bytes: it measures the CPU path (parse, validate,
tile, gzip) without network. "moto" mode runs `ingest_uploaded_fasta` against a moto S3
server over HTTP, with the HealthOmics call answered in-process.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "functions"), str(REPO)]

MIB = 1024 * 1024
_BASES = bytes(b"ACGT"[i & 3] for i in range(256))


def generate_fasta(path: Path, size_mb: int) -> None:
    """Random genome-like FASTA of ~size_mb MiB (fast: os.urandom + bytes.translate)."""
    if path.exists() and path.stat().st_size >= size_mb * MIB * 0.98:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    record_bases = 64 * MIB
    written, record = 0, 0
    with open(path.with_suffix(".tmp"), "wb") as out:
        while written < size_mb * MIB:
            record += 1
            out.write(b">chr%d synthetic benchmark record\n" % record)
            remaining = min(record_bases, int((size_mb * MIB - written) * 80 / 81))
            while remaining > 0:
                n = min(remaining, 8 * MIB)
                seq = bytearray(os.urandom(n).translate(_BASES))
                seq[n // 4 : n // 4 + n // 10] = seq[n // 4 : n // 4 + n // 10].lower()  # soft-masked repeat
                seq[n // 2 : n // 2 + 1000] = b"N" * 1000  # assembly gap
                block = b"\n".join(seq[i : i + 80] for i in range(0, n, 80)) + b"\n"
                out.write(block)
                written += len(block)
                remaining -= n
    path.with_suffix(".tmp").rename(path)


class CountingS3:
    """Stands in for S3 multipart calls in local mode: counts bytes, keeps nothing."""

    def __init__(self) -> None:
        self.part_bytes = 0
        self.parts = 0

    def create_multipart_upload(self, **_: Any) -> dict[str, str]:
        return {"UploadId": "local"}

    def upload_part(self, Body: bytes, **_: Any) -> dict[str, str]:  # noqa: N803 - boto3 argument name
        self.part_bytes += len(Body)
        self.parts += 1
        return {"ETag": f'"{self.parts}"'}

    def complete_multipart_upload(self, **_: Any) -> dict[str, Any]:
        return {}

    def abort_multipart_upload(self, **_: Any) -> dict[str, Any]:
        return {}

    def delete_object(self, **_: Any) -> dict[str, Any]:
        return {}


def measure_local(fasta: Path, gzip_level: int) -> dict[str, Any]:
    from pipeline.ingest import uploaded_fasta as ingest
    from pipeline.ingest.staging import StagedFastqUpload
    from pipeline.ingest.uploaded_fasta import READ_CHUNK_BYTES

    rss_after_imports = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    sink = CountingS3()
    staged = StagedFastqUpload(sink, "bench", "staged/bench", max_object_bytes=1 << 40, gzip_level=gzip_level)
    start, cpu_start = time.perf_counter(), time.process_time()
    with open(fasta, "rb") as body:
        summary, keys = ingest._stream_to_staging(_Reader(body, READ_CHUNK_BYTES), staged)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    size = fasta.stat().st_size
    return {
        "mode": "local",
        "input_mb": round(size / 1e6, 1),
        "seconds": round(elapsed, 2),
        "input_mb_per_s": round(size / 1e6 / elapsed, 1),
        "cpu_seconds": round(cpu, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "rss_after_imports_mb": round(rss_after_imports, 1),
        "records": summary.records,
        "bases": summary.bases,
        "fastq_mb": round(staged.fastq_bytes / 1e6, 1),
        "gzip_mb": round(staged.gzip_bytes / 1e6, 1),
        "s3_parts": sink.parts,
    }


class _Reader:
    def __init__(self, handle: Any, chunk: int) -> None:
        self._handle = handle

    def read(self, amount: int) -> bytes:
        return self._handle.read(amount)


def measure_components(fasta: Path) -> dict[str, Any]:
    """CPU seconds per stage on the first 64 MiB: where the time goes."""
    from pipeline.ingest.fasta_stream import FastaToFastq
    from pipeline.ingest.staging import gzip_member

    with open(fasta, "rb") as handle:
        chunks = [handle.read(MIB) for _ in range(64)]
    parser = FastaToFastq()
    start = time.process_time()
    fastq = [parser.feed(chunk) for chunk in chunks]
    parse_s = time.process_time() - start
    blocks = [b"".join(fastq[i : i + 2]) for i in range(0, len(fastq), 2)]
    rates = {"parse_validate_tile_mb_per_cpu_s": round(64 * MIB / 1e6 / parse_s, 1)}
    for level in (0, 1):
        start = time.process_time()
        for block in blocks:
            gzip_member(block, level)
        rates[f"gzip_level{level}_input_mb_per_cpu_s"] = round(
            64 * MIB / 1e6 / (time.process_time() - start), 1
        )
    return {"mode": "components", **rates}


def measure_moto(fasta: Path, gzip_level: int, endpoint: str) -> dict[str, Any]:
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    )
    import boto3
    from boto3.s3.transfer import TransferConfig

    from pipeline.aws_clients import client
    from pipeline.ingest.settings import IngestSettings
    from pipeline.ingest.uploaded_fasta import UploadedObject, ingest_uploaded_fasta
    from tests.support.lambda_env import FakeOmicsImports

    s3 = client("s3")
    s3.create_bucket(Bucket="bench")
    boto3.client("s3").upload_file(
        str(fasta), "bench", "incoming/bench.fa", Config=TransferConfig(multipart_threshold=1 << 40)
    )
    etag = s3.head_object(Bucket="bench", Key="incoming/bench.fa")["ETag"].strip('"')
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    FakeOmicsImports().attach(client("omics"))
    settings = IngestSettings(
        state_table="bench-state",
        data_bucket="bench",
        alert_topic_arn="arn:aws:sns:us-east-1:123456789012:x",
        sequence_store_id="1234567890",
        omics_import_role_arn="arn:aws:iam::123456789012:role/x",
        max_input_bytes=1 << 40,
        staging_gzip_level=gzip_level,
    )
    start, cpu_start = time.perf_counter(), time.process_time()
    result = ingest_uploaded_fasta(
        UploadedObject("bench", "incoming/bench.fa", etag, fasta.stat().st_size),
        s3=s3,
        omics=client("omics"),
        settings=settings,
        alert=print,
    )
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    size = fasta.stat().st_size
    return {
        "mode": "moto",
        "status": result["status"],
        "input_mb": round(size / 1e6, 1),
        "seconds": round(elapsed, 2),
        "input_mb_per_s": round(size / 1e6 / elapsed, 1),
        "cpu_seconds": round(cpu, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "rss_before_ingest_mb": round(rss_before, 1),
        "gzip_mb": round(result.get("gzipBytes", 0) / 1e6, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/hyenaflow-bench"))
    parser.add_argument("--cores", type=int, default=0, help="pin to this many CPUs (0: all)")
    parser.add_argument("--gzip-level", type=int, default=1)
    parser.add_argument(
        "--moto", action="store_true", help="through a moto S3 server instead of a local sink"
    )
    parser.add_argument(
        "--components", action="store_true", help="CPU cost of parsing and of gzip, separately"
    )
    parser.add_argument("--child", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()

    fasta = args.workdir / f"bench_{args.size_mb}mb.fa"
    if args.child:
        if args.cores:
            os.sched_setaffinity(0, set(range(args.cores)))
        if args.child == "local":
            print(json.dumps(measure_local(fasta, args.gzip_level)))
        elif args.child == "components":
            print(json.dumps(measure_components(fasta)))
        else:
            print(json.dumps(measure_moto(fasta, args.gzip_level, args.child)))
        return

    generate_fasta(fasta, args.size_mb)
    child = [sys.executable, __file__, "--size-mb", str(args.size_mb), "--workdir", str(args.workdir)]
    child += ["--cores", str(args.cores), "--gzip-level", str(args.gzip_level)]
    server = None
    try:
        if args.moto:
            port = 5000 + os.getpid() % 1000
            server = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            _wait_for_port(port)
            child += ["--child", f"http://127.0.0.1:{port}"]
        else:
            child += ["--child", "components" if args.components else "local"]
        output = subprocess.run(child, check=True, capture_output=True, text=True).stdout
    finally:
        if server is not None:
            server.terminate()
            server.wait()
    result = json.loads(output.strip().splitlines()[-1])
    result.update(cores=args.cores or len(os.sched_getaffinity(0)), gzip_level=args.gzip_level)
    print(json.dumps(result, indent=2))


def _wait_for_port(port: int, deadline_s: float = 30.0) -> None:
    import socket

    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"moto server did not open port {port} within {deadline_s} s")


if __name__ == "__main__":
    main()
