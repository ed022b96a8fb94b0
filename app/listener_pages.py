"""Listener pages, one function per phase (docs/listening.md#phases); layout and session state
only."""

from __future__ import annotations

import secrets

import streamlit as st
from player import merge_log, player

from seofp_lab.errors import StudyError
from seofp_lab.listening.listener import Listener, StudyService

AGE_BANDS = ["18-29", "30-39", "40-49", "50-59", "60+", "prefer not to say"]
EXPERTISE = ["none", "some (musician, audio hobby)", "professional (audio, speech)"]


def _ua() -> str | None:
    try:
        return st.context.headers.get("User-Agent")
    except Exception:  # noqa: BLE001 - no request context under AppTest
        return None


def consent(service: StudyService, listener: Listener | None = None) -> None:
    study = service.study
    st.title(study.title)
    st.write(study.consent_text)
    st.caption(f"Consent version {study.consent_version}. Use a desktop computer and "
               "headphones in a quiet room.")
    agreed = st.checkbox("I agree to take part", key="consent_agree")
    if st.button("Start", disabled=not agreed, type="primary"):
        if listener is None:
            token = service.enroll(_ua())
            listener = service.listener(token, _ua())
            st.query_params["token"] = token
            st.session_state.listener = listener
        listener.consent(study.consent_version, agreed)
        st.rerun()


def metadata(listener: Listener) -> None:
    st.header("About you")
    with st.form("metadata"):
        age = st.selectbox("Age band", AGE_BANDS)
        hearing = st.radio("Do you have any known hearing problem?", ["no", "yes", "not sure"])
        language = st.text_input("Native language")
        expertise = st.selectbox("Audio expertise", EXPERTISE)
        headphones = st.text_input("Headphones (make and model, if known)")
        room = st.selectbox("Room noise", ["quiet", "some noise", "noisy"])
        if st.form_submit_button("Continue", type="primary"):
            listener.save_metadata({"age_band": age, "hearing": hearing, "language": language,
                                    "expertise": expertise, "headphones": headphones,
                                    "room_noise": room})
            st.rerun()


def _current(kind: str, make) -> object:  # noqa: ANN001 - a zero-argument factory
    """Build each trial once and keep it: re-rendering would re-dither and resend the audio."""
    if st.session_state.get("served_kind") != kind or st.session_state.get("served") is None:
        st.session_state.served = make()
        st.session_state.served_kind = kind
        st.session_state.player_key = secrets.token_hex(12)  # the element id must not hash data
        st.session_state.heard = {}
    return st.session_state.served


def _player(service: StudyService, served) -> dict:  # noqa: ANN001 - ServedTrial
    spec = service.study.player
    log = player(served, st.session_state.player_key, spec.min_play_seconds, spec.crossfade_ms,
                 service.manifest.data["sample_rate"])
    st.session_state.heard = merge_log(st.session_state.get("heard") or {}, log)
    return st.session_state.heard


def screen(service: StudyService, listener: Listener, kind: str) -> None:
    served = _current(kind, listener.screen_trial)
    if served is None:
        st.session_state.served = None
        st.rerun()
    if kind == "headphone":
        st.header("Headphone check")
        st.write("Which of the three sounds is the **quietest**?")
    else:
        st.header("Listening environment")
        st.write("Set your volume to a comfortable level once, then leave it. Which of the "
                 "two clips has **more background hiss**?")
    st.progress(served.number / served.total, f"{served.number} of {served.total}")
    _player(service, served)
    ok = listener.playback(served).ok  # the server's own accounting, never the client's word
    choice = st.radio("Answer", served.labels, horizontal=True, index=None, disabled=not ok)
    if st.button("Submit", disabled=not ok or choice is None, type="primary"):
        try:
            listener.record_screen(served.public_id, served.labels.index(choice),
                                   enforce_playback=True)
        except StudyError as exc:
            st.error(str(exc))
        st.session_state.served = None
        st.rerun()


def trial(service: StudyService, listener: Listener) -> None:
    served = _current("abx", listener.next_trial)
    if served is None:
        st.session_state.served = None
        st.rerun()
    title = "Practice" if served.trial_type == "practice" else f"Block {served.block}"
    st.header(title)
    st.progress(served.number / served.total, f"Trial {served.number} of {served.total}")
    st.write("Listen to A, B and X (keys A, B, X; space stops). Is X the same as A or as B?")
    log = _player(service, served)
    min_ms = service.study.player.min_play_seconds * 1000
    ok = listener.playback(served).ok  # the server's own accounting, never the client's word
    # always one caption, so the buttons keep their place in the page when they unlock
    st.caption("Answer when you are ready." if ok else
               f"Play each of A, B and X for at least {min_ms / 1000:g} s to answer.")
    left, right = st.columns(2)
    answer = None
    if left.button("X is A", disabled=not ok, use_container_width=True):
        answer = "A"
    if right.button("X is B", disabled=not ok, use_container_width=True):
        answer = "B"
    if answer is None:
        return
    heard, plays = log.get("heard") or {}, log.get("plays") or {}
    try:
        result = listener.record_answer(served.public_id, answer, {
            "plays_a": plays.get("A", 0), "plays_b": plays.get("B", 0),
            "plays_x": plays.get("X", 0), "ms_heard_a": heard.get("A", 0),
            "ms_heard_b": heard.get("B", 0), "ms_heard_x": heard.get("X", 0),
            "switches": log.get("switches", 0), "blur_events": log.get("blur", 0),
            "loop_used": bool(log.get("loops")), "events": log.get("events"),
            "environment": {"user_agent": _ua(), "sample_rate": log.get("sample_rate"),
                            "output_latency": log.get("output_latency")}},
            enforce_playback=True)
        if result.feedback:
            st.session_state.last_feedback = "Correct!" if result.correct else "Not quite."
    except StudyError as exc:
        st.session_state.last_error = str(exc)
    st.session_state.served = None
    st.rerun()


def pause(listener: Listener) -> None:
    """The enforced break: the server refuses the next trial until it is over."""
    st.header("Break")
    st.write("Take a short rest; the next block starts when the break is over.")
    left = listener.break_seconds_left()
    st.metric("Seconds left", f"{left:.0f}")
    if st.button("Continue", type="primary"):
        st.rerun()  # still in the break: the page comes back with the time left


def debrief(listener: Listener) -> None:
    st.header("Almost done")
    with st.form("debrief"):
        cue = st.text_area("What, if anything, did you listen for to tell the clips apart?")
        comments = st.text_area("Any other comments?")
        if st.form_submit_button("Finish", type="primary"):
            listener.save_debrief({"cue": cue, "comments": comments})
            st.rerun()


def thanks(listener: Listener, screened_out: bool) -> None:
    st.header("Thank you!")
    if screened_out:
        st.write("Thank you for your time. Your setup did not pass the listening checks, so "
                 "the study ends here; your answers so far are kept.")
        return
    correct, total = listener.score()
    st.success("All your answers are saved.")
    st.write(f"You matched X correctly in {correct} of {total} test trials.")


def route(service: StudyService, listener: Listener) -> None:
    for key, show in (("last_feedback", st.info), ("last_error", st.error)):
        if st.session_state.get(key):
            show(st.session_state.pop(key))
    phase = listener.phase()
    if phase == "consent":
        consent(service, listener)
    elif phase == "metadata":
        metadata(listener)
    elif phase in ("headphone", "environment"):
        screen(service, listener, phase)
    elif phase == "trials":
        trial(service, listener)
    elif phase == "break":
        pause(listener)
    elif phase == "debrief":
        debrief(listener)
    else:
        thanks(listener, phase == "screened_out")
