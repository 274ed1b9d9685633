"""Forms for the pages (the JSON API parses its own bodies)."""

from __future__ import annotations

from django import forms
from django.contrib.auth.forms import UserCreationForm


class SignupForm(UserCreationForm):
    """Django's sign-up form with the browser hints a login page should have."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["username"].widget.attrs.update(autocomplete="username", autofocus=True)
        for name in ("password1", "password2"):
            self.fields[name].widget.attrs["autocomplete"] = "new-password"


class ProfileForm(forms.Form):
    share_for_training = forms.BooleanField(required=False)
    arena_opt_in = forms.BooleanField(required=False)
