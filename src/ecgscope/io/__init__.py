"""File formats: one module per format (``wfdb``, ``code15``, ``echonext``) plus atomic-write helpers.

Readers turn files into :class:`~ecgscope.ecg.ECG` records; writers exist where a format is also an output
(the simulator writes its cohorts through them). Nothing here preprocesses or stores.
"""

from ecgscope.io.atomic import atomic_dir, atomic_file, write_parquet, write_text

__all__ = ["atomic_dir", "atomic_file", "write_parquet", "write_text"]
