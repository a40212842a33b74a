"""Independent float64 reference implementations, and models of common mistakes.

Private: never shipped to students. Written for clarity, not speed: plain loops in float64.
"""
