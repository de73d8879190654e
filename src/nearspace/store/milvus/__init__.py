"""Milvus as a nearspace store (extra ``milvus``): the backend, its filters, and the client helpers."""
