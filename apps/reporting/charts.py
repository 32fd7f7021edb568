"""The dashboard's figures, built in Python from the overview's data; plotly.js (served
from static/) draws them."""

import json

import plotly
import plotly.graph_objects as go
import plotly.io as pio
from django.utils.translation import gettext as _

from apps.reporting.services.overview import channel_label

COLORS = {"email": "#0172ad", "sms": "#2a9d8f", "push": "#e9a23b", "webhook": "#8d6cab"}
FONT = {"family": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif", "size": 12}


# The figures' look, as JSON once: naming the template on each figure makes plotly validate
# and copy all of it every time (some 20 ms a chart, most of a dashboard's time).
TEMPLATE = json.loads(
    json.dumps(pio.templates["plotly_white"].to_plotly_json(), cls=plotly.utils.PlotlyJSONEncoder)
)


def _figure(figure: go.Figure, height: int = 300) -> dict:
    figure.update_layout(
        height=height,
        margin={"l": 56, "r": 16, "t": 8, "b": 40},
        font=FONT,
        legend={"orientation": "h", "y": -0.2},
    )
    data = json.loads(figure.to_json())
    data["layout"]["template"] = TEMPLATE
    return data


def over_time(data: dict) -> dict:
    """Messages sent per channel and day (solid), and unique clicks (dotted)."""
    figure = go.Figure()
    for channel, series in sorted(data["channels"].items()):
        color = COLORS.get(channel, "#555")
        label = channel_label(channel)
        figure.add_scatter(
            x=data["days"], y=series["sent"], name=_("%(c)s sent") % {"c": label},
            mode="lines", line={"color": color, "width": 2},
            hovertemplate="%{x|%d %b}<br>%{y:,} " + _("sent") + "<extra></extra>",
        )  # fmt: skip
        figure.add_scatter(
            x=data["days"], y=series["clicks"], name=_("%(c)s clicked") % {"c": label},
            mode="lines", line={"color": color, "width": 1.5, "dash": "dot"},
            hovertemplate="%{x|%d %b}<br>%{y:,} " + _("clicked") + "<extra></extra>",
        )  # fmt: skip
    figure.update_yaxes(rangemode="tozero", tickformat=",d", title={"text": _("Messages")})
    return _figure(figure)


def channel_comparison(rows: list[dict]) -> dict:
    """Open, click and conversion rates side by side for each channel."""
    labels = [row["label"] for row in rows]
    figure = go.Figure()
    for key, name, color in (
        ("open_rate", _("Open rate"), "#0172ad"),
        ("click_rate", _("Click rate"), "#2a9d8f"),
        ("conversion_rate", _("Conversion rate"), "#e76f51"),
    ):
        figure.add_bar(
            x=labels, y=[row[key] or 0 for row in rows], name=name, marker_color=color,
            hovertemplate="%{x}: %{y:.1%}<extra>" + name + "</extra>",
        )  # fmt: skip
    figure.update_layout(barmode="group")
    figure.update_yaxes(tickformat=".0%", rangemode="tozero")
    return _figure(figure)


def top_journeys(rows: list[dict]) -> dict:
    """Conversions credited to each journey's messages, the best at the top."""
    rows = list(reversed(rows))
    figure = go.Figure(
        go.Bar(
            x=[row["attributed_conversions"] for row in rows], y=[row["name"] for row in rows],
            orientation="h", marker_color="#e76f51", name=_("Conversions"),
            hovertemplate="%{y}: %{x:,} " + _("conversions") + "<extra></extra>",
        )
    )  # fmt: skip
    figure.update_xaxes(rangemode="tozero", tickformat=",d")
    figure.update_layout(showlegend=False)
    return _figure(figure, height=max(160, 48 * len(rows) + 60))


def journey_funnel(steps: list[dict]) -> dict:
    """How many reached each step, from the entry down."""
    figure = go.Figure(
        go.Funnel(
            y=[step["label"] for step in steps], x=[step["reached"] for step in steps],
            textinfo="value+percent initial", marker={"color": "#0172ad"},
        )
    )  # fmt: skip
    return _figure(figure, height=max(220, 44 * len(steps) + 60))


def journey_over_time(days: list[dict]) -> dict:
    figure = go.Figure()
    x = [day["day"] for day in days]
    figure.add_bar(x=x, y=[day["entered"] for day in days], name=_("Entered"),
                   marker_color="#9ec5e0")  # fmt: skip
    figure.add_scatter(x=x, y=[day["converted"] for day in days], name=_("Reached the goal"),
                       mode="lines+markers", line={"color": "#e76f51", "width": 2})  # fmt: skip
    figure.update_yaxes(rangemode="tozero", tickformat=",d")
    return _figure(figure)


def holdout_rates(lift: dict) -> dict:
    """The journey's conversion rate beside its holdout group's, the difference's interval
    as error bars on the journey's bar."""
    low, high = lift["interval"] or (0, 0)
    difference = lift["difference"] or 0
    figure = go.Figure(
        go.Bar(
            x=[_("In the journey"), _("Holdout group")],
            y=[lift["treated_rate"] or 0, lift["holdout_rate"] or 0],
            marker_color=["#0172ad", "#adb5bd"],
            error_y={"type": "data", "symmetric": False, "array": [high - difference, 0],
                     "arrayminus": [difference - low, 0]},
            hovertemplate="%{x}: %{y:.1%}<extra></extra>",
        )
    )  # fmt: skip
    figure.update_yaxes(tickformat=".0%", rangemode="tozero")
    figure.update_layout(showlegend=False)
    return _figure(figure, height=260)


def split_rates(split: dict) -> dict:
    branches = split["branches"]
    figure = go.Figure(
        go.Bar(
            x=[branch["branch"] for branch in branches],
            y=[branch["rate"] or 0 for branch in branches],
            text=[f"{branch['converted']}/{branch['took']}" for branch in branches],
            marker_color="#2a9d8f", hovertemplate="%{x}: %{y:.1%} (%{text})<extra></extra>",
        )
    )  # fmt: skip
    figure.update_yaxes(tickformat=".0%", rangemode="tozero")
    figure.update_layout(showlegend=False)
    return _figure(figure, height=240)


MODEL_COLORS = {"first_touch": "#8d6cab", "last_touch": "#0172ad", "linear": "#2a9d8f",
                "time_decay": "#e9a23b"}  # fmt: skip


def attribution_models(data: dict, labels: dict, limit: int = 10) -> dict:
    """Revenue credited to the top rows under each model, side by side."""
    rows = data["rows"][:limit]
    figure = go.Figure()
    for model in data["models"]:
        figure.add_bar(
            x=[row["label"] for row in rows], y=[row[model]["revenue"] for row in rows],
            name=str(labels[model]), marker_color=MODEL_COLORS.get(model),
            hovertemplate="%{x}: %{y:,.2f}<extra>" + str(labels[model]) + "</extra>",
        )  # fmt: skip
    figure.update_layout(barmode="group")
    figure.update_yaxes(rangemode="tozero", tickformat=",.0f", title={"text": _("Revenue")})
    return _figure(figure, height=340)
