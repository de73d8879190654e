"""Learn: fit small models that reshape an embedding space for a task.

Owns the query adapter (a linear map trained from query-document pairs so that stored
document vectors need no re-encoding), its training loop with early stopping on held-out
queries, and its persistence inside the store.
"""
