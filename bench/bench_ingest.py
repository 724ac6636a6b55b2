"""Benchmark ingest_fasta's streaming FASTA -> FASTQ.gz path against the AWS sample's way: MB/s and peak RSS.

    python bench/bench_ingest.py --cores 1           # the comparison below, one CPU (a 1769 MB Lambda has ~1 vCPU)
    python bench/bench_ingest.py --components --cores 1   # CPU cost per stage: parse (ours, Biopython), gzip (zlib, isal)
    python bench/bench_ingest.py --moto --size-mb 256 --cores 1   # through a moto S3 server (separate process) end to end

The comparison runs, each in a fresh subprocess pinned to --cores CPUs (so peak RSS, VmHWM from
/proc, is that row's alone), on the same generated FASTA (--size-mb, default 200 MB):

- `aws-sample style`: the original AWS sample's approach (aws-samples/genomic-language-model-
  pretraining-with-healthomics-seq-store, utilities.py): the whole FASTA read into memory as
  text, one FASTQ read per record built line by line, the FASTQ written to disk, then read back
  and gzipped (level 2) as one piece. Re-implemented here, not copied.
- `hyenaflow, zlib` and `hyenaflow, isal`: `_stream_to_staging` as ingest runs it (1 MiB reads
  like the S3 streaming body, validation, 10 kb tiles, gzip members) with the S3 multipart calls
  answered by a sink that counts bytes, with the stdlib zlib fallback and with ISA-L.
- `hyenaflow, isal` again on --rss-size-mb (default 1024 MB) for the memory bound.

The FASTA is generated once under --workdir: chromosome-sized records of 80-column lines with
soft-masked (lowercase) stretches and N runs. "MB/s" is input MB per wall-clock second; "MB per
CPU-s" divides by the process's CPU time (all threads), the figure to trust on a shared machine.
"""

from __future__ import annotations

import argparse
import io
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


def peak_rss_mb() -> float:
    """VmHWM (peak resident set) of this process, from /proc."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # pragma: no cover


def _row(name: str, size: int, elapsed: float, cpu: float, **extra: Any) -> dict[str, Any]:
    return {
        "row": name,
        "input_mb": round(size / 1e6, 1),
        "seconds": round(elapsed, 2),
        "input_mb_per_s": round(size / 1e6 / elapsed, 1),
        "cpu_seconds": round(cpu, 2),
        "input_mb_per_cpu_s": round(size / 1e6 / cpu, 1),
        "peak_rss_mb": peak_rss_mb(),
        **extra,
    }


def measure_local(fasta: Path, gzip_level: int, deflate: str) -> dict[str, Any]:
    from pipeline.ingest import uploaded_fasta as ingest
    from pipeline.ingest.staging import StagedFastqUpload
    from pipeline.ingest.uploaded_fasta import READ_CHUNK_BYTES

    rss_after_imports = peak_rss_mb()
    sink = CountingS3()
    staged = StagedFastqUpload(
        sink, "bench", "staged/bench", max_object_bytes=1 << 40, gzip_level=gzip_level, deflate=deflate
    )
    start, cpu_start = time.perf_counter(), time.process_time()
    with open(fasta, "rb") as body:
        summary, _ = ingest._stream_to_staging(body, staged)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    return _row(
        f"hyenaflow, {staged.deflater}",
        fasta.stat().st_size,
        elapsed,
        cpu,
        rss_after_imports_mb=rss_after_imports,
        records=summary.records,
        bases=summary.bases,
        fastq_mb=round(staged.fastq_bytes / 1e6, 1),
        gzip_mb=round(staged.gzip_bytes / 1e6, 1),
        s3_parts=sink.parts,
        read_chunk_bytes=READ_CHUNK_BYTES,
    )


def measure_aws_sample_style(fasta: Path, workdir: Path) -> dict[str, Any]:
    """FASTA -> FASTQ -> FASTQ.gz the way the AWS sample's utilities do it: whole file in memory as
    text, one read per record built from stripped lines, FASTQ written, then gzipped in one piece."""
    import gzip

    fastq_path, gz_path = workdir / "aws_sample_style.fq", workdir / "aws_sample_style.fq.gz"
    start, cpu_start = time.perf_counter(), time.process_time()
    fastq_path.write_text(_aws_sample_style_fastq(io.StringIO(fasta.read_text())))
    gz_path.write_bytes(gzip.compress(fastq_path.read_text().encode("utf-8"), compresslevel=2))
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    row = _row(
        "aws-sample style (in memory, gzip level 2)",
        fasta.stat().st_size,
        elapsed,
        cpu,
        fastq_mb=round(fastq_path.stat().st_size / 1e6, 1),
        gzip_mb=round(gz_path.stat().st_size / 1e6, 1),
    )
    fastq_path.unlink()
    gz_path.unlink()
    return row


def _aws_sample_style_fastq(text: Any) -> str:
    """One FASTQ read per FASTA record, built from stripped lines in memory (quality '#')."""
    fastq = io.StringIO()
    name: str | None = None
    lines: list[str] = []
    for line in text:
        line = line.strip()
        if line.startswith(">"):
            if name is not None:
                _write_read(fastq, name, lines)
            name, lines = line[1:], []
        else:
            lines.append(line)
    if name is not None:
        _write_read(fastq, name, lines)
    return fastq.getvalue()


def _write_read(fastq: Any, name: str, lines: list[str]) -> None:
    sequence = "".join(lines)
    fastq.write(f"@{name}\n{sequence}\n+\n{'#' * len(sequence)}\n")


def measure_components(fasta: Path) -> dict[str, Any]:
    """CPU seconds per stage on the first 64 MiB: where the time goes, and Biopython's FASTA parser
    (parse only: no validation, no tiles) on the same bytes."""
    from Bio.SeqIO.FastaIO import SimpleFastaParser

    from pipeline.ingest.fasta_stream import FastaToFastq
    from pipeline.ingest.staging import gzip_member

    with open(fasta, "rb") as handle:
        chunks = [handle.read(MIB) for _ in range(64)]
    size_mb = sum(map(len, chunks)) / 1e6

    def rate(work: Any) -> float:
        start = time.process_time()
        work()
        return round(size_mb / (time.process_time() - start), 1)

    fastq: list[bytes] = []
    parser = FastaToFastq()
    rates = {"ours_parse_validate_tile_mb_per_cpu_s": rate(lambda: fastq.extend(map(parser.feed, chunks)))}
    text = b"".join(chunks).decode()
    rates["biopython_simple_fasta_parser_mb_per_cpu_s"] = rate(
        lambda: sum(len(seq) for _, seq in SimpleFastaParser(io.StringIO(text)))
    )
    blocks = [fastq[i : i + 2] for i in range(0, len(fastq), 2)]  # ~4 MiB of FASTQ per member
    for deflate, level in (("zlib", 1), ("isal", 1), ("zlib", 0)):
        members: list[bytes] = []
        speed = rate(lambda: members.extend(gzip_member(b, level, deflate) for b in blocks))  # noqa: B023
        rates[f"gzip_{deflate}_level{level}_input_mb_per_cpu_s"] = speed
        rates[f"gzip_{deflate}_level{level}_gzip_per_fasta_byte"] = round(
            sum(map(len, members)) / (size_mb * 1e6), 3
        )
    return {"row": "components (first 64 MiB)", **rates}


def _answer_imports_in_process(omics: Any) -> None:
    """HealthOmics is not in moto: StartReadSetImportJob is answered at botocore's before-call
    hook (the request is still built and validated by botocore). The bench measures ingest up to
    the import's start; what HealthOmics does with the tiles is the local emulation's, tested in
    tests/integration/test_ingest_fasta_handler.py."""
    from datetime import UTC, datetime

    from botocore.awsrequest import AWSResponse

    def answer(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        job = {
            "id": "4000000001",
            "sequenceStoreId": "1234567890",
            "roleArn": "arn:aws:iam::123456789012:role/x",
            "status": "SUBMITTED",
            "creationTime": datetime.now(UTC),
        }
        return AWSResponse("https://omics.invalid", 200, {}, None), job

    omics.meta.events.register("before-call.omics.StartReadSetImportJob", answer)


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

    s3 = client("s3")
    s3.create_bucket(Bucket="bench")
    boto3.client("s3").upload_file(
        str(fasta), "bench", "incoming/bench.fa", Config=TransferConfig(multipart_threshold=1 << 40)
    )
    etag = s3.head_object(Bucket="bench", Key="incoming/bench.fa")["ETag"].strip('"')
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    _answer_imports_in_process(client("omics"))
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
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--rss-size-mb", type=int, default=1024, help="the memory row's input (0: skip)")
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
    parser.add_argument("--deflate", default="isal", help=argparse.SUPPRESS)
    args = parser.parse_args()

    fasta = args.workdir / f"bench_{args.size_mb}mb.fa"
    if args.child:
        if args.cores:
            os.sched_setaffinity(0, set(range(args.cores)))
        if args.child == "local":
            result = measure_local(fasta, args.gzip_level, args.deflate)
        elif args.child == "aws-sample":
            result = measure_aws_sample_style(fasta, args.workdir)
        elif args.child == "components":
            result = measure_components(fasta)
        else:
            result = measure_moto(fasta, args.gzip_level, args.child)
        print(json.dumps(result))
        return

    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, "
        f"pinned to {args.cores or 'all'} CPU(s)",
        flush=True,
    )
    rows = []
    if args.moto:
        generate_fasta(fasta, args.size_mb)
        rows.append(_run_moto(args))
    elif args.components:
        generate_fasta(fasta, args.size_mb)
        rows.append(_run_child(args, args.size_mb, "components"))
    else:
        generate_fasta(fasta, args.size_mb)
        rows.append(_run_child(args, args.size_mb, "aws-sample"))
        for deflate in ("zlib", "isal"):
            rows.append(_run_child(args, args.size_mb, "local", deflate))
        if args.rss_size_mb:
            generate_fasta(args.workdir / f"bench_{args.rss_size_mb}mb.fa", args.rss_size_mb)
            rows.append(_run_child(args, args.rss_size_mb, "local", "isal"))
    for row in rows:
        row.update(cores=args.cores or len(os.sched_getaffinity(0)))
        print(json.dumps(row, indent=2))
    if not (args.moto or args.components):
        print("\n| row | input MB | wall s | MB/s | CPU s | MB per CPU-s | peak RSS MB | gzip MB |")
        print("|---|---|---|---|---|---|---|---|")
        for r in rows:
            print(
                f"| {r['row']} | {r['input_mb']} | {r['seconds']} | {r['input_mb_per_s']} | "
                f"{r['cpu_seconds']} | {r['input_mb_per_cpu_s']} | {r['peak_rss_mb']} | {r['gzip_mb']} |"
            )
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


def _child_command(args: argparse.Namespace, size_mb: int, child: str, deflate: str = "isal") -> list[str]:
    return [
        sys.executable,
        __file__,
        *("--size-mb", str(size_mb), "--workdir", str(args.workdir), "--cores", str(args.cores)),
        *("--gzip-level", str(args.gzip_level), "--deflate", deflate, "--child", child),
    ]


def _run_child(args: argparse.Namespace, size_mb: int, child: str, deflate: str = "isal") -> dict[str, Any]:
    command = _child_command(args, size_mb, child, deflate)
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def _run_moto(args: argparse.Namespace) -> dict[str, Any]:
    port = 5000 + os.getpid() % 1000
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(port)
        return _run_child(args, args.size_mb, f"http://127.0.0.1:{port}")
    finally:
        server.terminate()
        server.wait()


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
