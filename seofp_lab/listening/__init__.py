"""The JND ABX listening study (docs/listening.md).

``protocol`` (study.yaml, schedules), ``stimuli`` + ``build`` (prepare: loudness matching,
catch, trap and ladder clips, the hashed manifest, byte-unique served buffers), ``store``
(SQLAlchemy, enrolment), ``listener`` + ``serve`` (the service the app calls), ``stats``,
``power``, ``psychometric``, ``raters`` (listener bias and inconsistency), ``decision`` (the
one decision rule, docs/listening_analysis.md), ``analysis``, ``plots``, ``report`` (MLflow),
``data`` (tables and export), ``cli`` (``seofp study``). Nothing here imports Streamlit.
"""
