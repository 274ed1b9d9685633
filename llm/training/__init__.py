"""TRL training jobs: each a config dataclass plus a thin function writing a version directory.

Plain Python (no web stack). The worker calls, for example::

    train, heldout = split_by_conversation(pairs, eval_fraction=0.2, seed=0)
    version = train_dpo(base_model=path, pairs=train, heldout_pairs=heldout,
                        output_dir=versions / "v7", parent=versions / "v6",
                        progress=report, should_stop=cancelled)
    read_manifest(version.path).metrics
"""

from llm.training.config import (
    DPOJobConfig,
    JobConfig,
    KTOJobConfig,
    LoraSettings,
    OnlineRLJobConfig,
    RewardJobConfig,
    ThumbsRewardJobConfig,
)
from llm.training.datasets import (
    PreferenceRow,
    UnpairedRow,
    canonical_order,
    dataset_hash,
    pairs_to_unpaired,
    preference_row,
    split_by_conversation,
    unpaired_row,
)
from llm.training.dpo import train_dpo
from llm.training.kto import train_kto
from llm.training.online_rl import train_online_rl
from llm.training.plan import FeedbackCounts, MethodPlan, PlanLimits, choose_method, plan_run
from llm.training.progress import TrainingProgress, TrainingStopped
from llm.training.reward import thumb_comparisons, train_reward_model
from llm.training.versions import (
    TrainedVersion,
    VersionManifest,
    is_complete_version,
    read_manifest,
)

__all__ = [
    "DPOJobConfig",
    "FeedbackCounts",
    "PlanLimits",
    "JobConfig",
    "KTOJobConfig",
    "LoraSettings",
    "MethodPlan",
    "OnlineRLJobConfig",
    "PreferenceRow",
    "RewardJobConfig",
    "TrainedVersion",
    "TrainingProgress",
    "ThumbsRewardJobConfig",
    "TrainingStopped",
    "UnpairedRow",
    "VersionManifest",
    "canonical_order",
    "choose_method",
    "dataset_hash",
    "is_complete_version",
    "pairs_to_unpaired",
    "plan_run",
    "preference_row",
    "read_manifest",
    "split_by_conversation",
    "thumb_comparisons",
    "train_dpo",
    "train_kto",
    "train_online_rl",
    "train_reward_model",
    "unpaired_row",
]
