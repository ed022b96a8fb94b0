"""The experimenter page: login, live progress, incidents, the analysis, exports. Layout only.

Logins are per user and rate-limited (seofp_lab.listening.auth); exports are built in this
session and handed to the browser as data, so no URL serves them to anyone else.
"""

from __future__ import annotations

import client
import streamlit as st
from sqlalchemy import select

from seofp_lab.listening.auth import has_users, login
from seofp_lab.listening.data import participants_frame, trials_frame
from seofp_lab.listening.listener import StudyService
from seofp_lab.listening.participant import plain
from seofp_lab.listening.store import Incident, LoginAttempt

__all__ = ["plain", "render"]


def _address() -> str | None:
    try:
        address = st.context.ip_address
    except Exception:  # noqa: BLE001 - no request context under AppTest
        return None
    return address if isinstance(address, str) else None


def _authorised(service: StudyService) -> bool:
    if st.session_state.get("experimenter"):
        return True
    if not has_users(service.store):
        st.error("No experimenter account exists yet. Create one with "
                 "`seofp study add-user STUDY_DIR NAME`, then reload this page.")
        return False
    with st.form("login"):
        user = st.text_input("User name", max_chars=64)
        password = st.text_input("Password", type="password", max_chars=200)
        submitted = st.form_submit_button("Log in", type="primary")
    if not submitted:
        return False
    result = login(service.store, user, password, _address())
    if result.ok:
        st.session_state.experimenter = user
        st.rerun()
    if result.locked_for_s:
        st.error(f"Too many failed logins: try again in {result.locked_for_s:.0f} s.")
    else:
        st.error("Wrong user name or password.")
    return False


def render(service: StudyService) -> None:
    st.title(f"Experimenter: {service.study.name}")
    if not _authorised(service):
        return
    user = st.session_state.experimenter
    if st.sidebar.button("Log out"):
        del st.session_state.experimenter
        st.rerun()
    st.sidebar.caption(f"Logged in as {plain(user)}")
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
        st.dataframe(parts[["listener", "pseudonym", "status", "answered", "headphone_correct",
                            "environment_correct", "screen_exclusion", "created_at"]],
                     hide_index=True)
    d = st.columns(2)
    with d[0]:
        client.download("Download trials.csv", trials.to_csv(index=False), "trials.csv",
                        key="dl-trials")
    with d[1]:
        client.download("Download participants.csv", parts.to_csv(index=False),
                        "participants.csv", key="dl-participants")
    with st.expander("Incidents (errors participants saw as an incident number)"):
        with service.store.session() as s:
            rows = s.scalars(select(Incident).where(Incident.study_id == name)
                             .order_by(Incident.at.desc()).limit(50)).all()
            for r in rows:
                st.text(f"{r.id}  {r.at:%Y-%m-%d %H:%M:%S}  participant {r.participant_id}  "
                        f"page {r.page}\n{r.traceback}")
        if not rows:
            st.caption("None.")
    with st.expander("Login attempts (latest 50)"):
        with service.store.session() as s:
            rows = s.execute(select(LoginAttempt.at, LoginAttempt.username,
                                    LoginAttempt.address, LoginAttempt.outcome)
                             .order_by(LoginAttempt.id.desc()).limit(50)).all()
        st.dataframe([dict(r._mapping) for r in rows], hide_index=True)
    if st.button("Run the analysis"):
        from seofp_lab.listening.report import analyze_study  # noqa: PLC0415

        with st.spinner("Analysing"):
            result, plots = analyze_study(service, boot=300)
        st.subheader("Claim")
        st.text(result.claim)
        st.code(result.text)
        for path in plots:
            st.image(str(path))
