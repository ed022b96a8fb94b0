"""Response bias in ABX: the stimulus x response confusion table and each listener's criterion c.

The signal-detection model is the one of :func:`seofp_lab.listening.stats.abx_sdt`
(docs/listening.md#sensitivity-d-prime, Macmillan & Creelman 2005): H = P("A" | X = A), F = P("A" |
X = B), each after adding 0.5 to every cell (Hautus 1995), and

    c = -(z(H) + z(F)) / 2.

c = 0 is an unbiased listener; c < 0 a listener who leans to answering "A" (both H and F high);
c > 0 one who leans to "B". d′ comes from the same H and F, so c and d′ are consistent.
"""

from __future__ import annotations

import pandas as pd

from seofp_lab.listening.stats import abx_sdt

SIDES = ("A", "B")


def confusion_matrix(df: pd.DataFrame) -> pd.DataFrame:
    """The 2 x 2 table (X was A / X was B) x (answered A / answered B), summed over listeners.

    Args:
        df: trial table with ``x_is`` and ``response`` in {"A", "B"}.

    Returns:
        Two rows (``x_is`` "A" then "B") with integer columns ``answered_A`` and ``answered_B``;
        cells without trials are 0, so the four counts sum to the number of trials.
    """
    tab = pd.crosstab(df["x_is"], df["response"]).reindex(index=list(SIDES), columns=list(SIDES),
                                                          fill_value=0)
    out = pd.DataFrame({"x_is": list(SIDES)})
    for r in SIDES:
        out[f"answered_{r}"] = tab[r].to_numpy(dtype=int)
    return out


def per_listener_bias(df: pd.DataFrame) -> pd.DataFrame:
    """Each listener's hit rate, false-alarm rate, criterion c and d′ (differencing model).

    Args:
        df: trial table with ``listener``, ``x_is`` and ``response``.

    Returns:
        One row per listener: listener, n, hit_rate, false_alarm_rate, bias_c, dprime.
    """
    rows = []
    for lst, g in df.groupby("listener"):
        s = abx_sdt(g)
        rows.append({"listener": lst, "n": len(g), "hit_rate": s["hit_rate"],
                     "false_alarm_rate": s["false_alarm_rate"], "bias_c": s["bias_c"],
                     "dprime": s["dprime_differencing"]})
    return pd.DataFrame(rows, columns=["listener", "n", "hit_rate", "false_alarm_rate",
                                       "bias_c", "dprime"])
