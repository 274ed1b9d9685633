"""Feedback endpoints (docs/protocol.md) and the account settings page.

config/urls.py includes this module at the root: ``path("", include("feedback.urls"))``.
"""

from django.urls import path

from feedback import views

app_name = "feedback"

# Message ids are matched as text so that a malformed one answers the API's
# JSON 400 ("invalid", field "message"), not an HTML 404 page.
urlpatterns = [
    path("settings/", views.settings_page, name="settings"),
    path("api/messages/<str:message_id>/rating", views.RatingApi.as_view(), name="api-rating"),
    path(
        "api/messages/<str:message_id>/preference",
        views.PreferenceApi.as_view(),
        name="api-preference",
    ),
    path("api/profile/", views.ProfileApi.as_view(), name="api-profile"),
]
