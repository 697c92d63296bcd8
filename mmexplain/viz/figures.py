"""Plotly figures for models, attributions and explanation-quality metrics.

Every function here is pure: it takes arrays (numpy, torch tensors or nested lists), tables
or small result objects and returns a new :class:`plotly.graph_objects.Figure`; nothing is
shown, written or registered globally (except by :func:`setup_notebook`, whose job that is).

Figures share one template (:data:`TEMPLATE`), diverging colour scales are symmetric around
zero, and each modality keeps its colour across figures that draw several modalities.

Every string that can come from users or data (tokens, feature and label names, titles,
legend entries, metric names) is HTML-escaped with :func:`html.escape` before it reaches
plotly, because plotly renders a subset of HTML in text. Quotes are written as numeric
entities (``&#34;``, ``&#39;``), which plotly.js decodes for display, unlike ``&quot;``.
A question such as ``<script>alert(1)</script>`` therefore shows as text and never appears
unescaped in ``fig.to_json()`` or ``fig.to_html()``.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.colors import qualitative
from plotly.subplots import make_subplots

__all__ = [
    "DIVERGING",
    "NOTEBOOK_RENDERER",
    "TEMPLATE",
    "audio_attribution",
    "confusion_matrix",
    "fusion_level_shares",
    "image_attribution",
    "interaction_matrix",
    "learning_curves",
    "modality_shares",
    "perturbation_curves",
    "robustness_curve",
    "setup_notebook",
    "strategy_comparison",
    "tabular_attribution",
    "token_attribution",
]

#: Plotly template used by every figure.
TEMPLATE = "plotly_white"
#: Renderer that embeds plotly.js in the notebook output (works offline, survives nbconvert).
NOTEBOOK_RENDERER = "notebook"
#: Diverging colour scale for signed scores: blue negative, white zero, red positive.
DIVERGING = "RdBu_r"
# Same hues, transparent around zero, so an overlay leaves unattributed pixels visible.
_OVERLAY_SCALE = [
    [0.0, "rgba(5,48,97,0.9)"],
    [0.25, "rgba(67,147,195,0.6)"],
    [0.5, "rgba(247,247,247,0)"],
    [0.75, "rgba(214,96,77,0.6)"],
    [1.0, "rgba(103,0,31,0.9)"],
]
_PALETTE = qualitative.Plotly
_trapezoid = getattr(np, "trapezoid", None) or np.trapz  # numpy < 2 has only trapz
_POS_COLOUR, _NEG_COLOUR = "#b2182b", "#2166ac"
_MASK_COLOUR = "#00c853"


# --------------------------------------------------------------------------- helpers


def _esc(text: Any) -> str:
    """``html.escape`` with quotes as numeric entities (which plotly.js decodes)."""
    return html.escape(str(text), quote=False).replace('"', "&#34;").replace("'", "&#39;")


def _np(x: Any, *, name: str = "array") -> np.ndarray:
    """Float ndarray from a torch tensor, ndarray, scalar or nested sequence."""
    if hasattr(x, "detach"):  # torch.Tensor, without importing torch
        x = x.detach().cpu().double().numpy()
    try:
        return np.asarray(x, dtype=float)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{name} must be numeric (array, tensor or list); got {type(x).__name__}: {e}") from None


def _layout(fig: go.Figure, title: str, xtitle: str | None = None, ytitle: str | None = None, **kw: Any) -> go.Figure:
    """Template, escaped title and axis titles (axis titles are escaped as well)."""
    fig.update_layout(template=TEMPLATE, title={"text": _esc(title)}, **kw)
    if xtitle is not None:
        fig.update_xaxes(title_text=_esc(xtitle))
    if ytitle is not None:
        fig.update_yaxes(title_text=_esc(ytitle))
    return fig


def _sym(values: np.ndarray) -> float:
    """Half-width of a symmetric colour range covering ``values`` (1.0 when all zero/NaN)."""
    finite = np.abs(values[np.isfinite(values)])
    a = float(finite.max()) if finite.size else 0.0
    return a if a > 0 else 1.0


def _colours(names: Sequence[str]) -> dict[str, str]:
    return {n: _PALETTE[i % len(_PALETTE)] for i, n in enumerate(dict.fromkeys(names))}


def _field(obj: Any, key: str) -> Any:
    """``obj.key`` or ``obj[key]`` (PerturbationCurve-like objects or plain dicts)."""
    if isinstance(obj, Mapping):
        if key not in obj:
            raise KeyError(f"missing {key!r}; got keys {list(obj)}.")
        return obj[key]
    if not hasattr(obj, key):
        raise TypeError(f"{type(obj).__name__} has no attribute {key!r}.")
    return getattr(obj, key)


def _vector(x: Any, name: str) -> np.ndarray:
    a = _np(x, name=name)
    if a.ndim != 1:
        squeezed = a.squeeze()
        if squeezed.ndim != 1:
            raise ValueError(f"{name} must be 1-D; got shape {a.shape}.")
        a = squeezed
    return a


# --------------------------------------------------------------------------- notebook


def setup_notebook() -> str:
    """Make figures render in notebooks, offline, and survive ``nbconvert`` to HTML.

    Sets ``plotly.io.renderers.default`` to ``"notebook"``: each figure's output carries the
    figure JSON and plotly.js is embedded once in the notebook, so no CDN is needed;
    :func:`mmexplain.report.html.notebook_to_html` rebuilds these figures in the report.

    Returns
    -------
    str
        The renderer name, ``"notebook"``.
    """
    from .._imports import import_jsonschema_without_iri_parser

    import_jsonschema_without_iri_parser()  # plotly's renderers import nbformat, which imports it
    pio.renderers.default = NOTEBOOK_RENDERER
    return NOTEBOOK_RENDERER


# --------------------------------------------------------------------------- attribution maps


def _rgb_uint8(image: np.ndarray) -> np.ndarray:
    """(C, H, W) or (H, W) image -> (H, W, 3) uint8 for ``go.Image``."""
    if image.ndim == 2:
        image = image[None]
    if image.ndim != 3:
        raise ValueError(f"image must have shape (C, H, W) or (H, W); got {image.shape}.")
    c = image.shape[0]
    if c == 1:
        image = np.repeat(image, 3, axis=0)
    elif c >= 3:
        image = image[:3]
    else:
        raise ValueError(f"image must have 1, 3 or 4 channels; got {c}.")
    image = np.nan_to_num(image)
    lo, hi = float(image.min()), float(image.max())
    if lo < 0 or hi > 1:  # e.g. a mean/std-normalised image: show its contrast, not a clipped mess
        image = (image - lo) / (hi - lo) if hi > lo else np.zeros_like(image)
    return np.round(np.transpose(image, (1, 2, 0)) * 255).astype(np.uint8)


def image_attribution(
    image: Any,
    attribution: Any,
    *,
    title: str | None = None,
    mask: Any = None,
    opacity: float = 0.7,
) -> go.Figure:
    """The image with its attribution as a semi-transparent diverging heat map on top.

    Parameters
    ----------
    image : array or Tensor of shape (C, H, W) or (H, W)
        Values in [0, 1]; C is 1 (grey) or 3 (RGB; a 4th channel is ignored). An image
        outside [0, 1] (e.g. normalised) is min-max rescaled for display.
    attribution : array or Tensor of shape (C', H, W) or (H, W)
        Summed over channels; the colour scale is symmetric around zero (red positive,
        blue negative, transparent near zero). A leading batch axis of size 1 is dropped.
    title : str, optional
    mask : array or Tensor of shape (H, W), (1, H, W) or (C, H, W), optional
        Ground-truth evidence mask (non-zero = evidence); drawn as a contour line.
    opacity : float, default=0.7
        Opacity of the heat-map overlay.

    Returns
    -------
    plotly.graph_objects.Figure
        Traces: ``Image``, ``Heatmap`` (``z`` = channel-summed attribution, (H, W)), and a
        ``Contour`` of the mask when ``mask`` is given.
    """
    img = _np(image, name="image")
    if img.ndim == 4 and img.shape[0] == 1:
        img = img[0]
    rgb = _rgb_uint8(img)
    attr = _np(attribution, name="attribution")
    if attr.ndim == 4 and attr.shape[0] == 1:
        attr = attr[0]
    if attr.ndim == 3:
        attr = attr.sum(0)
    if attr.ndim != 2:
        raise ValueError(f"attribution must have shape (C, H, W) or (H, W); got {attr.shape}.")
    h, w = rgb.shape[:2]
    if attr.shape != (h, w):
        raise ValueError(f"attribution is {attr.shape[0]}x{attr.shape[1]} but the image is {h}x{w}.")
    a = _sym(attr)
    fig = go.Figure()
    fig.add_trace(go.Image(z=rgb, name="image", hoverinfo="skip"))
    fig.add_trace(go.Heatmap(
        z=attr, zmin=-a, zmax=a, zmid=0, colorscale=_OVERLAY_SCALE, opacity=opacity, name="attribution",
        colorbar={"title": {"text": "attribution"}},
        hovertemplate="x=%{x}, y=%{y}<br>attribution=%{z:.4g}<extra></extra>",
    ))
    if mask is not None:
        m = _np(mask, name="mask")
        if m.ndim == 4 and m.shape[0] == 1:
            m = m[0]
        if m.ndim == 3:
            m = (np.abs(m) > 0).any(0)
        if m.shape != (h, w):
            raise ValueError(f"mask must cover the image ({h}x{w}); got shape {m.shape}.")
        fig.add_trace(go.Contour(
            z=(m > 0).astype(float), contours={"start": 0.5, "end": 0.5, "size": 1, "coloring": "lines"},
            line={"width": 2}, colorscale=[[0, _MASK_COLOUR], [1, _MASK_COLOUR]], showscale=False,
            hoverinfo="skip", name="ground truth",
            showlegend=True,
        ))
    _layout(fig, title or "Image attribution", "x (pixel)", "y (pixel)",
            legend={"orientation": "h", "y": -0.15})
    fig.update_yaxes(autorange="reversed", scaleanchor="x", constrain="domain")
    fig.update_xaxes(constrain="domain", showgrid=False)
    fig.update_yaxes(showgrid=False)
    return fig


def token_attribution(
    tokens: Sequence[str],
    scores: Any,
    *,
    valid: Any = None,
    title: str | None = None,
    per_row: int = 16,
) -> go.Figure:
    """Tokens as a text heat map, each cell coloured by its attribution.

    Parameters
    ----------
    tokens : sequence of str, length T
        Token strings; HTML-escaped before display (questions come from users).
    scores : array or Tensor of shape (T,)
        One score per token (e.g. an ``AttributionResult.maps[m][i]`` for kind ``tokens``).
    valid : bool array or Tensor of shape (T,), optional
        Tokens to show (e.g. ``ids != pad_id``); others (padding) are left out.
    title : str, optional
    per_row : int, default=16
        Tokens per heat-map row; longer texts wrap.

    Returns
    -------
    plotly.graph_objects.Figure
        One ``Heatmap``: ``z`` has shape (ceil(T_valid / per_row), min(T_valid, per_row)),
        the valid scores row by row padded with NaN; ``text`` holds the escaped tokens.
    """
    tokens = [str(t) for t in tokens]
    s = _vector(scores, "scores")
    if len(tokens) != len(s):
        raise ValueError(f"{len(tokens)} tokens but {len(s)} scores.")
    keep = np.ones(len(s), dtype=bool) if valid is None else _vector(valid, "valid").astype(bool)
    if len(keep) != len(s):
        raise ValueError(f"valid has {len(keep)} entries for {len(s)} tokens.")
    if per_row < 1:
        raise ValueError(f"per_row must be >= 1; got {per_row}.")
    pos = np.flatnonzero(keep)
    vals, toks = s[pos], [_esc(tokens[i]) for i in pos]
    n = len(pos)
    cols = max(min(n, per_row), 1)
    rows = max(-(-n // cols), 1)
    z = np.full((rows, cols), np.nan)
    text = [["" for _ in range(cols)] for _ in range(rows)]
    index = [[None for _ in range(cols)] for _ in range(rows)]
    for k in range(n):
        r, c = divmod(k, cols)
        z[r, c], text[r][c], index[r][c] = vals[k], toks[k], int(pos[k])
    a = _sym(vals)
    fig = go.Figure(go.Heatmap(
        z=z, text=text, customdata=index, texttemplate="%{text}", zmin=-a, zmax=a, zmid=0,
        colorscale=DIVERGING, xgap=2, ygap=2, name="tokens", colorbar={"title": {"text": "attribution"}},
        hovertemplate="token %{customdata}: %{text}<br>attribution=%{z:.4g}<extra></extra>",
    ))
    _layout(fig, title or "Token attribution", "token position (in row)", "row",
            height=60 * rows + 200, margin={"t": 60, "b": 50})
    fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False)
    fig.update_yaxes(autorange="reversed", showticklabels=False, showgrid=False, zeroline=False)
    return fig


def tabular_attribution(
    feature_names: Sequence[str],
    scores: Any,
    *,
    title: str | None = None,
    top_k: int | None = None,
) -> go.Figure:
    """Horizontal bars of feature attributions, sorted by |score| (largest on top).

    Parameters
    ----------
    feature_names : sequence of str, length F
    scores : array or Tensor of shape (F,)
    title : str, optional
    top_k : int, optional
        Show only the ``top_k`` features with the largest |score|.

    Returns
    -------
    plotly.graph_objects.Figure
        One ``Bar`` (orientation ``h``): ``x`` holds the scores in descending |score| order,
        ``y`` the escaped feature names in the same order (the first one is drawn on top);
        positive bars red, negative blue.
    """
    names = [str(f) for f in feature_names]
    s = _vector(scores, "scores")
    if len(names) != len(s):
        raise ValueError(f"{len(names)} feature names but {len(s)} scores.")
    order = np.argsort(-np.abs(s), kind="stable")
    if top_k is not None:
        order = order[: max(int(top_k), 0)]
    labels = [_esc(names[i]) for i in order]
    if len(set(labels)) != len(labels):  # keep repeated names apart on the category axis
        labels = [f"{lab} [{i}]" for lab, i in zip(labels, order)]
    vals = s[order]
    fig = go.Figure(go.Bar(
        x=vals, y=labels, orientation="h", name="attribution",
        marker={"color": [_POS_COLOUR if v >= 0 else _NEG_COLOUR for v in vals]},
        hovertemplate="%{y}: %{x:.4g}<extra></extra>",
    ))
    _layout(fig, title or "Tabular attribution", "attribution", "feature",
            height=max(250, 22 * len(labels) + 120))
    fig.update_yaxes(autorange="reversed", type="category")
    return fig


def audio_attribution(
    waveform: Any,
    scores: Any,
    *,
    title: str | None = None,
    sample_rate: float | None = None,
) -> go.Figure:
    """The waveform, with its attribution as a colour band underneath on the same time axis.

    Parameters
    ----------
    waveform : array or Tensor of shape (L,), (1, L) or (C, L)
        Several channels are averaged for display.
    scores : array or Tensor of shape (L,), (1, L) or (C, L)
        One score per time step; channels are summed.
    title : str, optional
    sample_rate : float, optional
        Samples per second; the time axis is in seconds when given, else in samples.

    Returns
    -------
    plotly.graph_objects.Figure
        Two traces: ``Scatter`` (the waveform, ``y`` of shape (L,)) in the top panel and
        ``Heatmap`` (``z`` of shape (1, L)) in the bottom panel, symmetric diverging scale.
    """
    wav = _np(waveform, name="waveform")
    att = _np(scores, name="scores")
    if wav.ndim == 2:
        wav = wav.mean(0)
    if att.ndim == 2:
        att = att.sum(0)
    if wav.ndim != 1 or att.ndim != 1:
        raise ValueError(f"waveform and scores must be (L,) or (C, L); got {wav.shape} and {att.shape}.")
    if len(wav) != len(att):
        raise ValueError(f"waveform has {len(wav)} samples but scores has {len(att)}.")
    t = np.arange(len(wav), dtype=float)
    if sample_rate:
        t = t / float(sample_rate)
    a = _sym(att)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.75, 0.25], vertical_spacing=0.04)
    fig.add_trace(go.Scatter(x=t, y=wav, mode="lines", name="waveform", line={"color": "#444", "width": 1}),
                  row=1, col=1)
    fig.add_trace(go.Heatmap(
        x=t, z=att[None, :], zmin=-a, zmax=a, zmid=0, colorscale=DIVERGING, name="attribution",
        colorbar={"title": {"text": "attribution"}}, hovertemplate="t=%{x}<br>attribution=%{z:.4g}<extra></extra>",
    ), row=2, col=1)
    _layout(fig, title or "Audio attribution", showlegend=False)
    fig.update_xaxes(title_text="time (s)" if sample_rate else "time (samples)", row=2, col=1)
    fig.update_yaxes(title_text="amplitude", row=1, col=1)
    fig.update_yaxes(title_text="attribution", showticklabels=False, row=2, col=1)
    return fig


# --------------------------------------------------------------------------- modality shares


def _shares_frame(data: Any) -> pd.DataFrame:
    """Tidy frame with columns modality, share (+ others) from the inputs modality_shares takes."""
    if hasattr(data, "to_frame") and not isinstance(data, (pd.DataFrame, pd.Series)):
        data = data.to_frame()  # AttributionResult
    if isinstance(data, pd.Series):
        return pd.DataFrame({"modality": [str(i) for i in data.index], "share": data.to_numpy(dtype=float)})
    if isinstance(data, Mapping):
        rows = []
        for m, v in data.items():
            for x in np.atleast_1d(_np(v, name=f"share of {m}")).ravel():
                rows.append({"modality": str(m), "share": float(x)})
        return pd.DataFrame(rows, columns=["modality", "share"])
    if isinstance(data, pd.DataFrame):
        missing = {"modality", "share"} - set(data.columns)
        if missing:
            raise ValueError(f"the table needs columns 'modality' and 'share'; missing {sorted(missing)}.")
        return data
    raise TypeError(
        "modality_shares takes a DataFrame (modality, share[, group]), a Series indexed by "
        f"modality, a dict modality -> share(s) or an AttributionResult; got {type(data).__name__}."
    )


def modality_shares(
    frame_or_dict: Any,
    *,
    by: str | None = None,
    title: str | None = None,
    barmode: str = "group",
) -> go.Figure:
    """Mean share of each modality, optionally per group (method, class, correctness ...).

    Parameters
    ----------
    frame_or_dict : DataFrame, Series, dict or AttributionResult
        A tidy table with columns ``modality`` and ``share`` (plus the ``by`` column), e.g.
        ``AttributionResult.to_frame()`` or ``analysis.method_shares``; a Series of shares
        indexed by modality; a dict modality -> share or -> sequence of per-sample shares;
        or an ``AttributionResult`` (its ``to_frame()`` is used).
    by : str, optional
        Grouping column (``"method"``, ``"target"``, ``"correct"`` ...). Groups go on the x
        axis, one bar trace per modality.
    title : str, optional
    barmode : {"group", "stack"}, default="group"

    Returns
    -------
    plotly.graph_objects.Figure
        Without ``by``: one ``Bar`` with a bar per modality. With ``by``: one ``Bar`` per
        modality, ``x`` the groups (in order of appearance), ``y`` the mean shares. Error
        bars show the standard deviation where a mean is over several rows.
    """
    df = _shares_frame(frame_or_dict)
    if by is not None and by not in df.columns:
        raise ValueError(f"by={by!r} is not a column of the table; columns: {list(df.columns)}.")
    df = df.assign(modality=df["modality"].astype(str))
    colours = _colours(df["modality"].tolist())
    fig = go.Figure()
    if by is None:
        g = df.groupby("modality", sort=False)["share"].agg(["mean", "std", "count"]).reset_index()
        err = g["std"].fillna(0).to_numpy() if (g["count"] > 1).any() else None
        fig.add_trace(go.Bar(
            x=[_esc(m) for m in g["modality"]], y=g["mean"].to_numpy(), name="share",
            marker={"color": [colours[m] for m in g["modality"]]},
            error_y=None if err is None else {"type": "data", "array": err, "visible": True},
            hovertemplate="%{x}: %{y:.3f}<extra></extra>",
        ))
        xtitle = "modality"
    else:
        df = df.assign(_group=df[by].astype(str))
        groups = list(dict.fromkeys(df["_group"]))
        g = df.groupby(["_group", "modality"], sort=False)["share"].agg(["mean", "std", "count"])
        for m in colours:
            sub = g.xs(m, level="modality").reindex(groups) if m in g.index.get_level_values("modality") else None
            if sub is None:
                continue
            err = sub["std"].fillna(0).to_numpy() if (sub["count"] > 1).any() else None
            fig.add_trace(go.Bar(
                x=[_esc(x) for x in groups], y=sub["mean"].to_numpy(), name=_esc(m), marker={"color": colours[m]},
                error_y=None if err is None else {"type": "data", "array": err, "visible": True},
                hovertemplate=f"{_esc(m)}: " + "%{y:.3f}<extra>%{x}</extra>",
            ))
        xtitle = by
    _layout(fig, title or ("Modality shares" if by is None else f"Modality shares by {by}"),
            xtitle, "mean share", barmode=barmode, legend_title_text="modality")
    fig.update_yaxes(rangemode="tozero")
    fig.update_xaxes(type="category")
    return fig


def fusion_level_shares(
    table: pd.DataFrame,
    *,
    title: str | None = None,
    barmode: str = "stack",
) -> go.Figure:
    """Share of each modality, and of each cross-modal term, at each fusion level; one panel
    per fusion model if present.

    Parameters
    ----------
    table : DataFrame
        Columns ``level``, ``modality``, ``share`` and optionally ``fusion`` and
        ``cross_modal``: the output of :func:`mmexplain.attribution.fusion_level_shares` /
        ``compare_fusions``, or the raw per-sample table of ``fusion_level_attribution``
        (pooled here by that same function). Cross-modal terms (``cross_modal`` true) are
        hatched.
    title : str, optional
    barmode : {"stack", "group"}, default="stack"
        Stacked, each level's bar adds up to 1.

    Returns
    -------
    plotly.graph_objects.Figure
        One ``Bar`` per (fusion, modality), ``x`` the levels in order of appearance, ``y``
        the mean share; with a ``fusion`` column the panels are side by side (one legend
        entry per modality), otherwise there is one panel and one trace per modality.
    """
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"table must be a DataFrame; got {type(table).__name__}.")
    missing = {"level", "modality", "share"} - set(table.columns)
    if missing:
        raise ValueError(f"the table needs columns level, modality, share; missing {sorted(missing)}.")
    if {"sample", "total"} <= set(table.columns):  # per-sample rows: pool them as the tables do
        from ..attribution.fusion_levels import fusion_level_shares as pooled

        table = pooled(table)
    df = table.assign(level=table["level"].astype(str), modality=table["modality"].astype(str))
    has_fusion = "fusion" in df.columns
    if has_fusion:
        df = df.assign(fusion=df["fusion"].astype(str))
        fusions = list(dict.fromkeys(df["fusion"]))
    else:
        fusions = [None]
    colours = _colours(df["modality"].tolist())
    cross = set(df.loc[df["cross_modal"].astype(bool), "modality"]) if "cross_modal" in df.columns else set()
    cross = set(df.loc[df["cross_modal"].astype(bool), "modality"]) if "cross_modal" in df.columns else set()
    fig = make_subplots(
        rows=1, cols=len(fusions), shared_yaxes=True, horizontal_spacing=0.04,
        subplot_titles=[_esc(f) for f in fusions] if has_fusion else None,
    )
    for col, fu in enumerate(fusions, start=1):
        sub = df if fu is None else df[df["fusion"] == fu]
        means = sub.groupby(["level", "modality"], sort=False)["share"].mean()
        levels = list(dict.fromkeys(sub["level"]))
        for m in colours:
            if m not in means.index.get_level_values("modality"):
                continue
            y = means.xs(m, level="modality").reindex(levels)
            fig.add_trace(go.Bar(
                x=[_esc(lv) for lv in levels], y=y.to_numpy(), name=_esc(m), legendgroup=_esc(m),
                marker={"color": colours[m], "pattern": {"shape": "/" if m in cross else ""}}, showlegend=col == 1,
                hovertemplate=f"{_esc(m)}: " + "%{y:.3f}<extra>%{x}</extra>",
            ), row=1, col=col)
    _layout(fig, title or "Modality and cross-modal shares per fusion level", barmode=barmode,
            legend_title_text="modality or term")
    fig.update_xaxes(title_text="fusion level", type="category")
    fig.update_yaxes(title_text="mean share", rangemode="tozero", row=1, col=1)
    return fig


#: Suffixes of :func:`mmexplain.analysis.compare_strategies` columns that are differences
#: from a reference (chance, the random order, the additive projection): 0 is drawn dashed.
_DIFFERENCE_SUFFIXES = ("_vs_chance", "_vs_random", "_gap")
_METRIC_COLOUR = "#555555"


def strategy_comparison(
    table: pd.DataFrame,
    *,
    title: str | None = None,
    cols: int = 3,
) -> go.Figure:
    """Fusion strategies side by side: one panel per metric, one bar per strategy.

    Parameters
    ----------
    table : DataFrame
        :func:`mmexplain.analysis.compare_strategies`' table: a ``fusion`` column, one
        ``share_<modality>`` column per modality, and any other numeric metric columns
        (``flags`` and other text columns are not drawn).
    title : str, optional
    cols : int, default=3
        Panels per row.

    Returns
    -------
    plotly.graph_objects.Figure
        The first panel stacks the modality shares: one ``Bar`` per modality (named after
        it, in the legend), ``x`` the fusions, ``y`` its ``share_<modality>`` column, so
        each bar reaches 1. Then one panel per other numeric column in table order: one
        ``Bar`` named after the column, ``x`` the fusions, ``y`` the column. Panels of
        differences (columns ending in ``_vs_chance``, ``_vs_random``, ``_gap``) have a
        dashed line at 0, the chance / random / additive level; panel titles say which
        direction is better where ``table.attrs["better"]`` says so. Every label escaped.
    """
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"table must be a DataFrame (compare_strategies); got {type(table).__name__}.")
    if "fusion" not in table.columns:
        raise ValueError(f"the table needs a 'fusion' column; columns: {list(table.columns)}.")
    if isinstance(cols, bool) or not isinstance(cols, int) or cols < 1:
        raise ValueError(f"cols must be an integer >= 1; got {cols!r}.")
    shares = [c for c in table.columns if str(c).startswith("share_")]
    metrics = [c for c in table.columns if c != "fusion" and c not in shares
               and pd.api.types.is_numeric_dtype(table[c]) and not pd.api.types.is_bool_dtype(table[c])]
    better = table.attrs.get("better", {})
    panels = (["modality share (stacked)"] if shares else []) + [
        f"{c} ({better[c]} is better)" if better.get(c) else str(c) for c in metrics]
    cols = min(cols, max(len(panels), 1))
    n_rows = max(1, -(-len(panels) // cols))
    fig = make_subplots(rows=n_rows, cols=cols, subplot_titles=[_esc(p) for p in panels],
                        horizontal_spacing=0.08, vertical_spacing=0.35 / n_rows)
    x = [_esc(f) for f in table["fusion"]]
    colours = _colours([str(c)[len("share_"):] for c in shares])
    pos = 0
    if shares:
        for c in shares:
            m = str(c)[len("share_"):]
            fig.add_trace(go.Bar(
                x=x, y=table[c].to_numpy(dtype=float), name=_esc(m), legendgroup=_esc(m),
                marker={"color": colours[m]}, hovertemplate=f"{_esc(m)}: " + "%{y:.3f}<extra>%{x}</extra>",
            ), row=1, col=1)
        fig.update_yaxes(range=[0, 1.02], row=1, col=1)
        pos = 1
    for c in metrics:
        r, k = divmod(pos, cols)
        fig.add_trace(go.Bar(
            x=x, y=table[c].to_numpy(dtype=float), name=_esc(c), showlegend=False,
            marker={"color": _METRIC_COLOUR}, hovertemplate=f"{_esc(c)}: " + "%{y:.4g}<extra>%{x}</extra>",
        ), row=r + 1, col=k + 1)
        if str(c).endswith(_DIFFERENCE_SUFFIXES):
            fig.add_hline(y=0, line_dash="dash", line_color="#888888", line_width=1, row=r + 1, col=k + 1)
        pos += 1
    _layout(fig, title or "Fusion strategies compared", barmode="stack", legend_title_text="modality",
            height=320 * n_rows + 80)
    fig.update_xaxes(type="category")
    return fig


# --------------------------------------------------------------------------- quality metrics


def _mean_curve(values: Any, name: str) -> np.ndarray:
    a = _np(values, name=name)
    return a.mean(0) if a.ndim == 2 else a.reshape(-1)


def perturbation_curves(curves: Mapping[str, Any], *, title: str | None = None) -> go.Figure:
    """Mean deletion/insertion curve vs the random-order reference, per entry.

    Parameters
    ----------
    curves : dict of str -> PerturbationCurve-like
        Objects (or dicts) with ``fractions`` (S,), ``curve`` (N, S) or (S,) and
        ``random_curve`` (N, S) or (S,), e.g. from
        :func:`mmexplain.metrics.perturbation_curves`. Curves are averaged over samples.
    title : str, optional
        Default "Deletion curves" / "Insertion curves" when all entries share a ``mode``.

    Returns
    -------
    plotly.graph_objects.Figure
        Two ``Scatter`` traces per entry, same colour: the attribution-order mean (solid,
        legend shows its AUC) and the random-order mean (dashed).
    """
    if not isinstance(curves, Mapping):
        raise TypeError(f"curves must be a dict name -> curve; got {type(curves).__name__}.")
    fig = go.Figure()
    modes = set()
    for i, (name, c) in enumerate(curves.items()):
        x = _vector(_field(c, "fractions"), "fractions")
        y, yr = _mean_curve(_field(c, "curve"), "curve"), _mean_curve(_field(c, "random_curve"), "random_curve")
        if not (len(x) == len(y) == len(yr)):
            raise ValueError(f"{name!r}: fractions, curve and random_curve lengths differ ({len(x)}, {len(y)}, {len(yr)}).")
        mode = getattr(c, "mode", None) if not isinstance(c, Mapping) else c.get("mode")
        modes.add(mode)
        colour = _PALETTE[i % len(_PALETTE)]
        auc = float(_trapezoid(y, x)) if len(x) > 1 else float("nan")
        auc_r = float(_trapezoid(yr, x)) if len(x) > 1 else float("nan")
        label = _esc(name)
        fig.add_trace(go.Scatter(
            x=x, y=y, mode="lines+markers", name=f"{label} (AUC {auc:.3f})", legendgroup=label,
            line={"color": colour}, hovertemplate=f"{label}<br>" + "fraction=%{x:.2f}<br>score=%{y:.4f}<extra></extra>",
        ))
        fig.add_trace(go.Scatter(
            x=x, y=yr, mode="lines", name=f"{label} random (AUC {auc_r:.3f})", legendgroup=label,
            line={"color": colour, "dash": "dash"},
            hovertemplate=f"{label} random<br>" + "fraction=%{x:.2f}<br>score=%{y:.4f}<extra></extra>",
        ))
    default = "Perturbation curves"
    if len(modes) == 1 and next(iter(modes)) in ("deletion", "insertion"):
        mode = next(iter(modes))
        default = f"{mode.capitalize()} curves"
        xtitle = f"fraction of units {'removed' if mode == 'deletion' else 'restored'}"
    else:
        xtitle = "fraction of units perturbed"
    return _layout(fig, title or default, xtitle, "target score (mean over samples)")


def robustness_curve(
    strengths: Any,
    scores: Any,
    *,
    name: str = "corruption",
    metric: str = "score",
    title: str | None = None,
) -> go.Figure:
    """The model's metric as one modality is corrupted at increasing strengths.

    Parameters
    ----------
    strengths : array or Tensor of shape (S,)
    scores : array or Tensor of shape (S,)
        E.g. ``NoiseRobustness.strengths`` / ``.scores``.
    name : str, default="corruption"
        What is corrupted (modality and corruption), used in the title and legend.
    metric : str, default="score"
        Y-axis label (``accuracy``, ``mse`` ...).
    title : str, optional

    Returns
    -------
    plotly.graph_objects.Figure
        One ``Scatter`` (lines and markers) with ``x`` = strengths, ``y`` = scores.
    """
    s, y = _vector(strengths, "strengths"), _vector(scores, "scores")
    if len(s) != len(y):
        raise ValueError(f"{len(s)} strengths but {len(y)} scores.")
    fig = go.Figure(go.Scatter(
        x=s, y=y, mode="lines+markers", name=_esc(name),
        hovertemplate="strength=%{x:.3g}<br>" + _esc(metric) + "=%{y:.4f}<extra></extra>",
    ))
    return _layout(fig, title or f"Robustness: {name}", "corruption strength", metric, showlegend=True)


# --------------------------------------------------------------------------- model quality


def confusion_matrix(
    matrix: Any,
    label_names: Sequence[str] | None = None,
    *,
    normalize: bool = False,
    title: str | None = None,
) -> go.Figure:
    """Confusion matrix heat map (rows = true class, columns = predicted class).

    Parameters
    ----------
    matrix : array, Tensor or nested list of shape (C, C)
        Counts, e.g. ``run.metrics["test"]["confusion_matrix"]``.
    label_names : sequence of str, length C, optional
        Default ``"0" .. "C-1"``.
    normalize : bool, default=False
        Show row fractions (recall per true class) instead of counts.
    title : str, optional

    Returns
    -------
    plotly.graph_objects.Figure
        One ``Heatmap`` whose ``z`` is the (C, C) matrix (row-normalised if asked), with the
        values written in the cells.
    """
    m = _np(matrix, name="matrix")
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"matrix must be square (C, C); got shape {m.shape}.")
    c = m.shape[0]
    names = [str(i) for i in range(c)] if label_names is None else [str(n) for n in label_names]
    if len(names) != c:
        raise ValueError(f"{len(names)} label names for a {c}x{c} matrix.")
    labels = [_esc(n) for n in names]
    if len(set(labels)) != c:
        labels = [f"{lab} [{i}]" for i, lab in enumerate(labels)]
    if normalize:
        z = m / np.clip(m.sum(1, keepdims=True), 1e-12, None)
        fmt = "%{z:.2f}"
    else:
        z = m
        fmt = "%{z:.0f}" if np.allclose(m, np.round(m)) else "%{z:.3g}"
    fig = go.Figure(go.Heatmap(
        z=z, x=labels, y=labels, colorscale="Blues", texttemplate=fmt, name="confusion",
        colorbar={"title": {"text": "fraction" if normalize else "count"}},
        hovertemplate="true %{y}<br>predicted %{x}<br>" + fmt + "<extra></extra>",
    ))
    _layout(fig, title or "Confusion matrix", "predicted class", "true class")
    fig.update_xaxes(type="category", side="bottom")
    fig.update_yaxes(type="category", autorange="reversed", scaleanchor="x")
    return fig


def learning_curves(history: Sequence[Mapping[str, Any]], *, title: str | None = None) -> go.Figure:
    """Training and validation loss per epoch, with validation accuracy on a second axis.

    Parameters
    ----------
    history : list of dict
        One dict per epoch with ``epoch`` and any of ``train_loss``, ``val_loss``,
        ``val_accuracy`` (as in ``run.metrics["history"]``). Keys containing ``loss`` go on
        the left axis, keys containing ``accuracy`` on the right one; others are ignored.
        Missing ``epoch`` values count from 1.
    title : str, optional

    Returns
    -------
    plotly.graph_objects.Figure
        One ``Scatter`` per loss / accuracy key (in first-seen order); an empty history
        gives a figure without traces and a note.
    """
    rows = list(history or [])
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    keys = list(dict.fromkeys(k for r in rows for k in r if k != "epoch"))
    loss_keys = [k for k in keys if "loss" in k]
    acc_keys = [k for k in keys if "accuracy" in k]
    epochs = [r.get("epoch", i + 1) for i, r in enumerate(rows)]
    for k in loss_keys + acc_keys:
        y = [float(r[k]) if r.get(k) is not None else None for r in rows]
        secondary = k in acc_keys
        fig.add_trace(go.Scatter(
            x=epochs, y=y, mode="lines+markers", name=_esc(k.replace("_", " ")),
            line={"dash": "dot"} if secondary else None,
        ), secondary_y=secondary)
    _layout(fig, title or "Learning curves", legend={"orientation": "h", "y": -0.2})
    fig.update_xaxes(title_text="epoch")
    fig.update_yaxes(title_text="loss", secondary_y=False)
    if acc_keys:
        fig.update_yaxes(title_text="accuracy", secondary_y=True, range=[0, 1.02], tickmode="auto",
                         showgrid=False)
    if not rows:
        fig.add_annotation(text="no training history", showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5)
    return fig


def interaction_matrix(
    matrix: Any,
    modalities: Sequence[Any],
    *,
    title: str | None = None,
) -> go.Figure:
    """Heat map of pairwise modality (Shapley) interactions, symmetric diverging scale.

    Parameters
    ----------
    matrix : array or Tensor of shape (M, M)
        E.g. ``ModalityShapley.interactions.mean(0)``.
    modalities : sequence of str or ModalitySpec, length M
    title : str, optional

    Returns
    -------
    plotly.graph_objects.Figure
        One ``Heatmap`` with ``z`` = the (M, M) matrix and its values written in the cells.
    """
    m = _np(matrix, name="matrix")
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"matrix must be square (M, M); got shape {m.shape}.")
    names = [_esc(getattr(x, "name", x)) for x in modalities]
    if len(names) != m.shape[0]:
        raise ValueError(f"{len(names)} modality names for a {m.shape[0]}x{m.shape[0]} matrix.")
    a = _sym(m)
    fig = go.Figure(go.Heatmap(
        z=m, x=names, y=names, zmin=-a, zmax=a, zmid=0, colorscale=DIVERGING, texttemplate="%{z:.3g}",
        name="interaction", colorbar={"title": {"text": "interaction"}},
        hovertemplate="%{y} × %{x}<br>%{z:.4g}<extra></extra>",
    ))
    _layout(fig, title or "Modality interactions", "modality", "modality")
    fig.update_xaxes(type="category")
    fig.update_yaxes(type="category", autorange="reversed", scaleanchor="x")
    return fig
