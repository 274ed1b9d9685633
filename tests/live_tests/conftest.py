"""Fixtures the delivery layer's tests share with the feedback tests."""

from tests.feedback_tests.conftest import (  # noqa: F401  (fixtures, shared)
    alice_client,
    bob_client,
    conversation,
    replies,
)
