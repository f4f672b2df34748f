"""Index: embedders, dense (FAISS) and lexical (BM25) indexes, and the versioned on-disk store."""
