"""Evaluation harness: analytics methods on the real datasets under ../shared/datasets."""
