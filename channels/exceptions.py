"""Domain errors raised by channel services."""


class ChannelError(Exception):
    """The request was understood but cannot be done for this channel."""


class ScanAlreadyRunning(ChannelError):
    def __init__(self, channel, scan) -> None:
        self.channel = channel
        self.scan = scan
        since = f" (scan #{scan.pk}, {scan.get_status_display().lower()})" if scan else ""
        super().__init__(f"A scan of {channel} is already running{since}; wait for it to finish.")


class InvalidCredentials(ChannelError):
    """Credentials that do not fit the channel kind's schema. Never echoes their values."""
