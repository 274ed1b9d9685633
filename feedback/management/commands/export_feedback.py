import datetime
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from feedback.exports import ANY_STATUS, FORMATS, export_to_file
from feedback.models import ReviewStatus


class Command(BaseCommand):
    help = "Export feedback as JSONL in TRL's conversational dataset formats."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--format", required=True, choices=FORMATS)
        parser.add_argument(
            "--status",
            default=ReviewStatus.APPROVED,
            choices=[*ReviewStatus.values, ANY_STATUS],
            help="review status to export (default: approved)",
        )
        parser.add_argument("--since", type=_date, help="only feedback from this date (YYYY-MM-DD)")
        parser.add_argument("--out", required=True, help="output .jsonl file, or - for stdout")

    def handle(self, *args, **options) -> None:
        out = options["out"]
        path = Path("/dev/stdout") if out == "-" else Path(out)
        count = export_to_file(
            path=path, format=options["format"], status=options["status"], since=options["since"]
        )
        print(f"Exported {count} {options['format']} rows to {out}", file=sys.stderr)


def _date(value: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--since must be a date like 2026-01-31, not {value!r}") from None
