"""The experimenter page: password, live progress, the analysis, CSV export. Layout only."""

from __future__ import annotations

import hmac
import os

import streamlit as st

from seofp_lab.listening.data import participants_frame, trials_frame
from seofp_lab.listening.listener import StudyService


def _authorised() -> bool:
    secret = os.environ.get("SEOFP_STUDY_PASSWORD", "")
    if not secret:
        st.error("Expected SEOFP_STUDY_PASSWORD to be set for the experimenter page but it is "
                 "not; `seofp study serve` sets one and prints it.")
        return False
    if st.session_state.get("experimenter_ok"):
        return True
    given = st.text_input("Experimenter password", type="password")
    if given and hmac.compare_digest(given.encode(), secret.encode()):
        st.session_state.experimenter_ok = True
        return True
    if given:
        st.error("Wrong password.")
    return False


def render(service: StudyService) -> None:
    st.title(f"Experimenter: {service.study.name}")
    if not _authorised():
        return
    name = service.study.name
    parts = participants_frame(service.store, name)
    trials = trials_frame(service.store, name)
    st.caption(f"study.yaml {service.config_hash[:12]} · manifest {service.manifest.digest[:12]}")
    c = st.columns(4)
    c[0].metric("Participants", len(parts))
    c[1].metric("Finished", int(parts.status.isin(["debrief", "done"]).sum()) if len(parts) else 0)
    c[2].metric("Screened out", int((parts.status == "screened_out").sum()) if len(parts) else 0)
    c[3].metric("Answers", len(trials))
    if len(parts):
        st.dataframe(parts[["listener", "status", "answered", "headphone_correct",
                            "environment_correct", "created_at"]], hide_index=True)
    st.download_button("Download trials.csv", trials.to_csv(index=False), "trials.csv",
                       "text/csv")
    st.download_button("Download participants.csv", parts.to_csv(index=False),
                       "participants.csv", "text/csv")
    if st.button("Run the analysis"):
        from seofp_lab.listening.report import analyze_study  # noqa: PLC0415

        with st.spinner("Analysing"):
            result, plots = analyze_study(service, boot=300)
        st.subheader("Claim")
        st.write(result.claim)
        st.code(result.text)
        for path in plots:
            st.image(str(path))
