"""Lazada Open Platform: the HTTP client (`client.py`), the adapter (`adapter.py`), the
credentials schema (`credentials.py`) and the order statuses, payloads and pushes (`orders.py`)."""
