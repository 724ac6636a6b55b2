"""Endpoint latency and throughput over real HTTP: `score` of a 1 kb sequence on the local server.

    python bench/bench_endpoint.py                       # tiny parity checkpoint, CPU
    python bench/bench_endpoint.py --model-dir DIR --threads 1 4 8 --duration 10 --torch-threads 2

First times the same request through the handler functions in this process (no HTTP: what the
model costs), then starts `endpoint/serve.py` as a subprocess (as the local stack does) and measures
1. latency: `--requests` sequential score requests of one 1,000-base window of phiX174 on one
   keep-alive connection -> p50 / p95 / mean;
2. throughput: N client threads, each with its own connection, sending the same request for
   `--duration` seconds -> requests/s and the latency percentiles under that load (the server
   runs one model call at a time, so this shows queueing, not parallel speed-up);
3. batching: one request carrying `--batch` such sequences -> bases scored per second.
Prints a Markdown table (the form docs/benchmarks.md records).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MODEL_DIR = REPO / "tests" / "fixtures" / "hyenadna" / "tiny_reference"
PHIX = REPO / "tests" / "fixtures" / "fasta" / "phix174_NC_001422.fa"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--length", type=int, default=1000, help="bases per scored sequence")
    parser.add_argument("--requests", type=int, default=200, help="sequential requests for the latency run")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 4, 8], help="concurrent client threads")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per throughput run")
    parser.add_argument("--batch", type=int, default=16, help="sequences per request in the batching run")
    parser.add_argument("--torch-threads", type=int, default=None, help="OMP_NUM_THREADS for the server")
    return parser.parse_args()


def phix_window(length: int) -> str:
    lines = PHIX.read_text().splitlines()
    genome = "".join(line.strip() for line in lines if not line.startswith(">"))
    return (genome * (1 + length // len(genome)))[:length]


def start_server(model_dir: Path, torch_threads: int | None) -> tuple[subprocess.Popen, str, int]:
    env = dict(os.environ, PYTHONUNBUFFERED="1", LOG_LEVEL="WARNING")
    if torch_threads:
        env["OMP_NUM_THREADS"] = str(torch_threads)
    process = subprocess.Popen(
        [sys.executable, str(REPO / "endpoint" / "serve.py"), "--model-dir", str(model_dir), "--port", "0"],
        stdout=subprocess.PIPE,
        env=env,
    )
    line = process.stdout.readline().decode()
    if not line.startswith("hyenaflow endpoint listening on "):
        process.kill()
        raise SystemExit(f"serve.py did not start (exit {process.poll()})")
    host, port = line.split()[-1].removeprefix("http://").split(":")
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"serve.py exited {process.returncode} while loading {model_dir}")
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        connection.request("GET", "/ping")
        status = connection.getresponse().status
        connection.close()
        if status == 200:
            return process, host, int(port)
        time.sleep(0.1)  # poll interval while the model loads
    process.kill()
    raise SystemExit("the model did not load within 300 s")


def timed_posts(host: str, port: int, body: bytes, stop: threading.Event | None, count: int) -> list[float]:
    """Latencies (s) of POST /invocations on one keep-alive connection, until `count` or `stop`."""
    connection = http.client.HTTPConnection(host, port, timeout=120)
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    latencies = []
    while len(latencies) < count and not (stop is not None and stop.is_set()):
        started = time.perf_counter()
        connection.request("POST", "/invocations", body=body, headers=headers)
        response = connection.getresponse()
        payload = response.read()
        latencies.append(time.perf_counter() - started)
        if response.status != 200:
            raise SystemExit(f"request failed: {response.status} {payload[:300]!r}")
    connection.close()
    return latencies


def percentiles(latencies: list[float]) -> tuple[float, float, float]:
    ordered = sorted(latencies)
    p50 = ordered[len(ordered) // 2]
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return p50 * 1e3, p95 * 1e3, statistics.fmean(ordered) * 1e3


def in_process_latencies(model_dir: Path, body: bytes, count: int, torch_threads: int | None) -> list[float]:
    """The same request through the handler functions with no HTTP: what the model itself costs."""
    sys.path.insert(0, str(REPO / "endpoint"))  # inference.py, as the container imports it
    import torch

    import inference

    if torch_threads:
        torch.set_num_threads(torch_threads)
    loaded = inference.load_model(model_dir)
    latencies = []
    for index in range(count + 10):  # the first 10 are warm-up
        started = time.perf_counter()
        inference.output_fn(inference.predict_fn(inference.input_fn(body, "application/json"), loaded), None)
        if index >= 10:
            latencies.append(time.perf_counter() - started)
    return latencies


def main() -> None:
    args = parse_args()
    sequence = phix_window(args.length)
    body = json.dumps({"task": "score", "sequences": [sequence]}).encode()
    in_process = in_process_latencies(args.model_dir, body, args.requests, args.torch_threads)
    process, host, port = start_server(args.model_dir, args.torch_threads)
    try:
        timed_posts(host, port, body, None, 10)  # warm-up: first calls allocate and build filters
        latency = timed_posts(host, port, body, None, args.requests)

        load_rows = []
        for threads in args.threads:
            stop = threading.Event()
            results: list[list[float]] = [[] for _ in range(threads)]

            def client(slot: int, stop: threading.Event = stop, results: list = results) -> None:
                results[slot] = timed_posts(host, port, body, stop, sys.maxsize)

            workers = [threading.Thread(target=client, args=(i,)) for i in range(threads)]
            started = time.perf_counter()
            for worker in workers:
                worker.start()
            time.sleep(args.duration)  # the measurement window itself
            stop.set()
            for worker in workers:
                worker.join()
            elapsed = time.perf_counter() - started
            merged = [value for per_thread in results for value in per_thread]
            load_rows.append((threads, len(merged) / elapsed, *percentiles(merged)))

        batch_body = json.dumps({"task": "score", "sequences": [sequence] * args.batch}).encode()
        timed_posts(host, port, batch_body, None, 2)
        batch_latency = statistics.median(timed_posts(host, port, batch_body, None, 10))
    finally:
        process.terminate()
        process.wait(timeout=30)

    import torch  # loaded by in_process_latencies already

    threads_note = (
        args.torch_threads or os.environ.get("OMP_NUM_THREADS") or f"default ({torch.get_num_threads()})"
    )
    print(
        f"model: {args.model_dir.relative_to(REPO) if args.model_dir.is_relative_to(REPO) else args.model_dir}"
    )
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch threads {threads_note}"
    )
    print(f"request: score, 1 sequence of {args.length} bases, JSON over HTTP/1.1 keep-alive\n")
    print("| measurement | requests/s | p50 ms | p95 ms | mean ms |")
    print("|---|---|---|---|---|")
    p50, p95, mean = percentiles(in_process)
    print(
        f"| handler functions in-process (no HTTP), {len(in_process)} calls | {1e3 / mean:.1f} | {p50:.1f} | {p95:.1f} | {mean:.1f} |"
    )
    p50, p95, mean = percentiles(latency)
    print(f"| sequential, {len(latency)} requests | {1e3 / mean:.1f} | {p50:.1f} | {p95:.1f} | {mean:.1f} |")
    for threads, rate, p50, p95, mean in load_rows:
        print(
            f"| {threads} client thread(s), {args.duration:.0f} s | {rate:.1f} | {p50:.1f} | {p95:.1f} | {mean:.1f} |"
        )
    print(
        f"\nbatching: {args.batch} x {args.length} bases in one request: {batch_latency * 1e3:.1f} ms "
        f"= {args.batch * args.length / batch_latency:,.0f} bases/s "
        f"(vs {args.length / (statistics.median(latency)):,.0f} bases/s one sequence per request)"
    )


if __name__ == "__main__":
    main()
