"""Training protocol of the paper (Table 2) and the quick profile."""
