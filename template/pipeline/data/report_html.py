"""The run report: one self-contained HTML page made from a run's statistics (the stats JSON, docs/report.md).

What someone signing off a nightly scoring run looks at first: a verdict (drift, dead letters, counts that
do not add up), the run's figures, then each input's and output's distribution as a chart, drifted ones
first and beside the baseline's, the predicted classes, and the dead letters by reason with examples.
Pure: a stats dict (and the baseline's) in, one HTML string out. Its pictures are inline SVG documents
(pipeline.data.report_charts) and its style inline; a Content-Security-Policy forbids every load but
those, so the page shows the same offline, and nothing in it runs. Every string of the data is escaped.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable
from typing import Any

from pipeline.data import report_charts as charts

Stats = dict[str, Any]
MAX_CLASSES = 30  # a classifier of more classes shows its most predicted ones
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
_QUANTILE_NAMES = {
    "0.01": "p1",
    "0.05": "p5",
    "0.25": "p25",
    "0.5": "median",
    "0.75": "p75",
    "0.95": "p95",
    "0.99": "p99",
}
_MEASURES = {"jensen_shannon": "Jensen-Shannon divergence", "l_infinity": "L-infinity distance"}
_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#202124;background:#f8f9fa;margin:0}
main{max-width:1180px;margin:0 auto;padding:24px 28px 48px}
h1{font-size:24px;margin:0 0 4px}
h2{font-size:18px;margin:36px 0 12px;border-bottom:1px solid #dadce0;padding-bottom:6px}
h3{font-size:15px;margin:0;overflow-wrap:anywhere}.sub{color:#5f6368;margin:0;overflow-wrap:anywhere}
.verdict{border-radius:8px;padding:12px 16px;margin:18px 0;border:1px solid}.verdict p{margin:2px 0}
.bad{background:#fce8e6;border-color:#f6aea9}.warn{background:#fef7e0;border-color:#fdd663}
.good{background:#e6f4ea;border-color:#a8dab5}.note{color:#5f6368}
.figures{display:grid;grid-template-columns:repeat(auto-fill,minmax(160px,1fr));gap:10px}
.figure{background:#fff;border:1px solid #dadce0;border-radius:8px;padding:10px 14px}
.figure b{display:block;font-size:22px;font-weight:600}.figure span{color:#5f6368;font-size:12px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:14px}
.card{background:#fff;border:1px solid #dadce0;border-radius:8px;padding:12px 14px;min-width:0}
.card.drifted{border:2px solid #d93025}.card.wide{grid-column:1/-1}
.card header{display:flex;gap:8px;align-items:baseline;flex-wrap:wrap}
.badge{font-size:11px;border-radius:10px;padding:1px 8px;background:#e8eaed;color:#3c4043;white-space:nowrap}
.badge.drifted{background:#d93025;color:#fff}.badge.ok{background:#1e8e3e;color:#fff}
img.chart{display:block;width:100%;max-width:620px;height:auto;margin:8px 0}
table{border-collapse:collapse;width:100%;font-size:12.5px}th,td{text-align:left;padding:3px 8px 3px 0;
vertical-align:top;overflow-wrap:anywhere}th{color:#5f6368;font-weight:500}td.n,th.n{text-align:right}
tr+tr td{border-top:1px solid #f1f3f4}.stats{margin-top:4px}.example{font-family:ui-monospace,monospace;font-size:12px}
a{color:#1a73e8}footer{margin-top:40px;color:#80868b;font-size:12px}
"""


def render(stats: Stats, baseline: Stats | None = None) -> str:
    """The report page of a run's `stats`; `baseline`, the stats its drift was measured against, for the charts."""
    run = stats["run"]
    drift = stats.get("drift") or None
    sections = [
        _header(run, drift),
        _verdict(stats, drift),
        _figures(run),
        _drift_table(drift) if drift else "",
        _classes(stats.get("classes"), drift, baseline),
        *(_features(title, group, stats.get(group) or {}, drift, baseline) for title, group in _groups(drift)),
        _dead_letters(run),
    ]
    footer = f"<footer>Statistics schema version {_e(stats.get('schema_version'))}; see docs/report.md.</footer>"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>Prediction report: {_e(run.get('input'))}</title><style>{_CSS}</style></head>\n"
        f"<body><main>{''.join(sections)}{footer}</main></body></html>\n"
    )


def ordered(group: str, features: dict[str, Any], drift: Stats | None) -> list[str]:
    """Feature names in the order shown: with drift, drifted first, then by distance, largest first."""
    if not drift:
        return list(features)
    scores = drift.get("features", {})

    def key(name: str) -> tuple[bool, float, str]:
        score = scores.get(f"{group}.{name}", {})
        return (not score.get("drifted", False), -float(score.get("distance", -1.0)), name)

    return sorted(features, key=key)


def _groups(drift: Stats | None) -> list[tuple[str, str]]:
    """The outputs, then the inputs; with drift, the group of the most drifted feature first."""
    groups = [("Outputs", "outputs"), ("Inputs", "inputs")]
    keys = drifted(drift)
    return sorted(groups, key=lambda group: next((i for i, key in enumerate(keys) if key.startswith(group[1])), 99))


def drifted(drift: Stats | None) -> list[str]:
    """The drifted features' keys ("inputs.<name>", "outputs.<name>", "classes"), largest distance first."""
    scores = (drift or {}).get("features", {})
    return sorted((key for key, score in scores.items() if score.get("drifted")), key=lambda k: -scores[k]["distance"])


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _number(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    number = float(value)  # type: ignore[arg-type]
    return f"{number:,.0f}" if abs(number) >= 1e5 else f"{number:.4g}"


def _share(part: int, whole: int) -> str:
    share = 100 * part / max(whole, 1)
    return "under 0.1%" if 0 < share < 0.05 else f"{share:.1f}%"


def _image(svg: str, alt: str, key: str) -> str:
    data = base64.b64encode(svg.encode()).decode("ascii")
    return f'<img class="chart" data-chart="{_e(key)}" alt="{_e(alt)}" src="data:image/svg+xml;base64,{data}">'


def _header(run: Stats, drift: Stats | None) -> str:
    against = f" · baseline {_e(drift.get('baseline'))}" if drift else ""
    return (
        f'<header><h1>Prediction report</h1><p class="sub">{_e(run.get("input"))} → model {_e(run.get("model"))}'
        f'</p><p class="sub">started {_e(run.get("started"))}{against}</p></header>'
    )


def _verdict(stats: Stats, drift: Stats | None) -> str:
    run, lines, level = stats["run"], [], "good"
    if drift:
        names = drifted(drift)
        total = len(drift.get("features", {}))
        if names:
            level = "bad"
            listed = ", ".join(_e(name) for name in names)
            lines.append(f"<p><b>{len(names)} of {total} features drifted</b> from the baseline: {listed}.</p>")
        else:
            lines.append(
                f"<p>No drift: all {total} features within {_number(drift.get('threshold'))} of the baseline.</p>"
            )
    dead, read = int(run.get("dead_letters", 0)), int(run.get("records_read", 0))
    only = bool(run.get("statistics_only"))
    if only:
        lines.append("<p>Statistics only: the inputs as the model would be fed them; no model was called.</p>")
    if dead:
        level = "bad" if level == "bad" else "warn"
        reasons = ", ".join(f"{_e(r)} {c:,}" for r, c in sorted(run.get("dead_letters_by_reason", {}).items()))
        lines.append(f"<p><b>{dead:,} dead letters</b> ({_share(dead, read)} of records read): {reasons}.</p>")
    else:
        lines.append(f"<p>No dead letters: every record read was {'summarised' if only else 'predicted'}.</p>")
    if not only and read != int(run.get("predictions", 0)) + dead:
        level = "bad"
        lines.append("<p><b>Records read ≠ predictions + dead letters.</b></p>")
    if not drift:
        lines.append('<p class="note">No baseline: a run with --baseline=&lt;an earlier stats JSON&gt; adds drift.</p>')
    return f'<section class="verdict {level}">{"".join(lines)}</section>'


def _figures(run: Stats) -> str:
    versions = ", ".join(str(version) for version in run.get("model_versions") or []) or "–"
    figures = [
        ("records read", _number(run.get("records_read"))),
        ("predictions", "–" if run.get("statistics_only") else _number(run.get("predictions"))),
        ("dead letters", _number(run.get("dead_letters"))),
        ("records/s", _number(round(float(run.get("rate_per_s") or 0)))),
        ("duration", f"{float(run.get('duration_s') or 0):.1f} s"),
        ("model version" + ("s" if len(run.get("model_versions") or []) > 1 else ""), _e(versions)),
    ]
    cells = "".join(f'<div class="figure"><b>{value}</b><span>{name}</span></div>' for name, value in figures)
    return f'<h2>Run</h2><section class="figures">{cells}</section>'


def _drift_table(drift: Stats) -> str:
    scores = drift.get("features", {})
    keys = sorted(scores, key=lambda k: (not scores[k].get("drifted"), -float(scores[k].get("distance", 0)), k))
    rows = [
        (
            f'<a href="#{_anchor(key)}">{_e(key)}</a>',
            _e(_MEASURES.get(scores[key].get("measure"), scores[key].get("measure"))),
            f"{float(scores[key]['distance']):.3f}",
            _badge(scores[key], drift),
        )
        for key in keys
    ]
    return (
        f'<h2>Drift against the baseline</h2><p class="sub">{_e(drift.get("baseline"))}: threshold '
        f"{_number(drift.get('threshold'))}; each distribution is drawn below beside the baseline's.</p>"
        + _table(("feature", "measure", "#distance", ""), rows)
    )


def _badge(score: Stats | None, drift: Stats | None) -> str:
    if not drift:
        return ""
    if not score:
        return '<span class="badge">not in the baseline</span>'
    measure = "JS" if score.get("measure") == "jensen_shannon" else "L∞"
    if score.get("drifted"):
        return f'<span class="badge drifted">drifted · {measure} {float(score["distance"]):.3f}</span>'
    return f'<span class="badge ok">{measure} {float(score["distance"]):.3f}</span>'


def _classes(classes: Stats | None, drift: Stats | None, baseline: Stats | None) -> str:
    if not classes:
        return ""
    score = (drift or {}).get("features", {}).get("classes")
    base = (baseline or {}).get("classes") or {}
    counts, names = classes.get("counts") or [], classes.get("names")
    base_counts = base.get("counts") if score and len(base.get("counts") or []) == len(counts) else None
    is_drifted = bool(score and score.get("drifted"))
    shown = sorted(sorted(range(len(counts)), key=lambda i: -counts[i])[:MAX_CLASSES])  # the most predicted
    labels = [str(names[i]) if names else str(i) for i in shown]
    run_shares, base_shares = charts.shares(counts), charts.shares(base_counts) if base_counts else None
    svg = charts.class_chart(
        [run_shares[i] for i in shown],
        labels,
        baseline_shares=[base_shares[i] for i in shown] if base_shares else None,
        drifted=is_drifted,
    )
    rows = [(_e(labels[j]), f"{counts[i]:,}", f"{100 * run_shares[i]:.1f}%") for j, i in enumerate(shown)]
    meta = f"{len(counts)} classes" + (f", the {len(shown)} most predicted shown" if len(shown) < len(counts) else "")
    body = _image(svg, "predicted classes", "classes") + _table(("class", "#predictions", "#share"), rows)
    cards = [_card("classes", "predicted classes", meta, _badge(score, drift), body, is_drifted)]
    confidence = classes.get("confidence")
    if confidence and sum(confidence.get("counts") or []) > 0:
        svg = charts.histogram_chart(confidence, baseline=base.get("confidence"), xlabel="confidence (top score)")
        chart = _image(svg, "confidence histogram", "confidence")
        cards.append(_card("confidence", "confidence", "of each prediction", "", chart, False))
    return f'<h2>Predictions</h2><section class="cards">{"".join(cards)}</section>'


def _features(title: str, group: str, features: dict[str, Any], drift: Stats | None, baseline: Stats | None) -> str:
    if not features:
        return ""
    base_group = (baseline or {}).get(group) or {}
    scores = (drift or {}).get("features", {})
    cards = [
        _feature(group, name, features[name], scores.get(f"{group}.{name}"), drift, base_group.get(name))
        for name in ordered(group, features, drift)
    ]
    return f'<h2>{title}</h2><section class="cards">{"".join(cards)}</section>'


def _feature(
    group: str, name: str, feature: Stats, score: Stats | None, drift: Stats | None, base: Stats | None
) -> str:
    """One input's or output's card: its chart (beside the baseline's where drift was measured) and figures."""
    kind, key = feature.get("kind"), f"{group}.{name}"
    is_drifted = bool(score and score.get("drifted"))
    comparable = base if score and base and base.get("kind") == kind else None
    width = int(feature.get("values_per_record") or 1)
    meta = f"{kind}" + (f" · {width:,} values a record" if width > 1 else "")
    chart = '<p class="note">No values to chart.</p>'
    if kind == "string":
        if feature.get("top"):
            svg = charts.top_values_chart(
                feature["top"],
                int(feature.get("count") or 0),
                drifted=is_drifted,
                baseline_top=comparable.get("top") if comparable else None,
                baseline_count=int(comparable.get("count") or 0) if comparable else 0,
            )
            chart = _image(svg, f"top values of {name}", key)
        return _card(key, name, meta, _badge(score, drift), chart + _string_table(feature), is_drifted)
    numbers = (feature.get("size") if kind == "bytes" else feature) or {}
    base_numbers = ((comparable.get("size") if kind == "bytes" else comparable) or {}) if comparable else {}
    histogram = numbers.get("histogram")
    if histogram and sum(histogram.get("counts") or []) > 0:
        over = "bytes a value" if kind == "bytes" else (f"all {width:,} values of each record" if width > 1 else "")
        svg = charts.histogram_chart(histogram, baseline=base_numbers.get("histogram"), drifted=is_drifted, xlabel=over)
        chart = _image(svg, f"histogram of {name}", key)
    return _card(key, name, meta, _badge(score, drift), chart + _number_table(feature, numbers), is_drifted)


def _card(key: str, name: str, meta: str, badge: str, body: str, is_drifted: bool) -> str:
    css = "card drifted" if is_drifted else "card"
    title = f'<header><h3>{_e(name)}</h3><span class="sub">{_e(meta)}</span>{badge}</header>'
    return f'<article class="{css}" id="{_anchor(key)}">{title}{body}</article>'


def _anchor(key: str) -> str:
    """An element id for a feature's key: its name may hold any character, the id only safe ones."""
    return "f-" + "".join(char if char.isalnum() or char in "-_." else f"-{ord(char):x}-" for char in key)


def _table(columns: Iterable[str], rows: Iterable[Iterable[str]]) -> str:
    """A table of already escaped cells; a column named "#..." holds numbers (right-aligned)."""
    numeric = [column.startswith("#") for column in columns]
    head = "".join(
        f'<th class="n">{_e(c[1:])}</th>' if n else f"<th>{_e(c)}</th>" for c, n in zip(columns, numeric, strict=True)
    )
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{cell}</td>' if n else f"<td>{cell}</td>" for cell, n in zip(row, numeric, strict=True)
        )
        + "</tr>"
        for row in rows
    )
    return f'<table class="stats"><tr>{head}</tr>{body}</table>'


def _number_table(feature: Stats, numbers: Stats) -> str:
    first = {"records": feature.get("count"), "missing": feature.get("missing")}
    first |= {name: numbers.get(name) for name in ("mean", "std", "min", "max")}
    quantiles = numbers.get("quantiles") or {}
    spread = {label: quantiles.get(q) for q, label in _QUANTILE_NAMES.items() if q in quantiles}
    return "".join(
        _table([f"#{name}" for name in values], [[_number(value) for value in values.values()]])
        for values in (first, spread)
        if values
    )


def _string_table(feature: Stats) -> str:
    count = max(int(feature.get("count") or 0), 1)
    figures = [_number(feature.get(name)) for name in ("count", "missing", "distinct")]
    top = [
        (f'<span class="example">{_e(value)}</span>', f"{int(times):,}", f"{100 * int(times) / count:.1f}%")
        for value, times in (feature.get("top") or [])[:10]
    ]
    return _table(("#records", "#missing", "#distinct"), [figures]) + _table(("top value", "#records", "#share"), top)


def _dead_letters(run: Stats) -> str:
    by_reason = run.get("dead_letters_by_reason") or {}
    if not by_reason:
        return ""
    chart = _image(charts.reasons_chart(by_reason), "dead letters by reason", "dead_letters")
    examples = run.get("dead_letter_examples") or {}
    rows = [
        (
            _e(reason),
            f'<span class="example">{_e(example.get("origin"))}</span>',
            _e(example.get("position") or ""),
            f'<span class="example">{_e(example.get("message"))}</span>',
        )
        for reason in sorted(by_reason, key=lambda r: (-by_reason[r], r))
        for example in (examples.get(reason) or [])[:3]
    ]
    table = _table(("reason", "origin", "position", "message"), rows) if rows else ""
    card = f'<article class="card wide" id="dead-letters">{chart}{table}</article>'
    return f'<h2>Dead letters</h2><section class="cards">{card}</section>'
