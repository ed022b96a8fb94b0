"""The listening-study app: routing and session state only; the logic is seofp_lab.listening.

Run by ``seofp study serve studies/NAME`` (which sets ``SEOFP_STUDY_DIR``). Study and token live
in the URL (``?token=…``): session state dies on reload, the store does not.
``?view=experimenter`` opens the password-protected experimenter page.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import streamlit as st

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling page modules

import experimenter  # noqa: E402
import listener_pages  # noqa: E402

from seofp_lab.errors import SeofpError, StudyError  # noqa: E402
from seofp_lab.listening.listener import StudyService  # noqa: E402


@st.cache_resource(show_spinner=False)
def get_service(study_dir: str, db: str | None) -> StudyService:
    return StudyService(study_dir, db)


def _study_dir() -> str:
    here = os.environ.get("SEOFP_STUDY_DIR")
    if here:
        return here
    name = st.query_params.get("study", "")
    default = Path(__file__).resolve().parents[1] / "studies"
    root = Path(os.environ.get("SEOFP_STUDIES_ROOT", default))
    if not name or not (root / name / "study.yaml").is_file():
        raise StudyError(f"Expected ?study=NAME naming a folder of {root} but got {name!r}")
    return str(root / name)


def main() -> None:
    st.set_page_config(page_title="Listening study", layout="centered")
    try:
        service = get_service(_study_dir(), os.environ.get("SEOFP_STUDY_DB"))
    except SeofpError as exc:
        st.error(str(exc))
        st.stop()
    if st.query_params.get("view") == "experimenter":
        experimenter.render(service)
        return
    if "listener" not in st.session_state:
        token = st.query_params.get("token")
        if token is None:
            listener_pages.consent(service)
            return
        try:
            st.session_state.listener = service.listener(token, listener_pages._ua())
        except StudyError as exc:
            st.error(str(exc))
            if st.button("Start a new session"):
                del st.query_params["token"]
                st.rerun()
            st.stop()
    listener_pages.route(service, st.session_state.listener)


main()
