"""In front of a clinician: one ECG in, a result or "cannot assess" out.

:mod:`~ecgscope.serve.assess` checks a record and answers for it with a model loaded once (used by the service
and by ``ecgscope predict --input``); :mod:`~ecgscope.serve.app` is the FastAPI service (``ecgscope serve``,
extra ``ecgscope[serve]``) with the web viewer in ``static/``; :mod:`~ecgscope.serve.clinic` is the batch mode.
"""

from ecgscope.serve.assess import CANNOT_ASSESS, RESULT, Assessor, quality_checks

__all__ = ["CANNOT_ASSESS", "RESULT", "Assessor", "quality_checks"]
