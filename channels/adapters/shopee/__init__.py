"""Shopee Open Platform v2: the HTTP client (`client.py`), the adapter (`adapter.py`), the
credentials schema (`credentials.py`) and the order statuses and payloads (`orders.py`)."""
