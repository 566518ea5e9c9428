"""Data sources: each fetched at run time into a cache folder and checked with sha256."""
