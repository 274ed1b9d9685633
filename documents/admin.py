from django.contrib import admin

from documents.models import Document


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):
    """Read-only: documents are the owners' own; staff see their state, not their text."""

    list_display = ("filename", "owner", "kind", "status", "chunk_count", "size", "created_at")
    list_filter = ("status", "kind")
    search_fields = ("filename", "owner__username")
    readonly_fields = [field.name for field in Document._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
