"""Data stage: synthetic default dataset, image sources, validated splits, reports."""
