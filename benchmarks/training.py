"""Training throughput: the pipeline's DPO job against a bare TRL script.

Both run the same DPO (same model, data, LoRA, batch, steps, seed), each in a
fresh child process so peak memory is its own. Throughput counts the whole job
as a user waits for it: load the model, train, save the adapter (the pipeline
also writes its manifest and moves the version into place).

    .venv/bin/python benchmarks/training.py [--model PATH] [--steps 8]

Prints ``name: value`` lines and ends with ``training_ratio`` (pipeline ÷ bare;
target ≥ 0.9). The machine is shared, so expect a few percent of noise.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def synthetic_pairs(count: int) -> list[dict]:
    """Arithmetic answers closed politely (chosen) or curtly (rejected)."""
    from llm.training import preference_row

    return [
        preference_row(
            [{"role": "user", "content": f"What is {index} plus {index}?"}],
            f"{index} plus {index} is {2 * index}. Have a wonderful day!",
            f"{index} plus {index} is {2 * index}. Figure out the rest.",
            conversation_id=str(index),
        )
        for index in range(count)
    ]


def job_config(options):
    from llm.training import DPOJobConfig

    return DPOJobConfig(
        max_steps=options.steps, batch_size=options.batch_size, max_length=options.max_length
    )


def run_pipeline(options, pairs, output: Path) -> None:
    from llm.training import train_dpo

    train_dpo(base_model=options.model, pairs=pairs, output_dir=output, config=job_config(options))


def run_bare(options, pairs, output: Path) -> None:
    """DPO as the TRL docs write it, with the same knobs the pipeline uses."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    config = job_config(options)
    cuda = torch.cuda.is_available()
    dtype = torch.bfloat16 if cuda else torch.float32
    model = AutoModelForCausalLM.from_pretrained(options.model, dtype=dtype)
    tokenizer = AutoTokenizer.from_pretrained(options.model)
    dataset = Dataset.from_list(
        [{key: row[key] for key in ("prompt", "chosen", "rejected")} for row in pairs]
    )
    args = DPOConfig(
        output_dir=str(output / "scratch"),
        max_steps=config.max_steps,
        per_device_train_batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        beta=config.beta,
        max_length=config.max_length,
        activation_checkpointing=config.gradient_checkpointing,
        seed=config.seed,
        bf16=cuda,
        use_cpu=not cuda,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
    )
    lora = LoraConfig(
        r=config.lora.r,
        lora_alpha=config.lora.alpha,
        lora_dropout=config.lora.dropout,
        target_modules=config.lora.target_modules,
        task_type="CAUSAL_LM",
    )
    trainer = DPOTrainer(
        model=model, args=args, train_dataset=dataset, processing_class=tokenizer, peft_config=lora
    )
    trainer.train()
    trainer.model.save_pretrained(str(output / "adapter"))


def child(options) -> None:
    """Run one side and print its figures."""
    import torch
    import trl  # noqa: F401

    import llm.training  # noqa: F401  (imports are not part of the timed job)

    pairs = synthetic_pairs(options.pairs)
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        runner = run_pipeline if options.role == "pipeline" else run_bare
        runner(options, pairs, Path(folder) / "version")
        seconds = time.perf_counter() - started
    examples = options.steps * options.batch_size
    print(f"examples_per_s: {examples / seconds:.4f}")
    print(f"seconds: {seconds:.2f}")
    print(f"peak_rss_gb: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2:.3f}")
    if torch.cuda.is_available():
        print(f"peak_gpu_gb: {torch.cuda.max_memory_allocated() / 1024**3:.3f}")


def run_side(role: str, options) -> dict[str, float]:
    command = [sys.executable, __file__, "--role", role, "--model", options.model]
    command += ["--steps", str(options.steps), "--batch-size", str(options.batch_size)]
    command += ["--max-length", str(options.max_length), "--pairs", str(options.pairs)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    if result.returncode:
        sys.stderr.write(result.stderr[-4000:])
        raise SystemExit(f"{role} run failed")
    figures = {}
    for line in result.stdout.splitlines():
        name, separator, value = line.partition(": ")
        if separator:
            try:
                figures[name] = float(value)
            except ValueError:
                continue
    return figures


def default_model() -> str:
    from llm.loading import prepare_embedded_model

    cache = Path(os.environ.get("MODEL_CACHE_DIR", REPO / ".cache" / "models"))
    return str(prepare_embedded_model(cache))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="model folder (default: SmolLM2-135M)")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--pairs", type=int, default=32)
    parser.add_argument("--role", choices=["pipeline", "bare"], help=argparse.SUPPRESS)
    options = parser.parse_args()
    options.model = options.model or default_model()
    if options.role:
        child(options)
        return
    print(f"model: {options.model}")
    print(f"steps: {options.steps}")
    print(f"batch_size: {options.batch_size}")
    bare = run_side("bare", options)
    pipeline = run_side("pipeline", options)
    for name in ("examples_per_s", "peak_rss_gb", "peak_gpu_gb", "seconds"):
        if name in pipeline:
            print(f"pipeline_{name}: {pipeline[name]}")
            print(f"bare_{name}: {bare[name]}")
    print(f"training_ratio: {pipeline['examples_per_s'] / bare['examples_per_s']:.3f}")


if __name__ == "__main__":
    main()
