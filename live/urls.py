"""Every browser-facing URL but the admin (config/urls.py includes this at the root).

The namespaces name the product area a URL belongs to: ``chat:index``,
``feedback:api-rating``. Sign-up, log-in and log-out have none, because
settings name them plainly (``LOGIN_URL = "login"``).
"""

from django.contrib.auth import views as auth_views
from django.urls import include, path

from live import arena as arena_views
from live import dashboard, pages
from live import review as review_views
from live.api.conversations import ConversationApi, ConversationListApi
from live.api.documents import DocumentApi, DocumentFileApi, DocumentListApi, PassageApi
from live.api.feedback import PreferenceApi, ProfileApi, RatingApi, WrittenReplyApi

accounts = [
    path("signup/", pages.signup, name="signup"),
    path(
        "login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("logout/", pages.logout, name="logout"),
]

chat = [
    path("", pages.index, name="index"),
    path("c/<int:conversation_id>/", pages.conversation_page, name="conversation"),
    path("documents/", pages.documents_page, name="documents"),
    path("api/conversations/", ConversationListApi.as_view(), name="api-conversations"),
    path(
        "api/conversations/<int:conversation_id>/",
        ConversationApi.as_view(),
        name="api-conversation",
    ),
]

# Message ids are matched as text so that a malformed one answers the API's
# JSON 400 ("invalid", field "message"), not an HTML 404 page.
feedback = [
    path("settings/", pages.settings_page, name="settings"),
    path("settings/api-keys/", pages.api_key_create, name="api-key-create"),
    path("settings/api-keys/<int:key_id>/revoke", pages.api_key_revoke, name="api-key-revoke"),
    path("api/messages/<str:message_id>/rating", RatingApi.as_view(), name="api-rating"),
    path(
        "api/messages/<str:message_id>/preference", PreferenceApi.as_view(), name="api-preference"
    ),
    path(
        "api/messages/<str:message_id>/written-reply",
        WrittenReplyApi.as_view(),
        name="api-written-reply",
    ),
    path("api/profile/", ProfileApi.as_view(), name="api-profile"),
]

# Staff: the focus review queue and the learning dashboard (live.review, live.dashboard).
review = [
    path("review/", review_views.queue_page, name="queue"),
    path("review/api/next", review_views.QueueNextApi.as_view(), name="api-next"),
    path(
        "review/api/ratings/<int:item_id>",
        review_views.ItemReviewApi.as_view(kind="rating"),
        name="api-rating",
    ),
    path(
        "review/api/pairs/<int:item_id>",
        review_views.ItemReviewApi.as_view(kind="pair"),
        name="api-pair",
    ),
    path("review/api/undo", review_views.UndoApi.as_view(), name="api-undo"),
    path("review/dashboard/", dashboard.dashboard_page, name="dashboard"),
    path("review/dashboard/train", dashboard.train_now, name="train-now"),
]

# The arena: staff and users who opt in; replies stream over the chat websocket.
arena = [
    path("arena/", arena_views.arena_page, name="index"),
    path("api/arena/leaderboard", arena_views.LeaderboardApi.as_view(), name="api-leaderboard"),
]

# Documents to chat with, and the passages replies cite (owner only).
documents = [
    path("api/documents/", DocumentListApi.as_view(), name="api-list"),
    path("api/documents/<str:document_id>", DocumentApi.as_view(), name="api-document"),
    path("api/documents/<str:document_id>/file", DocumentFileApi.as_view(), name="api-file"),
    path("api/passages/<str:passage_id>", PassageApi.as_view(), name="api-passage"),
]

urlpatterns = [
    *accounts,
    path("", include((review, "review"))),
    path("", include((arena, "arena"))),
    path("", include((chat, "chat"))),
    path("", include((feedback, "feedback"))),
    path("", include((documents, "documents"))),
]
