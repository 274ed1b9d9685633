from django.contrib import admin

from chat.models import Conversation, Message


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ("id", "title", "owner", "created_at", "updated_at")
    search_fields = ("title", "owner__username")
    list_select_related = ("owner",)
    readonly_fields = ("owner", "created_at", "updated_at")


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    """Replies by model version: the lineage from a version to what it wrote."""

    list_display = ("id", "role", "status", "model_version", "conversation", "created_at")
    list_filter = ("role", "status", "model_version")
    # error_detail holds what users are not shown (server addresses, exceptions).
    search_fields = ("content", "model_version", "error", "error_detail", "streamed_by")
    list_select_related = ("conversation",)
    readonly_fields = [field.name for field in Message._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False
