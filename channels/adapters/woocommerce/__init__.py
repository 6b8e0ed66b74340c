"""WooCommerce REST API v3: the HTTP client (`client.py`), the adapter (`adapter.py`), the
credentials schema (`credentials.py`) and the orders' mapping (`orders.py`)."""
