"""Every browser-facing URL but the admin (config/urls.py includes this at the root).

The namespaces name the product area a URL belongs to: ``chat:index``,
``feedback:api-rating``. Sign-up, log-in and log-out have none, because
settings name them plainly (``LOGIN_URL = "login"``).
"""

from django.contrib.auth import views as auth_views
from django.urls import include, path

from live import pages
from live.api.conversations import ConversationApi, ConversationListApi
from live.api.feedback import PreferenceApi, ProfileApi, RatingApi

accounts = [
    path("signup/", pages.signup, name="signup"),
    path(
        "login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
]

chat = [
    path("", pages.index, name="index"),
    path("c/<int:conversation_id>/", pages.conversation_page, name="conversation"),
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
    path("api/messages/<str:message_id>/rating", RatingApi.as_view(), name="api-rating"),
    path(
        "api/messages/<str:message_id>/preference", PreferenceApi.as_view(), name="api-preference"
    ),
    path("api/profile/", ProfileApi.as_view(), name="api-profile"),
]

urlpatterns = [
    *accounts,
    path("", include((chat, "chat"))),
    path("", include((feedback, "feedback"))),
]
