"""TikTok Shop Partner API (202309+), which also serves Tokopedia shops: the HTTP client
(`client.py`), the adapters (`adapter.py`), orders and pushes (`orders.py`) and the credentials
schema (`credentials.py`)."""
