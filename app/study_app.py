"""The listening-study app for participants: routing and session state only; the logic is
seofp_lab.listening.

Run by ``seofp study serve studies/NAME`` (which sets ``SEOFP_STUDY_DIR``). The participant's
token lives in the URL (``?token=…``) and in the browser's localStorage: session state dies on
reload, the store does not. Crowd platforms' ids (``?PROLIFIC_PID=…``, ``?workerId=…``) resume
the participant they enrolled. The experimenter page is a separate app and process
(``seofp study admin``); nothing here serves it.

Any unexpected error stops at this page boundary: the participant sees a plain message with an
incident id, the experimenter finds the traceback under that id (log and store).
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import streamlit as st

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling page modules

import listener_pages  # noqa: E402

from seofp_lab.errors import SeofpError, StudyError  # noqa: E402
from seofp_lab.listening.auth import record_incident  # noqa: E402
from seofp_lab.listening.crowd import crowd_identity, find_crowd_token  # noqa: E402
from seofp_lab.listening.listener import StudyService  # noqa: E402

STUDY_NAME = re.compile(r"^[A-Za-z0-9_-]{1,100}$")


@st.cache_resource(show_spinner=False)
def get_service(study_dir: str, db: str | None) -> StudyService:
    return StudyService(study_dir, db)


def study_dir(name: str | None, root: Path) -> Path:
    """The study folder ``root/name``; a name with a path in it (``..``, ``/``) is refused."""
    if not name or not STUDY_NAME.match(name):
        raise StudyError("Expected ?study=NAME with letters, digits, _ or - only")
    path = (root / name).resolve()
    if path.parent != root.resolve() or not (path / "study.yaml").is_file():
        raise StudyError("Expected ?study=NAME to name a study of this server")
    return path


def _service() -> StudyService:
    here = os.environ.get("SEOFP_STUDY_DIR")
    if not here:
        default = Path(__file__).resolve().parents[1] / "studies"
        root = Path(os.environ.get("SEOFP_STUDIES_ROOT", default))
        here = str(study_dir(st.query_params.get("study"), root))
    return get_service(here, os.environ.get("SEOFP_STUDY_DB"))


def _fail(message: str) -> None:
    """A dead end made explicit: what happened and what to do, never the raw error."""
    st.header("This link does not work")
    st.write(message)


def _main() -> None:
    try:
        service = _service()
    except SeofpError:
        _fail("The study named in this link does not exist on this server. Please open the "
              "link you were given again, exactly as it was.")
        return
    st.session_state.service = service
    if "listener" not in st.session_state:
        token = st.query_params.get("token")
        try:
            identity = crowd_identity(st.query_params)
        except StudyError as exc:
            _fail(listener_pages.plain(exc))
            return
        if token is None and identity is not None and not identity.preview:
            token = find_crowd_token(service, identity)  # the same platform id resumes
            if token is not None:
                st.query_params["token"] = token
        if token is None:
            listener_pages.consent(service, identity)
            return
        try:
            st.session_state.listener = service.listener(token, listener_pages._ua())
        except StudyError:
            _fail("This personal link is not valid for this study (it may be mistyped or "
                  "cut short). Open your personal link again, or start from the study link.")
            if st.button("Start a new session"):
                del st.query_params["token"]
                st.rerun()
            return
    listener_pages.route(service, st.session_state.listener)


def main() -> None:
    st.set_page_config(page_title="Listening study", layout="centered")
    try:
        _main()
    except Exception as exc:  # noqa: BLE001 - the page boundary: nothing raw reaches a participant
        service = st.session_state.get("service")
        pid = getattr(st.session_state.get("listener"), "pid", None)
        incident = record_incident(
            getattr(service, "store", None), exc,
            study=service.study.name if service else None,
            participant_id=pid if isinstance(pid, int) else None,
            page=str(st.session_state.get("served_kind") or ""))
        st.session_state.served = None  # the next try builds the page afresh
        st.error(f"Something went wrong on our side (incident {incident}). Your answers so "
                 "far are saved. Please reload the page to continue; if this happens again, "
                 "tell the experimenter the incident number.")
        if st.button("Try again"):
            st.rerun()


main()
