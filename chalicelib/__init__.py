"""Lifeboat's domain and adapters; shipped inside the Lambda bundle."""
