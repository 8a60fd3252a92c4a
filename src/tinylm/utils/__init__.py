"""Glue between Hydra configs and the rest of tinylm."""
