from django.contrib import admin

from chat.models import ApiKey, Conversation, Message


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ("id", "title", "owner", "source", "created_at", "updated_at")
    list_filter = ("source",)
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


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Staff see every key (never the key itself: only its hash is stored) and disable any."""

    list_display = (
        "prefix",
        "name",
        "owner",
        "created_at",
        "last_used_at",
        "revoked_at",
        "disabled",
    )
    list_filter = ("disabled",)
    search_fields = ("name", "prefix", "owner__username")
    list_select_related = ("owner",)
    readonly_fields = (
        "owner",
        "name",
        "prefix",
        "key_hash",
        "created_at",
        "last_used_at",
        "revoked_at",
    )
    actions = ["disable", "enable"]

    def has_add_permission(self, request) -> bool:
        return False  # keys are created by their owners (Settings) or api_key_create

    @admin.action(description="Disable the selected keys")
    def disable(self, request, queryset) -> None:
        self.message_user(request, f"{queryset.update(disabled=True)} key(s) disabled.")

    @admin.action(description="Enable the selected keys again")
    def enable(self, request, queryset) -> None:
        self.message_user(request, f"{queryset.update(disabled=False)} key(s) enabled.")
