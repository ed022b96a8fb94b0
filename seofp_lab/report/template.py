"""The report's one HTML page (Jinja2, autoescaped): inline CSS, no scripts, no external URL."""

from __future__ import annotations

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d232b;
 margin:0 auto;max-width:1500px;padding:18px 28px 60px}
h1{font-size:24px;margin:0 0 6px}h2{font-size:18px;margin:34px 0 8px;
 border-bottom:1px solid #d8dde3;padding-bottom:4px}h3{font-size:15px;margin:18px 0 6px}
.meta{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;font-size:13px;
 color:#3b4450;margin:8px 0}.meta dt{font-weight:600}.meta dd{margin:0}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px}
table{border-collapse:collapse;font-size:12.5px;font-variant-numeric:tabular-nums}
th,td{padding:4px 6px;border-bottom:1px solid #e4e8ec;vertical-align:top}
thead th{background:#f3f5f7;border-bottom:2px solid #b9c1ca;text-align:right;
 vertical-align:bottom;max-width:70px}thead th.l,td.l{text-align:left}
td{text-align:right;white-space:nowrap}th.l{text-align:left}
thead tr.group th{text-align:center;border-bottom:1px solid #d0d6dc;font-weight:600;
 color:#4b5563}tr.noisy td{background:#fafaf5;font-style:italic}
td.best{font-weight:700}.d{display:block;font-size:11px;color:#6b7280}
.d.up{color:#15803d}.d.down{color:#b91c1c}.miss{color:#9aa3ad}
sup{font-size:9px;color:#6b7280}.note{font-size:12px;color:#4b5563;max-width:1100px}
ol.fn{font-size:12px;color:#4b5563;padding-left:20px}
figure{margin:10px 0 18px}figure img{max-width:100%;border:1px solid #e4e8ec}
figcaption{font-size:12px;color:#4b5563;max-width:900px}
.audio td,.audio th{text-align:left;vertical-align:middle}
.audio audio{width:250px;height:32px}.items{display:flex;flex-wrap:wrap;gap:4px 40px}
.verdict{display:inline-block;padding:3px 10px;border-radius:12px;font-weight:600;
 background:#eef2ff;color:#3730a3}.verdict.equivalent{background:#dcfce7;color:#166534}
.verdict.noticeable{background:#fee2e2;color:#991b1b}
.verdict.detectable{background:#ffedd5;color:#9a3412}
.verdict.invalid{background:#f3f4f6;color:#111827;border:1px solid #991b1b}
.plots{display:flex;flex-wrap:wrap;gap:12px}.plots img{max-width:560px}
pre{background:#f6f8fa;padding:10px;font-size:12px;white-space:pre-wrap;max-width:1100px}
.wrap{overflow-x:auto}
.d.v-non-inferior{color:#15803d}.d.v-inferior{color:#b91c1c}.d.v-inconclusive{color:#a16207}
.d.v-insufficient{color:#7e22ce}
</style></head><body>
<h1>{{ title }}</h1>
<dl class="meta">
<dt>runs</dt><dd>{{ source }} ({{ n_runs }} compared)</dd>
<dt>tracking store</dt><dd><code>{{ store }}</code></dd>
<dt>generated</dt><dd>{{ generated }} by seofp-lab {{ version }}</dd>
<dt>code</dt><dd>{{ code }}</dd>
<dt>machine</dt><dd>{{ machine }}</dd>
</dl>
{% if skipped %}<p class="note">Not shown: {{ skipped|join("; ") }}.</p>{% endif %}
{% if diverged %}<p class="note diverged">Diverged (tag seofp.diverged), their numbers are not a
trained model's: {{ diverged|join("; ") }}.</p>{% endif %}

<h2>Results</h2>
<div class="wrap"><table class="results">
<thead><tr class="group"><th class="l" colspan="2"></th><th colspan="5">quality (test set)</th>
<th colspan="4">size</th><th colspan="4">speed{% if kernels %} (C kernel {{ kernels }}){% endif %}
</th></tr>
<tr><th class="l">run</th><th class="l">role<br>format · model</th>
{% for key, label in columns %}<th>{{ label }}</th>{% endfor %}</tr></thead>
<tbody>{% for row in rows %}
<tr class="{{ row.kind }}"><td class="l">{{ row.label }}{% if row.run %}
<span class="d mono">{{ row.run }}</span>{% endif %}</td>
<td class="l">{{ row.role }}{% if row.fmt or row.model %}<span class="d">
{{- [row.fmt, row.model]|select|join(" · ") }}</span>{% endif %}</td>
{% for c in row.cells %}<td class="{{ c.cls }}"{% if c.title %} title="{{ c.title }}"{% endif %}>
{%- if c.missing %}<span class="miss">—</span><sup>{{ c.fn }}</sup>{% else %}{{ c.text }}{% endif %}
{%- if c.delta %}<span class="d {{ c.delta_cls }}">{{ c.delta }}</span>{% endif %}
{%- if c.delta2 %}<span class="d {{ c.delta2_cls }}">{{ c.delta2 }}</span>{% endif %}</td>
{% endfor %}</tr>{% endfor %}</tbody></table></div>
<ol class="fn">{% for f in footnotes %}<li>{{ f }}</li>{% endfor %}</ol>
<p class="note">Machine-readable copy of this table: <code>{{ csv_name }}</code> (same folder).</p>

{% if corpora %}<h2>Across corpora</h2>
<p class="note">Test-set means of each run on every corpus it was scored on
(<code>seofp evaluate RUN --corpus CONFIG</code>); <b>bold</b>: the run's own corpus (trained on
it); n: test items scored. Machine-readable copy: <code>{{ corpora_csv }}</code>.</p>
<div class="wrap"><table class="corpora"><thead><tr class="group"><th class="l"></th>
{% for k in corpora.corpora %}<th colspan="{{ corpora.metrics|length }}">{{ k }}</th>
{% endfor %}</tr><tr><th class="l">run</th>{% for k in corpora.corpora %}
{% for m in corpora.metrics %}<th>{{ m }}</th>{% endfor %}{% endfor %}</tr></thead>
<tbody>{% for row in corpora.rows %}<tr class="{{ row.kind }}"><td class="l">{{ row.label }}
{% if row.run %}<span class="d mono">{{ row.run }}</span>{% endif %}</td>
{% for c in row.cells %}<td{% if c.own %} class="best"{% endif %}>{% if c.missing %}
<span class="miss">—</span>{% else %}{{ c.text }}{% endif %}</td>{% endfor %}</tr>
{% endfor %}</tbody></table></div>
{% for n in corpora.notes %}<p class="note">{{ n }}</p>{% endfor %}{% endif %}

{% if paper.rows %}<h2>Paper vs this reproduction</h2>
<p class="note">Published figures of the papers' models (TIMIT test set; hover a cell for its
source) beside this reproduction's runs of the same models (same parameter count) on this
report's test set. Deltas are percent changes, (x − reference) / reference, as the papers print
them: published against the published fp32 model; reproduced against the variant's equal-budget
fp32 control and against the baseline. KB = 1024 B of P × bits / 8 (the papers' size);
.seofp KB is the exported file's exact length. Reproduced speed-up: the C engine's integer-adder
kernel against its own fp32 loop on the same model (one thread). Noisy input: paper
{{ paper.noisy_published }}; this test set {{ paper.noisy_reproduced }}. Also as CSV:
<code>{{ paper_csv_name }}</code>.</p>
<div class="wrap"><table class="paper"><thead><tr class="group"><th class="l" colspan="2"></th>
<th colspan="{{ paper.published_cols|length }}">published</th>
<th colspan="{{ paper.reproduced_cols|length + 1 }}">this reproduction</th></tr>
<tr><th class="l">model</th><th class="l">row</th>
{% for c in paper.published_cols %}<th>{{ c }}</th>{% endfor %}
{% for c in paper.reproduced_cols %}<th>{{ c }}</th>{% endfor %}<th class="l">run</th></tr></thead>
<tbody>{% for row in paper.rows %}<tr><td class="l">{{ row.model }}</td>
<td class="l">{{ row.label }}</td>
{% for c in row.published %}<td{% if c.title %} title="{{ c.title }}"{% endif %}>
{%- if c.text == "not published" %}<span class="miss">{{ c.text }}</span>{% else %}{{ c.text }}
{%- endif %}{% if c.delta %}<span class="d">{{ c.delta }}</span>{% endif %}</td>{% endfor %}
{% if row.reproduced %}{% for c in row.reproduced %}<td>{{ c.text }}{% if c.delta %}
<span class="d">{{ c.delta }}</span>{% endif %}</td>{% endfor %}
<td class="l mono">{{ row.run }}</td>{% else %}
<td class="l miss" colspan="{{ paper.reproduced_cols|length + 1 }}">no run in this report</td>
{% endif %}</tr>{% endfor %}</tbody></table></div>
{% endif %}

<h2>vs control and baseline (paired)</h2>
{% if paired.rows %}<p class="note">Mean per-mixture difference (run − the run it was paired
with, on the same test items) with its 95 % bootstrap CI over independent units (utterances by
default, each with all of its mixtures), and the non-inferiority verdict: non-inferior when the
CI's lower bound is above −margin, inferior when its upper bound is below −margin, insufficient
(no verdict) with fewer than {{ paired.min_clusters }} units, else inconclusive. Under each run:
the counts behind its CIs. Hover a cell for its margin, units and Holm-adjusted Wilcoxon p; all
numbers, and a mixed-model estimate, are in each run's <code>evaluation/paired.csv</code>
(docs/statistics.md).</p>
<div class="wrap"><table class="paired"><thead><tr><th class="l">run</th><th class="l">vs</th>
{% for key, label in paired.columns %}<th>{{ label }}</th>{% endfor %}</tr></thead>
<tbody>{% for row in paired.rows %}<tr><td class="l">{{ row.label }}
<span class="d mono">{{ row.run }}</span><br><span class="d">{{ row.units }}</span></td>
<td class="l mono">{{ row.against }}</td>
{% for c in row.cells %}{% if c %}<td title="{{ c.title }}">{{ c.text }}
<span class="d v-{{ c.verdict }}">{{ c.verdict }}</span></td>{% else %}<td>
<span class="miss">—</span></td>{% endif %}{% endfor %}</tr>{% endfor %}</tbody></table></div>
{% else %}<p class="note">No compared run has paired statistics (<code>paired_*</code> metrics):
they are logged when a run with a <code>seofp.control_run</code> or
<code>seofp.baseline_run</code> tag is evaluated after them, or by
<code>seofp compare RUN</code>.</p>{% endif %}

{% for fig in figures %}<h2>{{ fig.title }}</h2>
<figure><img alt="{{ fig.title }}" src="{{ fig.src }}">
<figcaption>{{ fig.caption }}</figcaption></figure>
{% if fig.table %}<div class="wrap"><table><thead><tr><th class="l">run</th>
<th class="l">contender</th><th class="l">tagged kernel</th><th>p50 ms</th><th>p90 ms</th>
<th>RTF</th><th>× torch fp32</th><th>× ORT</th></tr></thead><tbody>{% for s in fig.table %}
<tr><td class="l">{{ s.run }} <span class="mono">{{ s.run_id }}</span></td>
<td class="l mono">{{ s.contender }}</td><td class="l">{{ s.tagged }}</td>
<td>{{ s.latency_ms_p50 }}</td><td>{{ s.latency_ms_p90 }}</td><td>{{ s.rtf }}</td>
<td>{{ s.speedup_vs_fp32 }}</td><td>{{ s.speedup_vs_ort }}</td></tr>{% endfor %}</tbody>
</table></div>{% endif %}
{% endfor %}

<h2>Audio examples</h2>
{% if audio %}<p class="note">{{ audio_note }}</p>
<div class="items">{% for item in audio %}<div><h3>{{ item.item_id }}{% if item.info %}
<small>({{ item.info }})</small>{% endif %}</h3>
<table class="audio"><tbody>{% for clip in item.clips %}
<tr><th>{{ clip.label }}</th><td><audio controls preload="none" src="{{ clip.src }}"></audio>
</td><td class="note">{{ "%.2f"|format(clip.seconds) }} s{% if clip.note %}, {{ clip.note }}
{% endif %}</td></tr>{% endfor %}</tbody></table></div>{% endfor %}</div>
{% else %}<p class="note">None of the compared runs logged audio examples
(<code>audio/*.wav</code> artifacts).</p>{% endif %}

<h2>Listening study</h2>
{% if listening %}{% for s in listening %}
<h3>Study {{ s.study }}
<span class="verdict {{ s.verdict.replace(' ', '-') }}">{{ s.verdict }}</span></h3>
<p>{{ s.claim or "The analysis run logged no claim." }}</p>
<p class="note">Baseline run <span class="mono">{{ s.baseline_run[:8] or "—" }}</span>
vs compressed run <span class="mono">{{ s.compressed_run[:8] or "—" }}</span>; analysis run
<span class="mono">{{ s.run_id[:8] }}</span>.</p>
<table><tbody>{% for label, value in s.numbers %}<tr><th class="l">{{ label }}</th>
<td class="l">{{ value }}</td></tr>{% endfor %}</tbody></table>
{% if s.plots %}<div class="plots">{% for name, src in s.plots %}
<figure><img alt="{{ name }}" src="{{ src }}"><figcaption>{{ name }}</figcaption></figure>
{% endfor %}</div>{% endif %}
{% if s.text %}<details><summary>Full analysis text</summary><pre>{{ s.text }}</pre></details>
{% endif %}{% endfor %}
{% else %}<p class="note">{{ listening_note }}</p>{% endif %}
</body></html>
"""
