from django.apps import AppConfig


class ChannelsConfig(AppConfig):
    name = "channels"
    verbose_name = "Channels"

    def ready(self) -> None:
        from catalog.signals import stock_changed
        from channels.inventory import on_stock_changed

        # The inventory-sync engine listens on the catalog's stock seam (see catalog.signals).
        stock_changed.connect(on_stock_changed, dispatch_uid="channels.inventory")
