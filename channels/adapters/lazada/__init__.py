"""Lazada Open Platform: the HTTP client (`client.py`), the adapter (`adapter.py`) and the
credentials schema (`credentials.py`)."""
