"""Analyze: understand what an embedding space holds.

Owns supervised and zero-shot classification on top of a collection (logistic regression,
k-nearest-neighbour voting, label-name similarity, with one-hot and TF-IDF baselines side by
side), clustering with distinctive terms per cluster, 2-D maps (PCA/UMAP, interactive HTML
and PNG), neighbours / near-duplicates / outliers, word vectors learned from a corpus
(word2vec, fastText) with word-similarity and analogy evaluation, and the Word Embedding
Association Test for bias. Models it learns are stored with the collection (artifacts table,
one transaction each); heavy libraries are imported inside the functions that need them.
"""
