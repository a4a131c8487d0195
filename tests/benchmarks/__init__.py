"""`make bench`: the portal's hot paths measured beside their limits (see run.py)."""
