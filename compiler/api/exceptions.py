"""The exception classes v1 code catches (`azureml.exceptions`), so its try/except branches run."""

from __future__ import annotations

from ..errors import UserError


class AzureMLException(Exception):
    def __init__(self, exception_message="", *args, **kwargs):
        super().__init__(exception_message, *args)
        self.message = exception_message

    def __str__(self) -> str:
        return str(self.message)


class UserErrorException(AzureMLException):
    pass


class ComputeTargetException(AzureMLException):
    pass


class UnknownDatastore(UserError, UserErrorException):
    """A datastore name that is neither in mlpipe.yaml nor registered by the code. Uncaught, it is
    reported at the user's line; v1 code that catches UserErrorException registers it instead."""

    def __init__(self, message: str, origin=None):
        UserError.__init__(self, message, origin)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UnknownCompute(UserError, ComputeTargetException):
    """A compute name that is neither in mlpipe.yaml nor created by the code. v1 code that catches
    ComputeTargetException creates it instead; uncaught, it is reported at the user's line."""

    def __init__(self, message: str, origin=None):
        UserError.__init__(self, message, origin)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UnknownComputeKey(UnknownCompute, KeyError):
    """`ws.compute_targets[missing]`: a KeyError, as in v1, with the same clear message."""


def make(name: str) -> type:
    """Any other `azureml.exceptions` name: a plain subclass, so `except X:` works."""
    base = UserErrorException if "User" in name else AzureMLException
    return type(name, (base,), {"__module__": "azureml.exceptions"})
