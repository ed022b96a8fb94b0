"""The experimenter app: its own Streamlit process and port (``seofp study admin``), with
per-user logins; the participant app never serves it (docs/listening_participants.md)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import streamlit as st

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling page modules

import experimenter  # noqa: E402

from seofp_lab.errors import SeofpError  # noqa: E402
from seofp_lab.listening.listener import StudyService  # noqa: E402


@st.cache_resource(show_spinner=False)
def get_service(study_dir: str, db: str | None) -> StudyService:
    return StudyService(study_dir, db)


def main() -> None:
    st.set_page_config(page_title="Listening study: experimenter", layout="wide")
    here = os.environ.get("SEOFP_STUDY_DIR")
    if not here:
        st.error("Expected SEOFP_STUDY_DIR to name the study folder; start this page with "
                 "`seofp study admin studies/NAME`.")
        return
    try:
        service = get_service(here, os.environ.get("SEOFP_STUDY_DB"))
    except SeofpError as exc:
        st.error(experimenter.plain(exc))
        return
    experimenter.render(service)


main()
