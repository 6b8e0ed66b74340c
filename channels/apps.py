from django.apps import AppConfig


class ChannelsConfig(AppConfig):
    name = "channels"
    verbose_name = "Channels"

    def ready(self) -> None:
        from catalog.signals import bundle_changed, product_changed, product_deleted, stock_changed
        from channels.catalog_sync import on_product_changed, on_product_deleted
        from channels.inventory import on_bundle_changed, on_stock_changed

        # The channels app listens on the catalog's seams (see catalog.signals).
        stock_changed.connect(on_stock_changed, dispatch_uid="channels.inventory")
        product_changed.connect(on_product_changed, dispatch_uid="channels.catalog_sync")
        product_deleted.connect(on_product_deleted, dispatch_uid="channels.catalog_sync.delete")
        bundle_changed.connect(on_bundle_changed, dispatch_uid="channels.inventory.bundles")
