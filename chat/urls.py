from django.urls import path

from chat import views

app_name = "chat"

urlpatterns = [
    path("", views.index, name="index"),
    path("c/<int:conversation_id>/", views.conversation_page, name="conversation"),
    path("api/conversations/", views.ConversationListApi.as_view(), name="api-conversations"),
    path(
        "api/conversations/<int:conversation_id>/",
        views.ConversationApi.as_view(),
        name="api-conversation",
    ),
]
