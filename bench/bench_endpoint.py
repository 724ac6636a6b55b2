"""Endpoint latency and throughput, this checkout beside a baseline commit: `score` of a 1 kb sequence.

    python bench/bench_endpoint.py --torch-threads 1                 # vs the baseline commit, one torch thread
    python bench/bench_endpoint.py --baseline-rev none               # this checkout only
    python bench/bench_endpoint.py --model-dir DIR --threads 1 4 8 --duration 10 --torch-threads 2

Both sides run in the same invocation, alternating, so machine noise hits both (the baseline's
`hyenadna/` and `endpoint/` come from `git archive`, see bench/baseline.py):
1. in-process: the handler functions (input_fn -> predict_fn -> output_fn, no HTTP: what the
   model costs), in a child process per side, `--rounds` rounds of `--requests` / rounds calls
   each, alternating sides -> p50 / p95 / mean;
2. over HTTP: `endpoint/serve.py` serving a model directory whose code/ holds that side's code (a
   packaged artifact, as the container serves it); `--requests` sequential score requests of a
   1,000-base window of phiX174 on one keep-alive connection, in alternating blocks;
3. throughput: N client threads, each with its own connection, for `--duration` seconds per side
   (the server runs one model call at a time: this shows queueing, not parallel speed-up);
4. batching: one request carrying `--batch` such sequences -> bases scored per second.
Prints Markdown tables (the form docs/benchmarks.md records), and the largest difference between
the two sides' log-likelihoods.
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
import tempfile
import threading
import time
from pathlib import Path

from baseline import BASELINE_REV, artifact_with_code, code_roots, load_average, run_child

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MODEL_DIR = REPO / "tests" / "fixtures" / "hyenadna" / "tiny_reference"
PHIX = REPO / "tests" / "fixtures" / "fasta" / "phix174_NC_001422.fa"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--length", type=int, default=1000, help="bases per scored sequence")
    parser.add_argument("--requests", type=int, default=200, help="sequential requests per side and run")
    parser.add_argument("--rounds", type=int, default=4, help="alternating blocks per side")
    parser.add_argument("--threads", type=int, nargs="*", default=[1, 4, 8], help="concurrent client threads")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per throughput run")
    parser.add_argument("--batch", type=int, default=16, help="sequences per request in the batching run")
    parser.add_argument("--torch-threads", type=int, default=None, help="OMP_NUM_THREADS for model code")
    parser.add_argument(
        "--baseline-rev", default=BASELINE_REV, help="commit to compare with ('none': this checkout only)"
    )
    parser.add_argument("--child-in-process", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child-linear-floor", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args()


def phix_window(length: int) -> str:
    lines = PHIX.read_text().splitlines()
    genome = "".join(line.strip() for line in lines if not line.startswith(">"))
    return (genome * (1 + length // len(genome)))[:length]


def start_server(model_dir: Path, torch_threads: int | None) -> tuple[subprocess.Popen, str, int]:
    env = dict(os.environ, PYTHONUNBUFFERED="1", LOG_LEVEL="WARNING")
    env.pop("PYTHONPATH", None)
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


def timed_posts(
    host: str, port: int, body: bytes, stop: threading.Event | None, count: int
) -> tuple[list[float], bytes]:
    """Latencies (s) of POST /invocations on one keep-alive connection, until `count` or `stop`;
    and the last answer."""
    connection = http.client.HTTPConnection(host, port, timeout=120)
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    latencies, payload = [], b""
    while len(latencies) < count and not (stop is not None and stop.is_set()):
        started = time.perf_counter()
        connection.request("POST", "/invocations", body=body, headers=headers)
        response = connection.getresponse()
        payload = response.read()
        latencies.append(time.perf_counter() - started)
        if response.status != 200:
            raise SystemExit(f"request failed: {response.status} {payload[:300]!r}")
    connection.close()
    return latencies, payload


def percentiles(latencies: list[float]) -> tuple[float, float, float]:
    ordered = sorted(latencies)
    p50 = ordered[len(ordered) // 2]
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return p50 * 1e3, p95 * 1e3, statistics.fmean(ordered) * 1e3


def child_in_process(args: argparse.Namespace) -> None:
    """In a child whose PYTHONPATH selects the code: time the handler functions, print JSON."""
    import torch

    import inference

    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    body = json.dumps({"task": "score", "sequences": [phix_window(args.length)]}).encode()
    loaded = inference.load_model(args.model_dir)
    latencies, cpu_times, answer = [], [], ""
    for index in range(args.requests + 10):  # the first 10 are warm-up
        started, cpu_started = time.perf_counter(), time.process_time()
        answer = inference.output_fn(
            inference.predict_fn(inference.input_fn(body, "application/json"), loaded), None
        )
        if index >= 10:
            latencies.append(time.perf_counter() - started)
            cpu_times.append(time.process_time() - cpu_started)
    print(json.dumps({"latencies": latencies, "cpu_times": cpu_times, "answer": json.loads(answer)}))


def child_linear_floor(args: argparse.Namespace) -> None:
    """The lower bound of a `score` call in float32: its position-wise linear layers alone.

    Every nn.Linear outside the implicit filters (those are cached per length) runs once per
    token: time each as a bare F.linear on random rows of the token count the model sees, on this
    machine's BLAS with the same threads. No implementation of the same model and precision does
    less arithmetic per request, so no caching gets a call below this; FFTs, GELU and norms add to it.
    """
    import torch
    import torch.nn.functional as F

    import inference

    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    loaded = inference.load_model(args.model_dir)
    seen: list[int] = []
    hook = loaded.model.lm_head.register_forward_hook(lambda _m, inputs, _o: seen.append(inputs[0].shape[-2]))
    body = json.dumps({"task": "score", "sequences": [phix_window(args.length)]})
    inference.predict_fn(inference.input_fn(body, "application/json"), loaded)
    hook.remove()
    tokens = seen[0]
    total_s, flop = 0.0, 0
    for name, module in loaded.model.named_modules():
        if not isinstance(module, torch.nn.Linear) or ".filter_fn." in f".{name}.":
            continue
        rows = torch.randn(tokens, module.in_features)
        with torch.inference_mode():
            for _ in range(5):
                F.linear(rows, module.weight, module.bias)
            samples = []
            for _ in range(50):
                started = time.perf_counter()
                F.linear(rows, module.weight, module.bias)
                samples.append(time.perf_counter() - started)
        total_s += statistics.median(samples)
        flop += 2 * tokens * module.in_features * module.out_features
    print(json.dumps({"tokens": tokens, "seconds": total_s, "flop": flop}))


def in_process(
    args: argparse.Namespace, roots: dict[str, Path]
) -> tuple[dict[str, list[float]], dict[str, list[float]], dict[str, dict]]:
    """Per side: wall-clock latencies, CPU times of the process (the same unless other jobs take
    the cores: then wall time waits for a core, CPU time does not), and the last answer."""
    latencies: dict[str, list[float]] = {name: [] for name in roots}
    cpu_times: dict[str, list[float]] = {name: [] for name in roots}
    answers: dict[str, dict] = {}
    per_round = max(1, args.requests // args.rounds)
    for _ in range(args.rounds):
        for name, root in roots.items():
            child_args = [
                str(Path(__file__).resolve()),
                "--child-in-process",
                "--model-dir",
                str(args.model_dir),
                "--length",
                str(args.length),
                "--requests",
                str(per_round),
            ]
            if args.torch_threads:
                child_args += ["--torch-threads", str(args.torch_threads)]
            result = json.loads(run_child(root, child_args).splitlines()[-1])
            latencies[name] += result["latencies"]
            cpu_times[name] += result["cpu_times"]
            answers[name] = result["answer"]
    return latencies, cpu_times, answers


def over_http(args: argparse.Namespace, roots: dict[str, Path], workdir: Path) -> dict[str, dict]:
    body = json.dumps({"task": "score", "sequences": [phix_window(args.length)]}).encode()
    batch_body = json.dumps({"task": "score", "sequences": [phix_window(args.length)] * args.batch}).encode()
    servers = {}
    try:
        for name, root in roots.items():
            model_dir = artifact_with_code(args.model_dir, root, workdir / name.split()[0])
            servers[name] = start_server(model_dir, args.torch_threads)
        results: dict[str, dict] = {name: {"sequential": [], "load": [], "answer": None} for name in roots}
        for _, host, port in servers.values():
            timed_posts(host, port, body, None, 10)  # warm-up: first calls allocate and build filters
        per_round = max(1, args.requests // args.rounds)
        for _ in range(args.rounds):
            for name, (_, host, port) in servers.items():
                latencies, answer = timed_posts(host, port, body, None, per_round)
                results[name]["sequential"] += latencies
                results[name]["answer"] = json.loads(answer)
        for threads in args.threads:
            for name, (_, host, port) in servers.items():
                results[name]["load"].append(
                    (threads, *concurrent_clients(host, port, body, threads, args.duration))
                )
        for name, (_, host, port) in servers.items():
            timed_posts(host, port, batch_body, None, 2)
            results[name]["batch"] = statistics.median(timed_posts(host, port, batch_body, None, 10)[0])
        return results
    finally:
        for process, _, _ in servers.values():
            process.terminate()
            process.wait(timeout=30)


def concurrent_clients(host: str, port: int, body: bytes, threads: int, duration: float) -> tuple[float, ...]:
    stop = threading.Event()
    results: list[list[float]] = [[] for _ in range(threads)]

    def client(slot: int) -> None:
        results[slot] = timed_posts(host, port, body, stop, sys.maxsize)[0]

    workers = [threading.Thread(target=client, args=(i,)) for i in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    time.sleep(duration)  # the measurement window itself
    stop.set()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    merged = [value for per_thread in results for value in per_thread]
    return (len(merged) / elapsed, *percentiles(merged))


def largest_difference(answers: dict[str, dict]) -> str:
    values = [answer["results"][0]["log_likelihood"] for answer in answers.values()]
    if len(values) < 2:
        return ""
    return f"log-likelihood {values[-1]!r} here vs {values[0]!r} baseline (relative difference {abs(values[-1] - values[0]) / abs(values[0]):.1e})"


def main() -> None:
    args = parse_args()
    if args.child_in_process:
        child_in_process(args)
        return
    if args.child_linear_floor:
        child_linear_floor(args)
        return
    roots = code_roots(args.baseline_rev)
    print(f"start: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}, {load_average()}")
    in_process_latencies, in_process_cpu, in_process_answers = in_process(args, roots)
    with tempfile.TemporaryDirectory() as workdir:
        http_results = over_http(args, roots, Path(workdir))
    floor_args = [str(Path(__file__).resolve()), "--child-linear-floor", "--model-dir", str(args.model_dir)]
    floor_args += ["--length", str(args.length)]
    floor_args += ["--torch-threads", str(args.torch_threads)] if args.torch_threads else []
    floor = json.loads(run_child(roots[list(roots)[-1]], floor_args).splitlines()[-1])
    print(f"end: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}, {load_average()}")

    threads_note = args.torch_threads or os.environ.get("OMP_NUM_THREADS") or "default (all cores)"
    model = args.model_dir.relative_to(REPO) if args.model_dir.is_relative_to(REPO) else args.model_dir
    print(f"model: {model}")
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch threads {threads_note}"
    )
    print(f"request: score, 1 sequence of {args.length} bases, JSON over HTTP/1.1 keep-alive\n")
    names = list(roots)
    print("| measurement | " + " | ".join(f"{name} p50 / p95 / mean ms" for name in names) + " |")
    print("|---|" + "---|" * len(names))

    def row(label: str, per_side: list[tuple[float, float, float]]) -> None:
        print(
            f"| {label} | "
            + " | ".join(f"{p50:.1f} / {p95:.1f} / {mean:.1f}" for p50, p95, mean in per_side)
            + " |"
        )

    row(
        f"handler functions in-process (no HTTP), {len(in_process_latencies[names[-1]])} calls",
        [percentiles(in_process_latencies[name]) for name in names],
    )
    row(
        "same calls: CPU time of the process (wall time minus waiting for a core)",
        [percentiles(in_process_cpu[name]) for name in names],
    )
    row(
        f"HTTP, sequential, {len(http_results[names[-1]]['sequential'])} requests",
        [percentiles(http_results[name]["sequential"]) for name in names],
    )
    for index, threads in enumerate(args.threads):
        print(
            f"| HTTP, {threads} client thread(s), {args.duration:.0f} s (requests/s; p50 / p95 ms) | "
            + " | ".join(
                f"{http_results[name]['load'][index][1]:.1f} req/s; "
                f"{http_results[name]['load'][index][2]:.1f} / {http_results[name]['load'][index][3]:.1f}"
                for name in names
            )
            + " |"
        )
    print(
        f"| batching: {args.batch} x {args.length} bases in one request (ms; bases/s) | "
        + " | ".join(
            f"{http_results[name]['batch'] * 1e3:.1f}; {args.batch * args.length / http_results[name]['batch']:,.0f}"
            for name in names
        )
        + " |"
    )
    print(
        f"\nfloor (float32): the position-wise linear layers alone, {floor['tokens']} tokens: "
        f"{floor['seconds'] * 1e3:.1f} ms ({floor['flop'] / 1e9:.2f} GFLOP at "
        f"{floor['flop'] / floor['seconds'] / 1e9:.0f} GFLOP/s, this machine's BLAS, same threads)"
    )
    if len(names) > 1:
        base, ours = (statistics.median(in_process_latencies[name]) for name in names)
        http_base, http_ours = (statistics.median(http_results[name]["sequential"]) for name in names)
        cpu_base, cpu_ours = (statistics.median(in_process_cpu[name]) for name in names)
        print(
            f"\nspeed-up (p50): in-process {base / ours:.2f}x (CPU time {cpu_base / cpu_ours:.2f}x), "
            f"over HTTP {http_base / http_ours:.2f}x"
        )
        print("in-process answers: " + largest_difference(in_process_answers))
        print("HTTP answers: " + largest_difference({name: http_results[name]["answer"] for name in names}))


if __name__ == "__main__":
    main()
