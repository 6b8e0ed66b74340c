"""Domain errors of the order sync. Interfaces turn them into messages and HTTP codes."""


class OrderSyncError(Exception):
    """Base class: the request was understood but could not be carried out."""


class InvalidOrderNumbers(OrderSyncError):
    """Manual Download Order was given nothing usable (no numbers, or too many)."""


class OrderDownloadFailed(OrderSyncError):
    """The marketplace could not be asked for the orders; nothing was written.

    `retryable` tells whether trying again later may help.
    """

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable
