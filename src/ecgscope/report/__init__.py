"""Figures (matplotlib, saved as PNG) and, later, the HTML study report. Computes no statistics."""
