"""Online RL (RLOO by default, or GRPO) against a learned reward model.

The policy samples a few short replies per prompt, the reward model scores
them (guarded: a looping, empty or markup-leaking reply scores lowest, see
guarded_reward.py), and LoRA moves towards the better ones while a KL term
(``beta``) keeps it near the reference: without it a small reward model gets
exploited fast. Replies cut off at ``max_completion_length`` are left out of
the loss, so RL is not pushed to ramble (or to stop early) by what it never finished.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from llm.training.config import OnlineRLJobConfig, trainer_arguments
from llm.training.datasets import Message, to_trl_dataset
from llm.training.dpo import save_adapter
from llm.training.guarded_reward import GuardedReward
from llm.training.models import load_policy, load_tokenizer
from llm.training.progress import ProgressFn, StopFn
from llm.training.runner import JobSpec, run_job
from llm.training.versions import (
    ADAPTER_DIR,
    TrainedVersion,
    resolve_adapter,
    resolve_reward_model,
)


def train_online_rl(
    *,
    base_model: str | Path,
    reward_model: str | Path,
    prompts: Sequence[Sequence[Message]],
    output_dir: str | Path,
    parent: str | Path | None = None,
    config: OnlineRLJobConfig | None = None,
    progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
) -> TrainedVersion:
    """Train an adapter on ``prompts`` (chat message lists) against ``reward_model``."""
    config = config or OnlineRLJobConfig()
    if config.batch_size % config.num_generations:
        raise ValueError("batch_size must be a multiple of num_generations")
    parent_adapter, parent_name = resolve_adapter(parent) if parent else (None, None)
    reward_dir, reward_name = resolve_reward_model(reward_model)
    rows = [{"prompt": [dict(message) for message in prompt]} for prompt in prompts]

    def build(scratch: Path, callbacks):
        trainer_class, args = _trainer_and_args(config, scratch)
        return trainer_class(
            model=load_policy(base_model, parent_adapter),
            reward_funcs=GuardedReward(reward_dir, enabled=config.guard_rewards),
            args=args,
            train_dataset=to_trl_dataset(rows, ("prompt",)),
            processing_class=load_tokenizer(base_model),
            peft_config=None if parent_adapter else config.lora.to_peft("CAUSAL_LM"),
            callbacks=callbacks,
        )

    spec = JobSpec(
        config.algorithm, ADAPTER_DIR, Path(base_model), config, rows, (), parent_name, reward_name
    )
    return run_job(spec, output_dir, build, save_adapter, progress, should_stop)


def _trainer_and_args(config: OnlineRLJobConfig, scratch: Path):
    from trl import GRPOConfig, GRPOTrainer, RLOOConfig, RLOOTrainer

    trainer_class, config_class = {
        "rloo": (RLOOTrainer, RLOOConfig),
        "grpo": (GRPOTrainer, GRPOConfig),
    }[config.algorithm]
    args = config_class(
        **trainer_arguments(config, scratch),
        beta=config.beta,
        num_generations=config.num_generations,
        max_completion_length=config.max_completion_length,
        temperature=config.temperature,
        mask_truncated_completions=config.mask_truncated_completions,
    )
    return trainer_class, args
