"""Evaluate: honest numbers for retrieval and similarity.

Owns dataset loaders (BEIR folders, STS-B files), metric computation through
pytrec_eval (the reference trec_eval implementation), and the runners that retrieve
with every search mode, tune hybrid fusion on training qrels only, and report test
figures separately.
"""
