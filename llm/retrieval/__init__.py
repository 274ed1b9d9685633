"""Documents for retrieval: loading files, splitting them into passages, BM25 and
vector indexes, rank fusion, and putting passages into a prompt with citations.

Plain Python (no Django): the ``documents`` app stores what these build and
the ``live`` chain asks them for passages.
"""
