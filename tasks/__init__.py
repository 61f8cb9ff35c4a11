"""Tasks: one module or package per task; each registers itself on import."""
