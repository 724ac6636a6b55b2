"""The one local AWS account: its id, its default Region, and whom moto credits a request to."""

from __future__ import annotations

import os

# moto's DEFAULT_ACCOUNT_ID (moto.core): every resource of the local stack lives in this account.
ACCOUNT_ID = "123456789012"
DEFAULT_REGION = "us-east-1"


def account_for(access_key: str) -> str:
    """The account moto attributes to a request, by the same rules moto's responses use."""
    if "MOTO_ACCOUNT_ID" in os.environ:
        return os.environ["MOTO_ACCOUNT_ID"]
    from moto.iam.models import get_account_id_from

    return get_account_id_from(access_key or "AKIAEXAMPLE")
