"""The customer insight page's figures, built in Python from a snapshot's data; plotly.js
(served from static/) draws them (static/js/charts.js)."""

import functools
import json

import plotly.graph_objects as go
from django.utils.dates import WEEKDAYS_ABBR
from django.utils.translation import gettext as _

from apps.contacts.choices import ConsentChannel
from apps.reporting.charts import COLORS, FONT
from apps.reporting.services import insight

SCALE = [[0, "#f1f6fb"], [0.5, "#5fa3d3"], [1, "#0b4f80"]]
STAGE_COLORS = {
    "joined": "#b7c3cc",
    "prospect": "#8d99a6",
    "first_purchase": "#5fa3d3",
    "repeat": "#2a9d8f",
    "lapsed": "#e76f51",
    "won_back": "#e9a23b",
}


@functools.cache
def _template() -> dict:
    """plotly_white as JSON, built once: applying it to each figure in Python costs more
    than the rest of the figure."""
    return json.loads(go.Figure(layout={"template": "plotly_white"}).to_json())["layout"][
        "template"
    ]


def _figure(figure: go.Figure, height: int = 320, **margin) -> dict:
    figure.update_layout(
        height=height,
        margin={"l": 64, "r": 16, "t": 8, "b": 48, **margin},
        font=FONT,
        legend={"orientation": "h", "y": -0.2},
    )
    spec = json.loads(figure.to_json())
    spec["layout"]["template"] = _template()
    return spec


def recency_labels() -> dict[int, str]:
    """Each recency score as the days since the last purchase it stands for."""
    days = insight.RECENCY_DAYS
    return {
        5: _("≤ %(n)d days") % {"n": days[0]},
        4: _("%(a)d\u2013%(b)d days") % {"a": days[0] + 1, "b": days[1]},
        3: _("%(a)d\u2013%(b)d days") % {"a": days[1] + 1, "b": days[2]},
        2: _("%(a)d\u2013%(b)d days") % {"a": days[2] + 1, "b": days[3]},
        1: _("> %(n)d days") % {"n": days[3]},
    }


def frequency_labels() -> dict[int, str]:
    """Each frequency score as the number of purchases it stands for."""
    starts = insight.FREQUENCY_FROM
    labels = {}
    for score in insight.SCORES:
        low = starts[score - 1]
        high = starts[score] - 1 if score < len(starts) else None
        labels[score] = (
            f"{low}+" if high is None else (str(low) if low == high else f"{low}\u2013{high}")
        )
    return labels


def rfm_grid(rfm: dict) -> dict:
    """Revenue (monetary) per recency (rows, most recent on top) and frequency (columns):
    the grid of customers above it, weighed by what they spent; customers, group and
    average per customer on hover."""
    recency, frequency = recency_labels(), frequency_labels()
    cells = {(cell["recency"], cell["frequency"]): cell for cell in rfm["cells"]}
    rows = list(insight.SCORES)  # plotly draws the first row at the bottom
    z, text, custom = [], [], []
    for r in rows:
        row = [cells[(r, f)] for f in insight.SCORES]
        z.append([cell["revenue"] for cell in row])
        text.append([f"{cell['revenue']:,.0f}" if cell["contacts"] else "" for cell in row])
        custom.append(
            [
                [
                    str(insight.RFM_GROUPS[cell["group"]][0]),
                    cell["contacts"],
                    cell["revenue"] / cell["contacts"] if cell["contacts"] else 0,
                ]
                for cell in row
            ]
        )
    figure = go.Figure(
        go.Heatmap(
            z=z,
            x=[frequency[f] for f in insight.SCORES],
            y=[recency[r] for r in rows],
            text=text,
            texttemplate="%{text}",
            customdata=custom,
            colorscale=SCALE,
            showscale=False,
            xgap=2,
            ygap=2,
            hovertemplate=(
                "%{customdata[0]}<br>"
                + _("Last purchase: %(y)s") % {"y": "%{y}"}
                + "<br>"
                + _("Purchases: %(x)s") % {"x": "%{x}"}
                + "<br>"
                + _("Revenue")
                + " %{z:,.2f}<br>%{customdata[1]:,} "
                + _("customers")
                + ", "
                + _("%(amount)s each") % {"amount": "%{customdata[2]:,.2f}"}
                + "<extra></extra>"
            ),
        )
    )
    figure.update_xaxes(title={"text": _("Purchases (frequency)")}, side="bottom")
    figure.update_yaxes(title={"text": _("Last purchase (recency)")})
    return _figure(figure, height=300, l=110)


def cohort_retention(cohorts: dict) -> dict:
    """Share of each month's new contacts active in each month after it (month 0: the
    month they were first seen)."""
    rows = list(reversed(cohorts["rows"]))  # the newest cohort at the bottom
    months = len(cohorts["months"])
    z, text, custom = [], [], []
    for row in rows:
        size = row["contacts"]
        shares = [n / size if size else None for n in row["active"]]
        shares += [None] * (months - len(shares))
        z.append(shares)
        text.append(["" if s is None else f"{s:.0%}" for s in shares])
        custom.append([size] * months)
    figure = go.Figure(
        go.Heatmap(
            z=z,
            x=[_("Month %(n)d") % {"n": n} for n in range(months)],
            y=[f"{row['cohort']} ({row['contacts']:,})" for row in rows],
            text=text,
            texttemplate="%{text}",
            customdata=custom,
            zmin=0,
            zmax=1,
            colorscale=SCALE,
            colorbar={"tickformat": ".0%", "thickness": 12},
            xgap=1,
            ygap=1,
            hoverongaps=False,
            hovertemplate="%{y}, %{x}: %{z:.1%}<extra></extra>",
        )
    )
    figure.update_yaxes(autorange="reversed", type="category")
    return _figure(figure, height=max(260, 26 * len(rows) + 80), l=130)


def lifecycle_flows(period: dict) -> dict:
    """A Sankey diagram: contacts by lifecycle stage at the start of the period (left)
    and at its end (right). Contacts who were prospects at both ends are left out (they
    would dwarf every move)."""
    flows = [
        f
        for f in period["flows"]
        if not (f["to"] == "prospect" and f["from"] in ("prospect", "joined"))
    ]
    starts = [s for s in insight.STAGES if any(f["from"] == s for f in flows)]
    ends = [s for s in insight.STAGES if any(f["to"] == s for f in flows)]
    index = {("from", s): n for n, s in enumerate(starts)}
    index |= {("to", s): len(starts) + n for n, s in enumerate(ends)}
    labels = [str(insight.STAGES[s]) for s in starts] + [str(insight.STAGES[s]) for s in ends]
    figure = go.Figure(
        go.Sankey(
            arrangement="snap",
            node={
                "label": labels,
                "color": [STAGE_COLORS[s] for s in starts + ends],
                "pad": 14,
                "thickness": 16,
                "hovertemplate": "%{label}: %{value:,}<extra></extra>",
            },
            link={
                "source": [index[("from", f["from"])] for f in flows],
                "target": [index[("to", f["to"])] for f in flows],
                "value": [f["contacts"] for f in flows],
                "color": [STAGE_COLORS[f["to"]] + "66" for f in flows],
                "hovertemplate": "%{source.label} → %{target.label}: %{value:,}<extra></extra>",
            },
        )
    )
    for x, text, anchor in ((0, period["from"], "left"), (1, period["to"], "right")):
        figure.add_annotation(
            x=x, y=1.06, xref="paper", yref="paper", text=text, showarrow=False, xanchor=anchor
        )
    return _figure(figure, height=360, t=28, l=8, r=8)


def engagement_histogram(engagement: dict) -> dict:
    """Contacts per engagement score band."""
    bins = engagement["bins"]
    labels = [
        str(b["from"]) if b["from"] == b["to"] else f"{b['from']}\u2013{b['to']}" for b in bins
    ]
    figure = go.Figure(
        go.Bar(
            x=labels,
            y=[b["contacts"] for b in bins],
            marker_color=["#b7c3cc", *["#0172ad"] * (len(bins) - 1)],
            hovertemplate=_("Score %(x)s") % {"x": "%{x}"}
            + ": %{y:,} "
            + _("contacts")
            + "<extra></extra>",
        )
    )
    figure.update_xaxes(title={"text": _("Engagement score")}, type="category")
    figure.update_yaxes(rangemode="tozero", tickformat=",d", title={"text": _("Contacts")})
    figure.update_layout(showlegend=False, bargap=0.08)
    return _figure(figure)


def weekday_names() -> list[str]:
    return [str(WEEKDAYS_ABBR[n]) for n in range(7)]


def best_send_hour(grid: list[list[int]]) -> dict:
    """Opens per weekday (rows, Monday on top) and hour of the day in the contact's own
    time zone."""
    figure = go.Figure(
        go.Heatmap(
            z=grid,
            x=[f"{hour:02d}" for hour in range(24)],
            y=weekday_names(),
            colorscale=SCALE,
            colorbar={"thickness": 12},
            xgap=1,
            ygap=1,
            hovertemplate="%{y} %{x}:00: %{z:,} " + _("opens") + "<extra></extra>",
        )
    )
    figure.update_xaxes(title={"text": _("Hour (the contact's time)")}, type="category")
    figure.update_yaxes(autorange="reversed", type="category")
    return _figure(figure, height=300)


def best_slot(grid: list[list[int]]) -> tuple[str, int, int] | None:
    """(weekday name, hour, opens) of the slot with the most opens; None without opens."""
    opens, weekday, hour = max(
        (grid[day][hour], -day, -hour) for day in range(7) for hour in range(24)
    )
    return (weekday_names()[-weekday], -hour, opens) if opens else None


def channel_names(channels: list[str]) -> str:
    labels = dict(ConsentChannel.choices)
    return " + ".join(str(labels.get(channel, channel)) for channel in channels)


def channel_reach(reach: dict) -> dict:
    """Contacts reachable on each combination of channels (consent given), and those
    reachable on none."""
    rows = [
        (channel_names(c["channels"]), c["contacts"], c["channels"]) for c in reach["combinations"]
    ]
    rows.append((_("Not reachable"), reach["unreachable"], []))
    rows.reverse()  # the largest at the top
    colors = [
        COLORS.get(channels[0], "#0172ad")
        if len(channels) == 1
        else ("#6c5ba7" if channels else "#b7c3cc")
        for _label, _n, channels in rows
    ]
    figure = go.Figure(
        go.Bar(
            x=[n for _label, n, _channels in rows],
            y=[label for label, _n, _channels in rows],
            orientation="h",
            marker_color=colors,
            hovertemplate="%{y}: %{x:,} " + _("contacts") + "<extra></extra>",
        )
    )
    figure.update_xaxes(rangemode="tozero", tickformat=",d")
    figure.update_yaxes(type="category")
    figure.update_layout(showlegend=False)
    return _figure(figure, height=max(180, 40 * len(rows) + 60), l=150)
