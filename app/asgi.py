"""The served listening app: ``study_app.py`` plus the one-use audio route.

``seofp study serve`` runs ``streamlit run app/asgi.py``; Streamlit finds ``app`` below and
serves the script with the extra route ``/seofp/audio/{ticket}``, which answers each ticket's
WAV once and records the serve (docs/listening_blinding.md).
"""

from __future__ import annotations

import streamlit as st
from starlette.routing import Route

from seofp_lab.listening.blinding import AUDIO_ROUTE, audio_route_handler

app = st.App("study_app.py", routes=[
    Route(f"/{AUDIO_ROUTE}/{{ticket}}", audio_route_handler(), methods=["GET"])])
