"""Listener pages, one function per phase (docs/listening.md#phases); layout and session state only.

Every way out of the study ends on a page that says what happened and, when study.yaml gives
them, shows the completion or screened-out code with the way back to the crowd platform
(docs/listening_participants.md). Text from the URL or the store is shown with ``plain``.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlencode, urlsplit

import client
import streamlit as st
from player import merge_log, player

from seofp_lab.errors import StudyError
from seofp_lab.listening.crowd import (
    UA_MAX,
    CrowdIdentity,
    bounded,
    device_refusal,
    ending,
    enroll_crowd,
    session_deadline_passed,
)
from seofp_lab.listening.listener import Listener, StudyService
from seofp_lab.listening.participant import (
    exclusion,
    known_token,
    plain,
    screen_attempt,
    submit_answer,
    trial_progress,
)

AGE_BANDS = ["18-29", "30-39", "40-49", "50-59", "60+", "prefer not to say"]
EXPERTISE = ["none", "some (musician, audio hobby)", "professional (audio, speech)"]
SHORT_TEXT, LONG_TEXT = 100, 2000  # characters: metadata fields, debrief answers


def _ua() -> str | None:
    try:
        return bounded(st.context.headers.get("User-Agent"), UA_MAX)
    except Exception:  # noqa: BLE001 - no request context under AppTest
        return None


def _store_key(service: StudyService) -> str:
    return f"seofp-resume-{service.study.name}"


def resume_url(token: str) -> str:
    """The link that continues this participant's session, in full when the host is known."""
    query = {k: st.query_params[k] for k in ("study",) if k in st.query_params}
    query["token"] = token
    try:
        here = urlsplit(st.context.url or "")
        base = f"{here.scheme}://{here.netloc}{here.path}" if here.netloc else ""
    except Exception:  # noqa: BLE001 - no request context under AppTest
        base = ""
    return f"{base}?{urlencode(query)}"


def refused_device(service: StudyService, info: dict) -> bool:
    """Show the device page and return True when this device may not take part."""
    why = device_refusal(service.study.crowd, _ua(), info.get("inner_w") or info.get("screen_w"),
                         info.get("coarse"))
    if why is None:
        return False
    st.header("Please use a computer")
    st.write(why)
    st.write("Open the same study link on a desktop or laptop computer with headphones. "
             "Nothing has been recorded from this device.")
    return True


def consent(service: StudyService, identity: CrowdIdentity | None = None,
            listener: Listener | None = None) -> None:
    study = service.study
    info = client.probe(_store_key(service), None)
    if listener is None and refused_device(service, info):
        return
    st.title(study.title)
    st.write(study.consent_text)
    st.caption(f"Consent version {study.consent_version}. Use a desktop computer and "
               "headphones in a quiet room.")
    saved = info.get("saved")
    if listener is None and identity is None and saved and known_token(service, saved):
        st.info("You have already started this study in this browser.")
        st.link_button("Continue where you left off", resume_url(saved), type="primary")
        st.caption("Or agree below to start again from the beginning.")
    if identity is not None and identity.preview:
        st.warning("This is a preview. Accept the task on the platform to take part.")
        return
    agreed = st.checkbox("I agree to take part", key="consent_agree")
    if st.button("Start", disabled=not agreed, type="primary"):
        if listener is None:
            token = (enroll_crowd(service, identity, _ua()) if identity is not None
                     else service.enroll(_ua()))
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
        language = st.text_input("Native language", max_chars=SHORT_TEXT)
        expertise = st.selectbox("Audio expertise", EXPERTISE)
        headphones = st.text_input("Headphones (make and model, if known)", max_chars=SHORT_TEXT)
        room = st.selectbox("Room noise", ["quiet", "some noise", "noisy"])
        if st.form_submit_button("Continue", type="primary"):
            listener.save_metadata({"age_band": age, "hearing": hearing,
                                    "language": bounded(language, SHORT_TEXT),
                                    "expertise": expertise,
                                    "headphones": bounded(headphones, SHORT_TEXT),
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


def _player(service: StudyService, served, ask: str | None = None) -> dict:  # noqa: ANN001
    spec = service.study.player
    log = player(served, st.session_state.player_key, spec.min_play_seconds, spec.crossfade_ms,
                 service.manifest.data["sample_rate"], ask)
    st.session_state.heard = merge_log(st.session_state.get("heard") or {}, log)
    return st.session_state.heard  # timings and the answer gate come from the server's serves


SCREENS = {
    "headphone": ("Headphone check",
                  "You will hear three tones. Click **1**, **2** and **3** (or press the keys "
                  "1, 2, 3) to listen to each, then choose the one that is **quietest** and "
                  "press **Submit**."),
    "environment": ("Listening environment",
                    "Set your volume to a comfortable level once, then leave it. Click **1** "
                    "and **2** (or press the keys 1, 2) to listen to both clips, then choose "
                    "the one with **more background hiss** and press **Submit**."),
    "bandwidth": ("Sound quality check",
                  "Click **1** and **2** (or press the keys 1, 2) to listen to both clips, then "
                  "choose the one that sounds **more muffled**, like a telephone, and press "
                  "**Submit**."),
}


def screen(service: StudyService, listener: Listener, kind: str) -> None:
    served = _current(kind, listener.screen_trial)
    if served is None:
        st.session_state.served = None
        st.rerun()
    title, how = SCREENS[kind]
    st.header(title)
    if screen_attempt(listener, kind) > 1:
        st.warning("That did not work out the first time. Check that your headphones are on "
                   "and the volume is comfortable; you have one more try.")
    st.write(how)
    st.progress(min(1.0, (served.number - 1) / served.total),
                f"{served.number} of {served.total}")
    _player(service, served)
    ok = listener.playback(served).ok  # the server's own accounting, never the client's word
    st.caption("Answer when you are ready." if ok else "Listen to every clip to answer.")
    choice = st.radio("Answer", served.labels, horizontal=True, index=None, disabled=not ok,
                      key=f"screen-{served.public_id}")
    if st.button("Submit", disabled=not ok or choice is None, type="primary"):
        try:
            listener.record_screen(served.public_id, served.labels.index(choice),
                                   enforce_playback=True)
        except StudyError as exc:
            st.session_state.status = ("error", str(exc))
        else:
            st.session_state.status = None
        st.session_state.served = None
        st.rerun()


def trial(service: StudyService, listener: Listener) -> None:
    served = _current("abx", listener.next_trial)
    if served is None:
        st.session_state.served = None
        st.rerun()
    where = trial_progress(listener)
    st.header("Practice" if served.trial_type == "practice" else where.label.split(" · ")[0])
    st.progress(where.fraction, where.label)
    st.write("Click **A**, **B** and **X** to listen (keys A, B, X; space stops). "
             "Is X the same as A or as B?")
    pending = st.session_state.get("pending_answer")
    if pending is not None and pending[0] != served.public_id:
        pending = st.session_state.pending_answer = None
    log = _player(service, served, ask=pending and pending[3])
    min_ms = service.study.player.min_play_seconds * 1000
    ok = listener.playback(served).ok  # the server's own accounting, never the client's word
    levels = service.study.confidence_levels
    confidence = None
    if levels:
        labels = service.study.confidence_labels()
        pick = st.radio("How sure are you?", labels, horizontal=True, index=None,
                        key=f"confidence-{served.public_id}", disabled=not ok)
        confidence = None if pick is None else labels.index(pick) + 1
    ready = ok and (confidence is not None or not levels)
    # always one caption, so the buttons keep their place in the page when they unlock
    st.caption("Answer when you are ready." if ready else
               f"Play each of A, B and X for at least {min_ms / 1000:g} s to answer." if not ok
               else "Say how sure you are, then answer.")
    left, right = st.columns(2)
    answer = None
    if left.button("X is A", disabled=not ready, use_container_width=True,
                   key=f"answer-A-{served.public_id}"):
        answer = "A"
    if right.button("X is B", disabled=not ready, use_container_width=True,
                    key=f"answer-B-{served.public_id}"):
        answer = "B"
    if answer is not None and not log and pending is None:
        # a click reaching a server session that has no report from the player yet (the first
        # click after a reconnect): hold it, ask the player for its log, and save it with that
        st.session_state.pending_answer = (served.public_id, answer, confidence,
                                           secrets.token_hex(8))
        st.rerun()
    if answer is None and pending is not None and log:
        answer, confidence = pending[1], pending[2]  # the player's log has come: save it now
    if answer is None:
        return
    st.session_state.pending_answer = None  # a second click while held saves it as it is
    heard, plays = log.get("heard") or {}, log.get("plays") or {}
    try:
        ack = submit_answer(listener, served.public_id, answer, {
            "plays_a": plays.get("A", 0), "plays_b": plays.get("B", 0),
            "plays_x": plays.get("X", 0), "ms_heard_a": heard.get("A", 0),
            "ms_heard_b": heard.get("B", 0), "ms_heard_x": heard.get("X", 0),
            "switches": log.get("switches", 0), "blur_events": log.get("blur", 0),
            "loop_used": bool(log.get("loops")), "events": log.get("events"),
            "environment": {"user_agent": _ua(), "sample_rate": log.get("sample_rate"),
                            "output_latency": log.get("output_latency")}}, confidence,
            enforce_playback=True)
        saved = f"Answer {ack.trial_number} saved."
        st.session_state.status = (("info", ("Correct! " if ack.correct else "Not quite. ") + saved)
                                   if ack.feedback else ("success", saved))
    except StudyError as exc:
        st.session_state.status = ("error", str(exc))
    st.session_state.served = None
    st.rerun()


def pause(listener: Listener) -> None:
    """The enforced break: a live countdown; the server's clock decides when it is over."""
    st.header("Break")
    st.write("Take a short rest; the next block starts by itself when the countdown ends.")
    left = listener.break_seconds_left()
    if client.countdown(left, key=f"break-{listener.pid}-{int(left)}"):
        st.rerun()
    if st.button("Continue", type="primary"):  # a fallback: early, it shows the time left
        st.rerun()


def debrief(listener: Listener) -> None:
    st.header("Almost done")
    with st.form("debrief"):
        cue = st.text_area("What, if anything, did you listen for to tell the clips apart?",
                           max_chars=LONG_TEXT)
        comments = st.text_area("Any other comments?", max_chars=LONG_TEXT)
        if st.form_submit_button("Finish", type="primary"):
            listener.save_debrief({"cue": bounded(cue, LONG_TEXT),
                                   "comments": bounded(comments, LONG_TEXT)})
            st.rerun()


def _code(service: StudyService, kind: str) -> None:
    code, url = ending(service.study.crowd, kind)  # type: ignore[arg-type]
    if code is not None:
        st.write("Your code for the study platform:")
        st.code(code, language=None)
    if url is not None:
        st.link_button("Return to the study platform", url, type="primary")


def thanks(service: StudyService, listener: Listener, screened_out: bool) -> None:
    st.header("Thank you!")
    if screened_out:
        reason = exclusion(listener) or ""
        if reason.startswith("time limit"):
            st.write("The time allowed for this study has passed, so the study ends here; "
                     "your answers so far are kept.")
        else:
            st.write("Thank you for your time. Your setup did not pass the listening checks, "
                     "so the study ends here; your answers so far are kept.")
        _code(service, "screened_out")
        return
    correct, total = listener.score()
    st.success("All your answers are saved.")
    st.write(f"You matched X correctly in {correct} of {total} test trials.")
    _code(service, "completed")


def _status() -> None:
    """Exactly one element on top of every page: the last receipt (with practice feedback) or
    error, kept until the next answer replaces it, so the message neither vanishes on the
    first play click nor shifts the page, and no stale button lingers below a new one."""
    kind, text = st.session_state.get("status") or ("", "")
    if kind == "error":
        st.error(plain(text))
    elif kind == "info":
        st.info(text)
    elif kind == "success":
        st.success(text)
    else:
        st.empty()


def route(service: StudyService, listener: Listener) -> None:
    info = client.probe(_store_key(service), listener.token)
    if refused_device(service, info):
        return
    if session_deadline_passed(service, listener.pid):
        st.rerun()
    _status()
    phase = listener.phase()
    if phase == "consent":
        consent(service, listener=listener)
    elif phase == "metadata":
        metadata(listener)
    elif phase in ("headphone", "environment", "bandwidth"):
        screen(service, listener, phase)
    elif phase == "trials":
        trial(service, listener)
    elif phase == "break":
        pause(listener)
    elif phase == "debrief":
        debrief(listener)
    else:
        thanks(service, listener, phase == "screened_out")
    if phase not in ("done", "screened_out"):
        st.divider()
        st.caption("To continue later, or after closing this tab, open this link "
                   "(it is also saved in this browser):")
        st.code(resume_url(listener.token), language=None)
