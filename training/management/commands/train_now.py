from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from training import pipeline, runs


class Command(BaseCommand):
    help = "Run the retraining pipeline now, in the foreground, with a progress bar."

    def handle(self, *args, **options) -> None:
        run = runs.training_run_create(trigger="manual")
        if run is None:
            raise CommandError("A training run is already queued or running.")
        bar = tqdm(total=0, unit="step", dynamic_ncols=True)

        def show(run) -> None:
            bar.set_description(run.stage)
            bar.total = run.total_steps
            bar.n = run.step
            loss = run.history[-1]["loss"] if run.history else None
            bar.set_postfix(loss=f"{loss:.4f}" if loss is not None else "–")
            bar.refresh()

        run = pipeline.training_run_execute(run_id=run.pk, on_progress=show)
        bar.set_description(run.status)
        bar.close()
        self.stdout.write(f"Run {run.pk}: {run.status}. {run.reason or run.error}".strip())
        if run.version:
            self.stdout.write(f"Version {run.version.name}: {run.version.status}")
