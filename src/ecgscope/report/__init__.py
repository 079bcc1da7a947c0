"""Figures (matplotlib, saved as PNG) and, later, the HTML study report. Computes no statistics."""

from ecgscope._callable import make_callable

make_callable(__name__)  # es.report(...) is ecgscope.api.report
