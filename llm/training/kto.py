"""KTO with LoRA on unpaired thumbs up/down, anchored on the up-rated replies.

KTO alone moves likelihoods without making the up-rated replies the model's
answer (the failure DPO showed, docs/training.md). ``sft_weight`` adds the
negative log-likelihood per token of the desirable rows in each batch to the
KTO loss, as DPO's ``sft`` loss does for chosen replies.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

from llm.training.config import KTOJobConfig, trainer_arguments
from llm.training.datasets import UNPAIRED_COLUMNS, canonical_order, to_trl_dataset
from llm.training.dpo import save_adapter
from llm.training.models import load_policy, load_tokenizer
from llm.training.progress import ProgressFn, StopFn
from llm.training.runner import JobSpec, run_job
from llm.training.versions import ADAPTER_DIR, TrainedVersion, resolve_adapter


def train_kto(
    *,
    base_model: str | Path,
    rows: Sequence[dict],
    output_dir: str | Path,
    heldout_rows: Sequence[dict] = (),
    parent: str | Path | None = None,
    config: KTOJobConfig | None = None,
    progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
) -> TrainedVersion:
    """Train a KTO adapter on unpaired rows and write it as the version ``output_dir``."""
    from trl import KTOConfig

    config = config or KTOJobConfig()
    if config.batch_size < 2:
        raise ValueError("KTO needs batch_size >= 2 (its KL term pairs rows within a batch)")
    parent_adapter, parent_name = resolve_adapter(parent) if parent else (None, None)
    # KTO reads rows in order (its KL estimate pairs neighbours), so shuffle here.
    ordered = canonical_order(rows)
    random.Random(config.seed).shuffle(ordered)
    desirable_weight, undesirable_weight = label_weights(ordered, config.balance_labels)

    def build(scratch: Path, callbacks):
        args = KTOConfig(
            **trainer_arguments(config, scratch, len(ordered)),
            beta=config.beta,
            max_length=config.max_length,
            desirable_weight=desirable_weight,
            undesirable_weight=undesirable_weight,
        )
        return anchored_kto_trainer(config.sft_weight, config.anchor_per)(
            model=load_policy(base_model, parent_adapter),
            args=args,
            train_dataset=to_trl_dataset(ordered, UNPAIRED_COLUMNS),
            processing_class=load_tokenizer(base_model),
            peft_config=None if parent_adapter else config.lora.to_peft("CAUSAL_LM"),
            callbacks=callbacks,
        )

    spec = JobSpec("kto", ADAPTER_DIR, Path(base_model), config, ordered, heldout_rows, parent_name)
    return run_job(spec, output_dir, build, save_adapter, progress, should_stop)


def label_weights(rows: Sequence[dict], balance: bool) -> tuple[float, float]:
    """(desirable_weight, undesirable_weight) that make both labels pull equally."""
    desirable = sum(1 for row in rows if row["label"])
    undesirable = len(rows) - desirable
    if not balance or desirable == 0 or undesirable == 0:
        return 1.0, 1.0
    if desirable >= undesirable:
        return 1.0, desirable / undesirable
    return undesirable / desirable, 1.0


def anchored_kto_trainer(sft_weight: float, per: str = "reply"):
    """KTOTrainer whose loss adds ``sft_weight`` × the desirable rows' NLL (``desirable_nll``).

    TRL computes the policy's per-token log-probabilities in one forward pass with
    gradients (the KL and reference passes run without); the anchor reuses that pass
    rather than running a second one.
    """
    from trl import KTOTrainer

    if sft_weight <= 0:
        return KTOTrainer

    class AnchoredKTOTrainer(KTOTrainer):
        def _compute_loss(self, model, inputs, return_outputs):
            recorder = _PolicyPass(model)
            result = super()._compute_loss(recorder, inputs, return_outputs)
            loss, outputs = result if return_outputs else (result, None)
            anchor = desirable_nll(recorder.outputs, inputs, per)
            if anchor is not None:
                mode = "train" if self.model.training else "eval"
                self._metrics[mode]["sft_anchor"].append(anchor.item())
                loss = loss + sft_weight * anchor
            return (loss, outputs) if return_outputs else loss

    return AnchoredKTOTrainer


class _PolicyPass:
    """The model, recording the outputs of its one forward pass that has gradients."""

    def __init__(self, model):
        self._model, self.outputs = model, None

    def __call__(self, *args, **kwargs):
        import torch

        outputs = self._model(*args, **kwargs)
        if torch.is_grad_enabled():
            self.outputs = outputs
        return outputs

    def __getattr__(self, name):
        return getattr(self._model, name)


def desirable_nll(outputs, inputs, per: str = "reply"):
    """The batch's desirable rows' negative log-likelihood per completion token.

    ``per="reply"``: each row's mean over its tokens, then the mean over rows, so each
    up-rated reply counts once. ``per="token"``: the mean over all their tokens, where a
    400-token reply outweighs fifty short ones; with a fifth of the thumbs flipped, the
    long replies rated up by mistake then set the anchor (docs/training.md).
    """
    import torch

    if outputs is None:
        return None
    labels = torch.as_tensor(inputs["label"], dtype=torch.bool)
    if not labels.any():
        return None
    seq_len = inputs["input_ids"].size(1) - 1
    log_probs = outputs.log_probs[:, -seq_len:]
    mask = inputs["completion_mask"][:, 1:].to(log_probs.device).to(log_probs.dtype)
    labels = labels.to(log_probs.device)
    nll, mask = -(log_probs[labels] * mask[labels]), mask[labels]
    if per == "token":
        return nll.sum() / mask.sum().clamp(min=1)
    return (nll.sum(dim=1) / mask.sum(dim=1).clamp(min=1)).mean()
