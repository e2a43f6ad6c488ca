"""Retrieval and fused generation."""
