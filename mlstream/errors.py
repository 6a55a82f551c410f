"""Errors a user can act on: the CLI prints their message, without a traceback, and exits 2."""


class UserError(RuntimeError):
    """Something the user can fix; the message says what to do."""


class AccessDenied(UserError):
    """The broker refused an operation on a resource: the CLI names the profile's principal beside them."""

    def __init__(self, operation: str, resource_type: str, resource: str):
        super().__init__(f"authorization denied: may not {operation} {resource_type} {resource}")
        self.operation, self.resource_type, self.resource = operation, resource_type, resource
