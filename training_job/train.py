"""Pretrain HyenaDNA (next-base prediction) on FASTA/GenBank/EMBL files or the FASTQ tiles of HealthOmics read sets.

One CPU (a laptop; the lambda phage genome trains to eval perplexity < 4 in a few minutes;
checkpoints go to out/checkpoints, and a rerun with the same --model-dir resumes from them):

    python training_job/train.py --data data/lambda_phage_NC_001416.fa --model-dir out/ --max-steps 150

One GPU (bf16 autocast is on by default on CUDA):

    python training_job/train.py --data reads/ --model-dir out/ --model-size small --max-length 8192 \\
        --batch-size 8 --max-steps 20000

Many GPUs / nodes (SageMaker `torch_distributed` runs the same torchrun command):

    torchrun --standalone --nproc_per_node=8 training_job/train.py --data reads/ --model-dir out/ \\
        --model-size small --batch-size 8 --global-batch-size 256

SageMaker (training-toolkit contract): data from `SM_CHANNEL_TRAIN`, the model to `SM_MODEL_DIR`,
TensorBoard to `/opt/ml/output/tensorboard`, checkpoints to `/opt/ml/checkpoints`; each
hyperparameter arrives as `--key value` (`sagemaker_*` ones are ignored; `key` may use `-` or `_`).

Continued pretraining (a warm start) comes from `--init-from` (model directory, model.tar.gz, or
S3 URI of either) or the `SM_CHANNEL_MODEL` channel:

    python training_job/train.py --data data/ --model-dir out2/ --init-from out/

It measures the starting weights on its evaluation set before any update (step 0: the baseline,
the model it would replace), reports the held-out loss on data the starting model was trained on
("seen", from its training_data.json) and on the rest ("new"), and, unless `--learning-rate` /
`--warmup-steps` are given, trains with `--warm-start-learning-rate` / `--warm-start-warmup-steps`.
Every job keeps the weights of its best evaluation after step 0 (not the last ones) and can stop
early (`--early-stopping-patience`). The held-out blocks are the same in every job over the same
genomes (sequence_data: "Validation split"), so a baseline and its candidate are always measured
on the same data.

Batching: `--batch-size` windows per process per micro-step; `--global-batch-size` windows per
optimizer step over all processes (default: batch-size x processes). Gradient accumulation makes
up the difference, so a job sees the same global batches on any number of GPUs. Batch `step` is
a pure function of (seed, step) (see sequence_data), so the checkpointed data position is the step.

Resume: the newest `checkpoint-<step>.pt` in `--checkpoint-dir` (model, optimizer, scheduler,
RNG, step, history, baseline, best weights so far) is loaded on start; a job killed at any point
(spot interruption) resumes there and ends exactly where an uninterrupted job would.

Output lines for SageMaker metric_definitions (docs/contracts.md, "Training job log lines"):

    [train] step=120 loss=1.234500 perplexity=3.437100 tokens_per_s=5230.1 lr=0.000500
    [eval] step=120 loss=1.300000 perplexity=3.669300
    [eval:seen] step=120 loss=1.290000 perplexity=3.632787      (warm starts: per source)
    [eval:new] step=120 loss=1.310000 perplexity=3.706174
    [best] step=100 eval_loss=1.290000 eval_perplexity=3.632787 ... baseline_eval_perplexity=...
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from evaluation import BestWeights, EvalSet, Evaluation, best_line, evaluate, evaluation_metrics
from hyenadna import HyenaDNAConfig, HyenaDNAForCausalLM, config_for_size
from sequence_data import SPLIT_BLOCK_BASES, SequenceDataError, WindowCorpus, load_records, split_rule
from training_artifact import endpoint_code_dir, fetch_model_dir, read_training_data, write_model_artifact

log = logging.getLogger("train")

# Every default in one place. On the lambda phage genome (48.5 kb) the tiny model with these
# reaches eval perplexity ~3.6-3.7 on its held-out block (uniform over ACGT: 4.0) in 150 steps,
# 1.2M tokens: under 2 minutes on 2 idle CPU cores. See docs/benchmarks.md.
DEFAULTS = {
    "model_size": "tiny",
    "init_from": "",  # or the SM_CHANNEL_MODEL channel when the job has one
    "max_length": 1024,
    "batch_size": 8,
    "global_batch_size": 0,  # 0: batch_size x processes (no accumulation)
    "max_steps": 150,
    "learning_rate": 3e-3,
    "min_lr_ratio": 0.1,
    "warmup_steps": 20,
    # Continued pretraining (a warm start) without an explicit --learning-rate / --warmup-steps:
    # a gentler peak, so the model learns the new data without first unlearning the old.
    # Chosen by bench/bench_continued_pretraining.py (docs/benchmarks.md, "Continued pretraining").
    "warm_start_learning_rate": 1e-3,
    "warm_start_warmup_steps": 10,
    "early_stopping_patience": 0,  # evaluations without a new best before stopping; 0: never stop early
    "weight_decay": 0.1,
    "beta1": 0.9,
    "beta2": 0.95,
    "grad_clip": 1.0,
    "val_fraction": 0.05,
    "rc_probability": 0.0,
    "eval_interval": 25,
    "eval_windows": 4096,  # cap on evaluation windows (a stable rule, sequence_data); 0: no cap
    "log_interval": 10,
    "checkpoint_interval": 100,
    "keep_checkpoints": 2,
    "seed": 1337,
    "precision": "auto",  # bf16 autocast on CUDA, fp32 on CPU
    "compile": False,
}


def _bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {text!r}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    argv = sys.argv[1:] if argv is None else argv
    # SageMaker passes its own settings as --sagemaker_<name> <value>; they are not ours.
    kept, skip = [], False
    for item in argv:
        if skip:
            skip = False
        elif item.startswith(("--sagemaker_", "--sagemaker-")):
            skip = "=" not in item
        else:
            kept.append(item)

    in_container = os.environ.get("SM_MODEL_DIR", "").startswith("/opt/ml/")
    output_data_dir = os.environ.get("SM_OUTPUT_DATA_DIR", "")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])

    def add(name: str, **kwargs) -> None:
        parser.add_argument(f"--{name}", f"--{name.replace('-', '_')}", **kwargs)

    add(
        "data",
        default=os.environ.get("SM_CHANNEL_TRAIN"),
        help="FASTA, FASTQ, GenBank or EMBL file (plain or gzip), folder or s3:// prefix",
    )
    add("model-dir", default=os.environ.get("SM_MODEL_DIR", "out"), help="where the model artifact goes")
    add(
        "checkpoint-dir",
        default=None,
        help="default /opt/ml/checkpoints in SageMaker, else <model-dir>/checkpoints",
    )
    add("tensorboard-dir", default=None, help="default /opt/ml/output/tensorboard or <model-dir>/tensorboard")
    add("model-size", default=DEFAULTS["model_size"], choices=["tiny", "small", "medium"])
    add(
        "init-from",
        default=os.environ.get("SM_CHANNEL_MODEL", DEFAULTS["init_from"]),
        help="warm start: model dir, model.tar.gz or s3:// URI",
    )
    for name, kind in (
        ("max-length", int),
        ("batch-size", int),
        ("global-batch-size", int),
        ("max-steps", int),
        ("min-lr-ratio", float),
        ("warm-start-learning-rate", float),
        ("warm-start-warmup-steps", int),
        ("early-stopping-patience", int),
        ("weight-decay", float),
        ("beta1", float),
        ("beta2", float),
        ("grad-clip", float),
        ("val-fraction", float),
        ("rc-probability", float),
        ("eval-interval", int),
        ("eval-windows", int),
        ("log-interval", int),
        ("checkpoint-interval", int),
        ("keep-checkpoints", int),
        ("seed", int),
    ):
        add(name, type=kind, default=DEFAULTS[name.replace("-", "_")])
    # Not given: the cold-start default, or --warm-start-* when the job starts from a model.
    add(
        "learning-rate",
        type=float,
        default=None,
        help=f"peak learning rate (default {DEFAULTS['learning_rate']})",
    )
    add(
        "warmup-steps",
        type=int,
        default=None,
        help=f"linear warmup steps (default {DEFAULTS['warmup_steps']})",
    )
    add("precision", default=DEFAULTS["precision"], choices=["auto", "bf16", "fp32"])
    add("compile", type=_bool, default=DEFAULTS["compile"], help="torch.compile the model (true/false)")
    args = parser.parse_args(kept)

    if not args.data:
        parser.error("--data is required (or set SM_CHANNEL_TRAIN)")
    if args.learning_rate is None:
        args.learning_rate = args.warm_start_learning_rate if args.init_from else DEFAULTS["learning_rate"]
    if args.warmup_steps is None:
        args.warmup_steps = args.warm_start_warmup_steps if args.init_from else DEFAULTS["warmup_steps"]
    # /opt/ml paths only inside a real SageMaker container; the local stack (SM_* pointing at a
    # job folder) keeps checkpoints and TensorBoard next to SM_OUTPUT_DATA_DIR, one set per job.
    if in_container:
        job_dir, tensorboard_dir = Path("/opt/ml"), Path("/opt/ml/output/tensorboard")
    elif output_data_dir:
        job_dir, tensorboard_dir = Path(output_data_dir).parent, Path(output_data_dir) / "tensorboard"
    else:
        job_dir, tensorboard_dir = Path(args.model_dir), Path(args.model_dir) / "tensorboard"
    # SM_CHECKPOINT_DIR / SM_TENSORBOARD_DIR: set by the local stack's runner (not by SageMaker).
    args.checkpoint_dir = (
        args.checkpoint_dir or os.environ.get("SM_CHECKPOINT_DIR") or str(job_dir / "checkpoints")
    )
    args.tensorboard_dir = (
        args.tensorboard_dir or os.environ.get("SM_TENSORBOARD_DIR") or str(tensorboard_dir)
    )
    return args


def lr_factor(step: int, warmup_steps: int, max_steps: int, min_lr_ratio: float) -> float:
    """Linear warmup to 1, then cosine decay to min_lr_ratio at max_steps."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, max_steps - warmup_steps))
    return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def latest_checkpoint(checkpoint_dir: Path) -> Path | None:
    found = [
        (int(m.group(1)), p) for p in checkpoint_dir.glob("checkpoint-*.pt") if (m := _CKPT.match(p.name))
    ]
    return max(found)[1] if found else None


_CKPT = re.compile(r"checkpoint-(\d+)\.pt$")


def save_checkpoint(checkpoint_dir: Path, state: dict, keep: int) -> Path:
    """Atomic write (tmp + rename) so a kill mid-save never leaves a half checkpoint as the latest."""
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    path = checkpoint_dir / f"checkpoint-{state['step']:08d}.pt"
    tmp = path.with_suffix(".pt.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    older = sorted(p for p in checkpoint_dir.glob("checkpoint-*.pt") if _CKPT.match(p.name))[:-keep]
    for stale in older:
        stale.unlink(missing_ok=True)
    return path


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)

    # ---- processes and devices --------------------------------------------------------------
    ddp = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if ddp:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
        rank, world = dist.get_rank(), dist.get_world_size()
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    else:
        rank, world, local_rank = 0, 1, 0
    master_process = rank == 0
    if torch.cuda.is_available():
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    logging.basicConfig(
        level=logging.INFO if master_process else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    use_bf16 = args.precision == "bf16" or (args.precision == "auto" and device.type == "cuda")
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if use_bf16 else contextlib.nullcontext()
    if args.global_batch_size == 0:
        args.global_batch_size = args.batch_size * world
    accumulation, remainder = divmod(args.global_batch_size, args.batch_size * world)
    if remainder or accumulation == 0:
        raise SystemExit(
            f"--global-batch-size {args.global_batch_size} must be a multiple of --batch-size "
            f"{args.batch_size} x {world} processes"
        )
    torch.manual_seed(args.seed + rank)
    code_dir = endpoint_code_dir(Path(__file__).resolve().parent)  # fail now, not after training
    if not sys.stderr.isatty():
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # no "Loading weights" / "Writing model shards" bars in CloudWatch logs

    # ---- data -------------------------------------------------------------------------------
    records = load_records(args.data)
    corpus = WindowCorpus(records, args.max_length, args.val_fraction)
    if corpus.val_tokens == 0:
        raise SequenceDataError(
            f"{args.data}: nothing to evaluate on: every record is at most {SPLIT_BLOCK_BASES} bases and "
            "none was drawn for validation; add data or raise --val-fraction"
        )

    # ---- model: resume > warm start > fresh ---------------------------------------------------
    # `start` is what the job started from; a resume takes it from the checkpoint (the starting
    # model may be gone by then), so the per-source split and the baseline survive a restart.
    checkpoint_dir = Path(args.checkpoint_dir)
    resume_path = latest_checkpoint(checkpoint_dir)
    checkpoint = torch.load(resume_path, map_location="cpu", weights_only=True) if resume_path else None
    if checkpoint:
        model = HyenaDNAForCausalLM(HyenaDNAConfig.from_dict(json.loads(checkpoint["model_config"])))
        model.load_state_dict(checkpoint["model"])
        start = checkpoint["start"]
        log.info("resuming from %s (step %d)", resume_path, checkpoint["step"])
    elif args.init_from:
        with tempfile.TemporaryDirectory() as tmp:
            init_dir = fetch_model_dir(args.init_from, Path(tmp))
            model = HyenaDNAForCausalLM.from_pretrained(init_dir)
            init_data = read_training_data(init_dir)
        start = {"init_from": args.init_from, "trained_on": init_data.get("trained_on", [])}
        log.info(
            "warm start from %s (trained on %d records; peak learning rate %g, warmup %d steps)",
            args.init_from,
            len(start["trained_on"]),
            args.learning_rate,
            args.warmup_steps,
        )
        if init_data.get("split", split_rule(args.val_fraction)) != split_rule(args.val_fraction):
            log.warning(
                "the starting model was split with %s, this job with %s: some of its held-out bases may "
                "be trained on now; keep --val-fraction fixed across jobs",
                init_data["split"],
                split_rule(args.val_fraction),
            )
    else:
        family = config_for_size(args.model_size)
        model = HyenaDNAForCausalLM(
            config_for_size(args.model_size, max_seq_len=max(family.max_seq_len, args.max_length + 2))
        )
        start = None
    if args.max_length > model.config.max_seq_len:
        raise SystemExit(
            f"--max-length {args.max_length} exceeds the model's max_seq_len {model.config.max_seq_len}"
        )
    warm_start = start is not None
    eval_set = EvalSet.build(corpus, args.eval_windows or None, set(start["trained_on"]) if start else set())
    log.info(
        "data: %d train bases, %d held-out bases, %d evaluated in %d windows of <= %d%s",
        corpus.train_tokens,
        corpus.val_tokens,
        sum(eval_set.bases.values()),
        len(eval_set.windows),
        args.max_length,
        "".join(f"; {name}: {bases} bases" for name, bases in eval_set.bases.items()) if warm_start else "",
    )
    model.to(device)
    n_params = sum(p.numel() for p in model.parameters())
    log.info(
        "model: d_model %d, %d layers, %.2fM parameters, device %s, bf16 %s",
        model.config.d_model,
        model.config.n_layer,
        n_params / 1e6,
        device,
        use_bf16,
    )
    # The model knows which of its parameters take weight decay (HyenaDNAPreTrainedModel).
    optimizer = model.configure_optimizers(
        args.weight_decay, args.learning_rate, (args.beta1, args.beta2), device.type
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, args.warmup_steps, args.max_steps, args.min_lr_ratio)
    )
    step, history, tokens_seen = 0, {"train": [], "eval": []}, 0
    best, baseline = BestWeights(), None
    if checkpoint:
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        torch.set_rng_state(checkpoint["rng"]["torch"])
        if device.type == "cuda" and checkpoint["rng"].get("cuda") is not None:
            torch.cuda.set_rng_state(checkpoint["rng"]["cuda"])
        step, history, tokens_seen = checkpoint["step"], checkpoint["history"], checkpoint["tokens_seen"]
        best.load_state_dict(checkpoint["best"], keep_weights=master_process)
        baseline = Evaluation.from_history(checkpoint["baseline"]) if checkpoint["baseline"] else None
        if checkpoint["data"]["seed"] != args.seed:
            log.warning(
                "checkpoint was written with --seed %d; continuing with its seed", checkpoint["data"]["seed"]
            )
            args.seed = checkpoint["data"]["seed"]
        del checkpoint
    raw_model = model
    if args.compile:
        model = torch.compile(model)
    if ddp:
        model = DistributedDataParallel(model, device_ids=[local_rank] if device.type == "cuda" else None)

    tensorboard = None
    if master_process:
        from torch.utils.tensorboard import SummaryWriter

        tensorboard = SummaryWriter(args.tensorboard_dir)
    progress = None
    if master_process and sys.stderr.isatty():
        from tqdm import tqdm

        progress = tqdm(total=args.max_steps, initial=step, unit="step", dynamic_ncols=True)

    # Known on every process (history is appended on the master only; a resume loads it everywhere).
    last_eval = Evaluation.from_history(history["eval"][-1]) if history["eval"] else None

    def log_eval(at_step: int) -> Evaluation:
        nonlocal last_eval
        last_eval = evaluate(
            raw_model,
            corpus,
            eval_set,
            step=at_step,
            batch_size=args.batch_size,
            device=device,
            autocast=autocast,
            rank=rank,
            world=world,
        )
        best.offer(last_eval, raw_model, keep_weights=master_process)
        if master_process:
            for line in last_eval.log_lines(with_sources=warm_start):
                print(line, flush=True)
            tensorboard.add_scalar("eval/loss", last_eval.loss, at_step)
            tensorboard.add_scalar("eval/perplexity", last_eval.perplexity, at_step)
            for name, loss in last_eval.by_source.items() if warm_start else ():
                tensorboard.add_scalar(f"eval/{name}_loss", loss, at_step)
            history["eval"].append(last_eval.history_entry(with_sources=warm_start))
        return last_eval

    def checkpoint_state() -> dict:
        return {
            "step": step,
            "model": raw_model.state_dict(),
            "model_config": raw_model.config.to_json_string(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": {
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state() if device.type == "cuda" else None,
            },
            "data": {"seed": args.seed, "next_step": step},  # batch s = f(seed, s): the step is the position
            "history": history,
            "tokens_seen": tokens_seen,
            "start": start,
            "baseline": baseline.history_entry(with_sources=True) if baseline else None,
            "best": best.state_dict(),
            "args": {k: v for k, v in vars(args).items() if isinstance(v, (int, float, str, bool))},
        }

    # ---- baseline: the starting model on this job's evaluation set ------------------------------
    if warm_start and step == 0 and last_eval is None:
        baseline = log_eval(0)

    # ---- training loop ------------------------------------------------------------------------
    start_step, started = step, time.perf_counter()
    interval_loss = torch.zeros((), device=device)
    interval_steps, interval_start = 0, time.perf_counter()
    tokens_per_step = args.global_batch_size * args.max_length
    model.train()
    while step < args.max_steps and not best.patience_exhausted(args.early_stopping_patience):
        windows = corpus.train_windows(step, args.global_batch_size, args.seed, args.rc_probability)
        for micro in range(accumulation):
            part = micro * world + rank  # which slice of the global batch this micro-step trains on
            rows = windows[part * args.batch_size :][: args.batch_size]
            # Dropout masks depend on (seed, step, slice) only: same masks on any number of
            # processes and after a resume.
            torch.manual_seed(hash((args.seed, step, part)) & 0x7FFF_FFFF_FFFF)
            input_ids, labels = (torch.from_numpy(a) for a in corpus.gather(rows))
            if device.type == "cuda":
                input_ids, labels = (
                    t.pin_memory().to(device, non_blocking=True) for t in (input_ids, labels)
                )
            # DDP: all-reduce gradients only on the last micro-step.
            with model.no_sync() if ddp and micro < accumulation - 1 else contextlib.nullcontext():
                with autocast:
                    loss = model(input_ids=input_ids, labels=labels).loss / accumulation
                loss.backward()
            interval_loss += loss.detach()
        if args.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
        lr = optimizer.param_groups[0]["lr"]
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        interval_steps += 1
        tokens_seen += tokens_per_step
        if progress:
            progress.update(1)

        if step % args.log_interval == 0 or step == args.max_steps:
            if ddp:
                dist.all_reduce(interval_loss, op=dist.ReduceOp.AVG)
            train_loss = interval_loss.item() / interval_steps
            tokens_per_s = tokens_per_step * interval_steps / (time.perf_counter() - interval_start)
            if master_process:
                print(
                    f"[train] step={step} loss={train_loss:.6f} perplexity={math.exp(train_loss):.6f} "
                    f"tokens_per_s={tokens_per_s:.1f} lr={lr:.6f}",
                    flush=True,
                )
                for name, value in (
                    ("loss", train_loss),
                    ("perplexity", math.exp(train_loss)),
                    ("tokens_per_s", tokens_per_s),
                    ("lr", lr),
                ):
                    tensorboard.add_scalar(f"train/{name}", value, step)
                history["train"].append({"step": step, "loss": train_loss})
            interval_loss.zero_()
            interval_steps, interval_start = 0, time.perf_counter()
        evaluated = step % args.eval_interval == 0 or step == args.max_steps
        if evaluated:
            log_eval(step)
        stopping = (
            evaluated and step < args.max_steps and best.patience_exhausted(args.early_stopping_patience)
        )
        if stopping:
            log.info(
                "early stop at step %d: %d evaluations without a new best (best: step %d)",
                step,
                best.evals_without_improvement,
                best.evaluation.step,
            )
        if master_process and (step % args.checkpoint_interval == 0 or step == args.max_steps or stopping):
            save_checkpoint(checkpoint_dir, checkpoint_state(), args.keep_checkpoints)
    if progress:
        progress.close()

    # ---- save: the best evaluation's weights --------------------------------------------------
    if last_eval is None or last_eval.step != step:
        log_eval(step)  # resumed at max_steps, or a zero-step run: the artifact still needs a score
    metrics = {}
    if master_process:
        chosen = best.evaluation or last_eval  # no evaluation after step 0: the weights as they are
        if best.weights is not None:
            raw_model.load_state_dict(best.weights)
        train_loss = history["train"][-1]["loss"] if history["train"] else float("nan")
        metrics = {
            **evaluation_metrics(chosen, last_eval, baseline, eval_set),
            "train_loss": train_loss,
            "train_perplexity": math.exp(train_loss),
            "steps": step,
            "stopped_early": step < args.max_steps,
            "tokens_seen": tokens_seen,
            "train_seconds_this_run": round(time.perf_counter() - started, 1),
            "steps_this_run": step - start_step,
            "parameters": n_params,
            "max_length": args.max_length,
            "global_batch_size": args.global_batch_size,
            "processes": world,
            "learning_rate": args.learning_rate,
            "warmup_steps": args.warmup_steps,
            "init_from": start["init_from"] if start else None,
            "train_bases": corpus.train_tokens,
            "validation_bases": corpus.val_tokens,
            "history": history,
        }
        print(best_line(metrics), flush=True)
        training_data = {
            "trained_on": sorted(
                set(start["trained_on"] if start else []) | set(corpus.trained_record_ids())
            ),
            "split": split_rule(args.val_fraction),
        }
        write_model_artifact(Path(args.model_dir), raw_model, metrics, training_data, code_dir)
        tensorboard.close()
        log.info(
            "wrote the model artifact to %s: the weights of step %d (eval perplexity %.4f%s)",
            args.model_dir,
            chosen.step,
            chosen.perplexity,
            f"; baseline {baseline.perplexity:.4f}" if baseline else "",
        )
    if ddp:
        dist.barrier()
        dist.destroy_process_group()
    return metrics


def write_failure_reason(message: str) -> None:
    """SageMaker shows the text of /opt/ml/output/failure as the job's FailureReason."""
    output_data_dir = os.environ.get("SM_OUTPUT_DATA_DIR")
    if output_data_dir:
        with contextlib.suppress(OSError):
            (Path(output_data_dir).parent / "failure").write_text(message[:1000])


if __name__ == "__main__":
    try:
        main()
    except SequenceDataError as bad_data:  # the data's fault: say what and where, no traceback
        log.error("%s", bad_data)
        write_failure_reason(f"bad training data: {bad_data}")
        sys.exit(1)
