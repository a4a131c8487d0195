"""Server-rendered SVG charts for the ministry dashboard.

Drawn here rather than by a charting library: no external network, no inline
script (the CSP forbids it), and the page reads the same with scripts off. Every
text that reaches the markup goes through format_html, so it is escaped.
Each chart is a responsive <svg viewBox> with <title> tooltips on its marks.
"""

import datetime as dt

from django.utils.formats import date_format, number_format
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

from documents.kinds import DocumentKind
from documents.models import DeliveryState

# Colour-blind-safe qualitative palette (Okabe–Ito, extended).
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000", "#999999"]
STATE_COLOURS = {
    DeliveryState.PENDING: "#56B4E9",
    DeliveryState.IN_PROGRESS: "#0072B2",
    DeliveryState.DONE: "#009E73",
    DeliveryState.FAILED: "#D55E00",
    DeliveryState.SKIPPED: "#999999",
}
MAX_WEEKS = 60
# viewBox widths: the weekly chart spans the page, the others half of it; text
# sizes in the CSS are in these units, so they read the same in every card.
WIDTH = 960
HALF = 520


def _svg(height: int, body, label: str, width: int = HALF) -> SafeString:
    return format_html(
        '<svg class="chart {}" viewBox="0 0 {} {}" role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg">'
        "{}</svg>",
        "half" if width == HALF else "wide",
        width,
        height,
        label,
        body,
    )


def n(value: int) -> str:
    """A count as people read it: grouped by thousands in the active language (1,002,886 / 1 002 886)."""
    return number_format(value, decimal_pos=0, force_grouping=True)


def _join(parts) -> SafeString:
    return mark_safe("".join(parts))  # noqa: S308 — every part is built by format_html


def _nice_scale(value: int) -> tuple[int, int]:
    """Return (top, step): gridlines every 1, 2 or 5 × 10ⁿ, at most five of them, top ≥ value."""
    value = max(int(value), 1)
    magnitude = 1
    while True:
        for unit in (1, 2, 5):
            step = unit * magnitude
            if value <= step * 5:
                return -(-value // step) * step, step
        magnitude *= 10


def kind_colours() -> dict[str, str]:
    return {kind.value: PALETTE[i % len(PALETTE)] for i, kind in enumerate(DocumentKind)}


def participation_chart(rows: list[dict]) -> SafeString:
    """Participants against targets, one bar per institution kind."""
    bar_x, bar_w, row_h = 12, 360, 50
    scale = max([max(r["participants"], r["target"]) for r in rows] + [1])
    parts = []
    for i, row in enumerate(rows):
        y = 4 + i * row_h
        target_w = round(row["target"] / scale * bar_w, 1)
        done_w = round(row["participants"] / scale * bar_w, 1)
        if row["target"]:
            value = _("%(n)s of %(target)s (%(pct)s%%)") % {
                "n": n(row["participants"]),
                "target": n(row["target"]),
                "pct": f"{row['participants'] / row['target'] * 100:.0f}",
            }
        else:
            value = _("%(n)s (no target)") % {"n": n(row["participants"])}
        reached = "reached" if row["target"] and row["participants"] >= row["target"] else ""
        parts.append(
            format_html(
                '<text class="label" x="{}" y="{}">{}</text>'
                '<rect class="target" x="{}" y="{}" width="{}" height="20" rx="3"><title>{}</title></rect>'
                '<rect class="done {}" x="{}" y="{}" width="{}" height="20" rx="3"><title>{}</title></rect>'
                '<text class="value" x="{}" y="{}">{}</text>',
                bar_x,
                y + 12,
                row["label"],
                bar_x,
                y + 18,
                max(target_w, 1),
                _("target: %(n)s") % {"n": n(row["target"])},
                reached,
                bar_x,
                y + 18,
                done_w,
                _("enrolled: %(n)s") % {"n": n(row["participants"])},
                bar_x + max(target_w, done_w) + 8,
                y + 33,
                value,
            )
        )
    return _svg(8 + len(rows) * row_h, _join(parts), _("Participants against targets by institution kind"))


def _monday(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def _week_range(weeks: list[str], *, starts_on: dt.date, ends_on: dt.date, today: dt.date) -> list[dt.date]:
    """Every week from the experiment's first to the last of: today (while it runs), its end, the data.

    Weeks without documents stay on the axis, so a quiet stretch shows as one.
    """
    days = sorted({dt.date.fromisoformat(w) for w in weeks})
    first = min([_monday(starts_on), *days[:1]])
    last = max([_monday(min(max(today, starts_on), ends_on)), *days[-1:]])
    span = [first + dt.timedelta(weeks=i) for i in range((last - first).days // 7 + 1)]
    return span[-MAX_WEEKS:]


def weekly_chart(rows: list[dict], *, starts_on: dt.date, ends_on: dt.date, today: dt.date) -> SafeString:
    """Documents formed per ISO week, stacked by document kind."""
    if not rows:
        return _svg(
            60,
            format_html('<text class="empty" x="{}" y="34">{}</text>', WIDTH // 2, _("No documents formed yet.")),
            _("Documents formed per week"),
            WIDTH,
        )
    weeks = _week_range([r["week"] for r in rows], starts_on=starts_on, ends_on=ends_on, today=today)
    height, top, bottom, left, right = 300, 12, 30, 78, 8
    plot_h, plot_w = height - top - bottom, WIDTH - left - right
    index = {w: i for i, w in enumerate(weeks)}
    stacks: dict[int, list[tuple[str, int]]] = {}
    for row in rows:
        i = index.get(dt.date.fromisoformat(row["week"]))
        if i is not None:
            stacks.setdefault(i, []).append((row["kind"], row["n"]))
    top_value, step = _nice_scale(max([sum(n for _k, n in stack) for stack in stacks.values()] + [1]))
    slot = plot_w / len(weeks)
    colours, labels = kind_colours(), dict(DocumentKind.choices)
    order = list(colours)
    parts = []
    for value in range(0, top_value + 1, step):
        y = round(top + plot_h - value / top_value * plot_h, 1)
        parts.append(
            format_html(
                '<line class="grid" x1="{}" x2="{}" y1="{}" y2="{}"/><text class="axis" x="{}" y="{}" '
                'text-anchor="end">{}</text>',
                left,
                WIDTH - right,
                y,
                y,
                left - 6,
                y + 4,
                n(value),
            )
        )
    label_every = max(1, -(-len(weeks) // 12))
    current = _monday(today)
    for i, week in enumerate(weeks):
        x = round(left + i * slot + slot * 0.1, 1)
        if week == current:
            parts.append(
                format_html(
                    '<rect class="this-week" x="{}" y="{}" width="{}" height="{}"><title>{}</title></rect>',
                    round(left + i * slot, 1),
                    top,
                    round(slot, 1),
                    plot_h,
                    _("this week"),
                )
            )
        base = top + plot_h
        stack = sorted(stacks.get(i, []), key=lambda kn: order.index(kn[0]) if kn[0] in order else len(order))
        week_total = sum(count for _kind, count in stack)
        for kind, count in stack:
            h = count / top_value * plot_h
            base -= h
            parts.append(
                format_html(
                    '<rect class="bar" data-series="{}" x="{}" y="{}" width="{}" height="{}" fill="{}">'
                    "<title>{}: {} — {} ({} {})</title></rect>",
                    kind,
                    x,
                    round(base, 1),
                    round(slot * 0.8, 1),
                    round(max(h, 0.5), 1),
                    colours.get(kind, "#777"),
                    _("week of %(day)s") % {"day": date_format(week, "SHORT_DATE_FORMAT")},
                    labels.get(kind, kind),
                    n(count),
                    n(week_total),
                    _("in all"),
                )
            )
        if i % label_every == 0:
            parts.append(
                format_html(
                    '<text class="axis" x="{}" y="{}" text-anchor="middle">{}</text>',
                    round(left + (i + 0.5) * slot, 1),
                    height - 10,
                    date_format(week, "j M"),
                )
            )
    return _svg(height, _join(parts), _("Documents formed per week, by kind"), WIDTH)


def weekly_legend(rows: list[dict]) -> list[dict]:
    colours, labels = kind_colours(), dict(DocumentKind.choices)
    totals: dict[str, int] = {}
    for row in rows:
        totals[row["kind"]] = totals.get(row["kind"], 0) + row["n"]
    return [
        {"kind": kind, "label": labels.get(kind, kind), "colour": colour, "total": n(totals[kind])}
        for kind, colour in colours.items()
        if kind in totals
    ]


def delivery_chart(counts: dict[str, int]) -> SafeString:
    """A donut of outbox rows by state, the total in its hole."""
    total = sum(counts.values())
    circumference = 100
    parts = [
        format_html(
            '<circle class="ring" cx="21" cy="21" r="15.915" fill="none" stroke-width="6"><title>{}</title></circle>',
            _("no deliveries"),
        )
    ]
    offset = 25.0  # start at 12 o'clock
    labels = dict(DeliveryState.choices)
    for state, count in counts.items():
        if not count:
            continue
        share = count / total * circumference
        parts.append(
            format_html(
                '<circle class="segment" cx="21" cy="21" r="15.915" fill="none" stroke="{}" stroke-width="6" '
                'stroke-dasharray="{} {}" stroke-dashoffset="{}"><title>{}: {}</title></circle>',
                STATE_COLOURS.get(state, "#777"),
                round(share, 3),
                round(circumference - share, 3),
                round(offset, 3),
                labels.get(state, state),
                n(count),
            )
        )
        offset -= share
    # The total in the hole (about 24 units wide): the longer the number, the smaller
    # its size class (the CSS sizes them; 9 characters fit "1,000,000").
    text = n(total)
    size = "l" if len(text) <= 5 else "m" if len(text) <= 7 else "s" if len(text) <= 9 else "xs"
    parts.append(
        format_html(
            '<text class="total total-{}" x="21" y="22.5" text-anchor="middle">{}</text>'
            '<text class="caption" x="21" y="27.5" text-anchor="middle">{}</text>',
            size,
            text,
            _("deliveries"),
        )
    )
    return format_html(
        '<svg class="chart donut" viewBox="0 0 42 42" role="img" aria-label="{}" '
        'xmlns="http://www.w3.org/2000/svg">{}</svg>',
        _("Deliveries to Gosuslugi by state"),
        _join(parts),
    )


def delivery_legend(counts: dict[str, int]) -> list[dict]:
    labels = dict(DeliveryState.choices)
    return [
        {"state": state, "label": labels.get(state, state), "colour": STATE_COLOURS.get(state, "#777"), "n": n(count)}
        for state, count in counts.items()
    ]


def calendar_chart(*, stages: list[dict], starts_on: str, ends_on: str, purge_on: str, today: dt.date) -> SafeString:
    """The stage calendar: a bar per stage over the experiment's year, today and the purge marked.

    Each stage reads as its title, its bar (darker while active) and, under the bar,
    its dates and what it allows; the purge date and today are vertical lines, their
    labels on rows of their own under the plot so they never overlap.
    """
    first = min([dt.date.fromisoformat(starts_on)] + [dt.date.fromisoformat(s["starts_on"]) for s in stages])
    last = dt.date.fromisoformat(purge_on)
    first = first.replace(day=1)
    left, right, top, row_h = 12, 16, 28, 60
    plot_w = HALF - left - right
    span = max((last - first).days, 1)
    bottom = top + max(len(stages), 1) * row_h
    height = bottom + 34

    def x_of(day: dt.date) -> float:
        return round(left + (day - first).days / span * plot_w, 1)

    parts = []
    month = first
    while month <= last:
        if x_of(month) > left + plot_w - 24:  # no room for its label before the edge
            break
        parts.append(
            format_html(
                '<line class="grid" x1="{}" x2="{}" y1="{}" y2="{}"/><text class="axis" x="{}" y="{}">{}</text>',
                x_of(month),
                x_of(month),
                top - 6,
                bottom,
                x_of(month) + 3,
                top - 10,
                date_format(month, "M"),
            )
        )
        month = (month.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    for i, stage in enumerate(stages):
        y = top + i * row_h
        start, end = dt.date.fromisoformat(stage["starts_on"]), dt.date.fromisoformat(stage["ends_on"])
        allows = [
            str(text)
            for flag, text in ((stage["allows_forming"], _("forming")), (stage["allows_transfer"], _("transfer")))
            if flag
        ]
        active = start <= today <= end
        css = "stage" + ("" if allows else " idle") + (" active" if active else "")
        details = "{} – {} · {}".format(
            date_format(start, "SHORT_DATE_FORMAT"),
            date_format(end, "SHORT_DATE_FORMAT"),
            ", ".join(allows) or _("nothing allowed"),
        )
        if active:
            details = "{} · {}".format(details, _("now"))
        parts.append(
            format_html(
                '<text class="label" x="{}" y="{}">{}. {}</text>'
                '<rect class="{}" x="{}" y="{}" width="{}" height="16" rx="3"><title>{}</title></rect>'
                '<text class="axis{}" x="{}" y="{}">{}</text>',
                left,
                y + 12,
                stage["number"],
                stage["title"][:60] + ("…" if len(stage["title"]) > 60 else ""),
                css,
                x_of(start),
                y + 18,
                max(x_of(end + dt.timedelta(days=1)) - x_of(start), 2),
                details,
                " active" if active else "",
                left,
                y + 48,
                details,
            )
        )
    parts.append(
        format_html(
            '<line class="purge" x1="{}" x2="{}" y1="{}" y2="{}"/><text class="axis purge" x="{}" y="{}" '
            'text-anchor="end">{} {}</text>',
            x_of(last),
            x_of(last),
            top - 6,
            bottom + 4,
            x_of(last),
            bottom + 16,
            _("purge"),
            date_format(last, "SHORT_DATE_FORMAT"),
        )
    )
    if first <= today <= last:
        x = x_of(today)
        # Anchor the label on the side with room for it.
        anchor, dx = ("end", -3) if x > left + plot_w / 2 else ("start", 3)
        parts.append(
            format_html(
                '<line class="today" x1="{}" x2="{}" y1="{}" y2="{}"/>'
                '<text class="axis today" x="{}" y="{}" text-anchor="{}">{} {}</text>',
                x,
                x,
                top - 6,
                bottom + 18,
                x + dx,
                bottom + 30,
                anchor,
                _("today"),
                date_format(today, "SHORT_DATE_FORMAT"),
            )
        )
    return _svg(height, _join(parts), _("Stage calendar"))


def failed_chart(rows: list[dict], *, link: str = "") -> SafeString:
    """Institutions with the most failed deliveries, longest bar first.

    Each name sits above its bar (institution names are long); with `link` (the
    deliveries list's URL) each row opens that institution's failed deliveries.
    """
    if not rows:
        return _svg(
            60,
            format_html('<text class="empty" x="{}" y="34">{}</text>', HALF // 2, _("No failed deliveries.")),
            _("Institutions with the most failed deliveries"),
        )
    left, bar_w, row_h = 12, 400, 40
    scale = max(r["failed"] for r in rows)
    parts = []
    for i, row in enumerate(rows):
        y = 4 + i * row_h
        w = round(row["failed"] / scale * bar_w, 1)
        name = row["name"][:58] + ("…" if len(row["name"]) > 58 else "")
        mark = format_html(
            '<text class="label" x="{}" y="{}">{}</text>'
            '<rect class="failed" x="{}" y="{}" width="{}" height="14" rx="3"><title>{}: {}</title></rect>'
            '<text class="value" x="{}" y="{}">{}</text>',
            left,
            y + 12,
            name,
            left,
            y + 18,
            max(w, 1),
            row["name"],
            n(row["failed"]),
            left + w + 6,
            y + 30,
            n(row["failed"]),
        )
        if link:
            mark = format_html(
                '<a class="row-link" href="{}?institution={}&amp;state__exact=failed">{}</a>', link, row["id"], mark
            )
        parts.append(mark)
    return _svg(8 + len(rows) * row_h, _join(parts), _("Institutions with the most failed deliveries"))


def dashboard_charts(data: dict, *, today: dt.date, failed_link: str = "") -> dict:
    return {
        "participation": participation_chart(data["participation"]),
        "weekly": weekly_chart(
            data["weeks"],
            starts_on=dt.date.fromisoformat(data["starts_on"]),
            ends_on=dt.date.fromisoformat(data["ends_on"]),
            today=today,
        ),
        "weekly_legend": weekly_legend(data["weeks"]),
        "deliveries": delivery_chart(data["deliveries"]),
        "delivery_legend": delivery_legend(data["deliveries"]),
        "calendar": calendar_chart(
            stages=data["stages"],
            starts_on=data["starts_on"],
            ends_on=data["ends_on"],
            purge_on=data["purge_on"],
            today=today,
        ),
        "failed": failed_chart(data["failed"], link=failed_link),
    }
