"""Hidden checks: fresh random inputs, float64 references, structure counts. Never shipped to students."""
