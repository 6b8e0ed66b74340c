from django.apps import AppConfig


class SynclogsConfig(AppConfig):
    name = "synclogs"
    verbose_name = "Sync logs"

    def ready(self) -> None:
        from django.db.models.signals import post_save

        from channels.models import Channel
        from synclogs.webhooks import on_channel_saved

        # A channel saved active (admin, API, shell) queues the pushes it held while paused.
        post_save.connect(on_channel_saved, sender=Channel, dispatch_uid="synclogs.webhooks.held")
