"""Runs and versions for staff: progress, loss chart, gate verdict, lineage, promote/rollback."""

from __future__ import annotations

import datetime
import json

from django.contrib import admin, messages
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from chat.refusals import Refusal
from training import arena, dashboard, services
from training.models import ModelVersion, ServingConfig, TrainingRun

CHART_WIDTH, CHART_HEIGHT = 360, 90


def _score(value) -> str:
    return "—" if value is None else f"{value:.2f}"


def _heldout_table(samples: list[dict], metrics: dict) -> str:
    """What each wrote to prompts of held-out conversations, with the reward model's scores."""
    if not samples:
        return ""
    judged = metrics.get("judge") == "reward_model"
    caption = (
        "Held-out prompts, scored by the run's reward model"
        if judged
        else "Held-out prompts (no reward model passed its evaluation: not scored)"
    )
    headers = ("prompt", "mode", "parent", "score", "this version", "score", "flags")
    rows = (
        (
            sample["prompt"],
            sample["mode"],
            sample["parent"],
            _score(sample.get("parent_score")),
            sample["candidate"],
            _score(sample.get("candidate_score")),
            _flags(sample),
        )
        for sample in samples
    )
    return _replies_table(caption, headers, rows, replies=(2, 4))


def _regression_table(samples: list[dict]) -> str:
    if not samples:
        return ""
    headers = ("prompt", "parent", "this version", "flags")
    rows = (
        (sample["prompt"], sample["parent"], sample["candidate"], _flags(sample))
        for sample in samples
    )
    return _replies_table("Regression prompts, greedy", headers, rows, replies=(1, 2))


def _flags(sample: dict) -> str:
    return ", ".join(sample.get("candidate_flags") or []) or "—"


def _replies_table(caption: str, headers, rows, *, replies: tuple[int, ...]) -> str:
    """An escaped table; the ``replies`` columns keep their line breaks (``<pre>``)."""
    cells = "".join(
        "<td><pre>{}</pre></td>" if index in replies else "<td>{}</td>"
        for index in range(len(headers))
    )
    return format_html(
        "<table><caption>{}</caption><tr>{}</tr>{}</table>",
        caption,
        format_html_join("", "<th>{}</th>", ((header,) for header in headers)),
        format_html_join("", "<tr>" + cells + "</tr>", rows),
    )


def _loop_context() -> dict:
    """The line above the run and version lists: feedback waiting, the next tick, Train now."""
    loop = dashboard.loop_state()
    tick = loop["next_tick"]
    next_tick = None if tick is None else datetime.datetime.fromisoformat(tick)
    return {"loop": loop, "next_tick": next_tick, "tick_every": _every(loop["tick_seconds"])}


def _every(seconds: float) -> str:
    """300 → "5 min", 45 → "45 s", 7200 → "2 h"."""
    seconds = round(seconds)
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"


def _changelist_link(model: str, query: str, label: str) -> str:
    return format_html('<a href="{}?{}">{}</a>', reverse(f"admin:{model}_changelist"), query, label)


def _ids_query(ids: list[int]) -> str:
    return "id__in=" + ",".join(str(pk) for pk in ids)


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "status",
        "trigger",
        "method",
        "stage",
        "progress_bar",
        "created_at",
        "finished_at",
        "version",
    )
    list_filter = ("status", "trigger", "method")
    readonly_fields = (
        "status",
        "trigger",
        "method",
        "stage",
        "progress_bar",
        "loss_chart",
        "reason",
        "error",
        "feedback_used",
        "dataset_hash",
        "parent_version",
        "version",
        "metrics_display",
        "log_display",
        "heartbeat_at",
        "created_at",
        "started_at",
        "finished_at",
        "task_id",
    )
    fields = readonly_fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context=None):
        return super().changelist_view(request, {**(extra_context or {}), **_loop_context()})

    @admin.display(description="progress")
    def progress_bar(self, run: TrainingRun) -> str:
        return format_html(
            '<progress max="1" value="{}" title="step {} of {}"></progress> {}/{}',
            f"{run.progress:.3f}",
            run.step,
            run.total_steps,
            run.step,
            run.total_steps,
        )

    @admin.display(description="loss")
    def loss_chart(self, run: TrainingRun) -> str:
        losses = [point["loss"] for point in run.history if point.get("loss") is not None]
        if len(losses) < 2:
            return "—"
        low, high = min(losses), max(losses)
        span = (high - low) or 1.0
        points = " ".join(
            f"{index * CHART_WIDTH / (len(losses) - 1):.1f},"
            f"{CHART_HEIGHT - (loss - low) / span * CHART_HEIGHT:.1f}"
            for index, loss in enumerate(losses)
        )
        return format_html(
            '<svg width="{}" height="{}" role="img" aria-label="training loss per step" '
            'style="background:#f6f6f6"><polyline fill="none" stroke="#417690" stroke-width="2" '
            'points="{}"></polyline></svg><br>loss {} → {}',
            CHART_WIDTH,
            CHART_HEIGHT,
            points,
            f"{losses[0]:.4f}",
            f"{losses[-1]:.4f}",
        )

    @admin.display(description="feedback it learned from")
    def feedback_used(self, run: TrainingRun) -> str:
        ratings = _changelist_link(
            "feedback_rating", _ids_query(run.rating_ids), f"{len(run.rating_ids)} ratings"
        )
        pairs = _changelist_link(
            "feedback_preferencepair",
            _ids_query(run.pair_ids),
            f"{len(run.pair_ids)} preference pairs",
        )
        return format_html("{} · {}", ratings, pairs)

    @admin.display(description="metrics")
    def metrics_display(self, run: TrainingRun) -> str:
        return format_html("<pre>{}</pre>", json.dumps(run.metrics, indent=2))

    @admin.display(description="log")
    def log_display(self, run: TrainingRun) -> str:
        return format_html("<pre>{}</pre>", run.log)


def _activate(modeladmin, request: HttpRequest, queryset, verb: str) -> None:
    if queryset.count() != 1:
        modeladmin.message_user(request, f"Select exactly one version to {verb}.", messages.ERROR)
        return
    version = services.version_activate(version=queryset.get(), by=request.user)
    modeladmin.message_user(request, f"{version} is now in service.", messages.SUCCESS)
    # Staff may overrule the arena; they are told when they do.
    check = arena.arena_check(candidate=version, parent=version.parent)
    if not check["passed"]:
        modeladmin.message_user(
            request, f"Note: in the arena, {version} {check['detail']}.", messages.WARNING
        )


@admin.action(description="Promote: put into service")
def promote(modeladmin, request, queryset) -> None:
    _activate(modeladmin, request, queryset, "promote")


@admin.action(description="Roll back to this version")
def roll_back(modeladmin, request, queryset) -> None:
    _activate(modeladmin, request, queryset, "roll back to")


@admin.action(description="Reject")
def reject(modeladmin, request, queryset) -> None:
    for version in queryset:
        try:
            services.version_reject(version=version)
        except Refusal as refusal:
            modeladmin.message_user(request, f"{version}: {refusal.message}", messages.ERROR)


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "status",
        "method",
        "parent",
        "gate_verdict",
        "created_at",
        "activated_at",
        "activated_by",
    )
    list_filter = ("status", "method")
    actions = [promote, roll_back, reject]
    readonly_fields = (
        "name",
        "status",
        "base_model",
        "adapter_path",
        "parent",
        "method",
        "gate_checks",
        "replies_side_by_side",
        "metrics_display",
        "lineage",
        "created_at",
        "activated_at",
        "activated_by",
    )
    fields = readonly_fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context=None):
        # The base model is always listed, so "Roll back to this version" can reach it.
        services.base_version_ensure()
        return super().changelist_view(request, {**(extra_context or {}), **_loop_context()})

    @admin.display(description="gate")
    def gate_verdict(self, version: ModelVersion) -> str:
        if version.gate_report is None:
            return "—"
        return "passed" if version.gate_report.get("passed") else "failed"

    @admin.display(description="gate checks")
    def gate_checks(self, version: ModelVersion) -> str:
        checks = (version.gate_report or {}).get("checks", [])
        if not checks:
            return "—"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    check["name"],
                    _outcome(check),
                    check.get("value"),
                    check.get("threshold"),
                    check.get("detail", ""),
                )
                for check in checks
            ),
        )
        return format_html(
            "<table><tr><th>check</th><th>result</th><th>value</th><th>threshold</th><th>detail</th>"
            "</tr>{}</table>",
            rows,
        )

    @admin.display(description="replies: parent → this version")
    def replies_side_by_side(self, version: ModelVersion) -> str:
        """Held-out prompts, then the regression prompts, answered by the parent and by this one."""
        metrics = (version.gate_report or {}).get("metrics", {})
        heldout, regression = metrics.get("heldout_samples", []), metrics.get("samples", [])
        if not heldout and not regression:
            return "—"
        return format_html("{}{}", _heldout_table(heldout, metrics), _regression_table(regression))

    @admin.display(description="metrics")
    def metrics_display(self, version: ModelVersion) -> str:
        return format_html("<pre>{}</pre>", json.dumps(version.metrics, indent=2))

    @admin.display(description="lineage")
    def lineage(self, version: ModelVersion) -> str:
        parts = []
        run = getattr(version, "run", None)
        if run is not None:
            run_url = reverse("admin:training_trainingrun_change", args=[run.pk])
            parts.append(format_html('<a href="{}">training run {}</a>', run_url, run.pk))
            parts.append(
                _changelist_link(
                    "feedback_rating",
                    _ids_query(run.rating_ids),
                    f"{len(run.rating_ids)} ratings it learned from",
                )
            )
        parts.append(
            _changelist_link("chat_message", f"model_version={version.name}", "replies it wrote")
        )
        return format_html_join(" · ", "{}", ((part,) for part in parts))


@admin.register(ServingConfig)
class ServingConfigAdmin(admin.ModelAdmin):
    list_display = ("canary_version", "canary_percent", "updated_at")


def _outcome(check: dict) -> str:
    if not check.get("applicable", True):
        return "not applicable"
    return "✔ passed" if check["passed"] else "✘ failed"
