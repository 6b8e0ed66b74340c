"""The seams through which catalog changes reach the rest of omni.

The catalog does not know about channels (dependencies point catalog ← channels), so it announces
what changed and the channels app listens:

- `stock_changed` is sent by `catalog.services.stock_apply` *inside* the transaction that wrote the
  stock rows and their ledger rows, with `movements`: one `catalog.services.MovementRecord` per
  ledger row just written (the same attribute names as StockMovement). The
  inventory-sync engine listens to it to write its outbox of pending pushes in the same
  transaction, so a push is queued exactly when the stock change commits.
- `product_changed` is sent when a product's synced fields, variants or active flag change, with
  `product_id`, `changed` (field names) and `created_variant_ids`; catalog pushes listen to it.
- `product_deleted` is sent before a product is deleted, with `product_id` and `variant_ids`, so
  its listings can be deleted on the channels.
- `bundle_changed` is sent when bundles' components change, with `bundle_ids`, inside the
  transaction: what each of those bundles has available may have changed with no stock moving.
"""

from django.dispatch import Signal

stock_changed = Signal()
product_changed = Signal()
product_deleted = Signal()
bundle_changed = Signal()
