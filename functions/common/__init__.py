"""Code shared by every hyenaflow Lambda (no torch, no heavy imports)."""
