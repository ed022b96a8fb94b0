"""The JND ABX listening study (docs/listening.md).

``protocol`` (study.yaml, schedules), ``stimuli`` + ``build`` (prepare: loudness matching,
catch and ladder clips, the hashed manifest, byte-unique served buffers), ``store`` (SQLAlchemy),
``listener`` + ``serve`` (the service the app calls), ``stats``, ``power``, ``psychometric``,
``analysis``, ``plots``, ``report`` (MLflow), ``data`` (tables and export), ``cli``
(``seofp study``). Nothing here imports Streamlit.
"""
