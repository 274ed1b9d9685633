"""Sign-up, log-in and log-out pages.

Kept apart from ``chat.urls`` because settings name them without a namespace
(``LOGIN_URL = "login"``); config/urls.py includes this module at the root.
"""

from django.contrib.auth import views as auth_views
from django.urls import path

from chat import views

urlpatterns = [
    path("signup/", views.signup, name="signup"),
    path(
        "login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
]
