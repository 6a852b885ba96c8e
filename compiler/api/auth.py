"""Authentication classes v1 notebooks create before calling REST endpoints: inert during capture.

Nothing is logged in and no secret is kept: the header they hand out carries no token.
"""

from __future__ import annotations


class _Authentication:
    def __init__(self, *args, **kwargs):
        # Secrets passed here (passwords, tokens) are deliberately not stored.
        pass

    def get_authentication_header(self) -> dict:
        return {"Authorization": "Bearer mlpipe-capture-has-no-token"}

    def get_token(self, *scopes, **kwargs):
        return type("AccessToken", (), {"token": "mlpipe-capture-has-no-token", "expires_on": 0})()

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class InteractiveLoginAuthentication(_Authentication):
    pass


class ServicePrincipalAuthentication(_Authentication):
    pass


class AzureCliAuthentication(_Authentication):
    pass


class MsiAuthentication(_Authentication):
    pass


class TokenAuthentication(_Authentication):
    pass


class AbstractAuthentication(_Authentication):
    pass
