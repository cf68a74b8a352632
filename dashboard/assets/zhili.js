/* Client-side callbacks of the Zhili dashboard: controls and map clicks write the URL
   (the URL is the page's state; the pages router draws the page from it). */
window.dash_clientside = Object.assign({}, window.dash_clientside, {
  zhili: {
    controlsToUrl: function (metric, period, start, end, compare, method, keep, state) {
      var nu = window.dash_clientside.no_update;
      if (!state) { return nu; }
      start = start ? String(start).slice(0, 10) : state.shown_start;
      end = end ? String(end).slice(0, 10) : state.shown_end;
      var datesMoved = start !== state.shown_start || end !== state.shown_end;
      var custom = false;
      if (period !== state.period && period !== "custom") {
        custom = false;                      /* a preset was picked: it wins */
      } else if (datesMoved || period === "custom") {
        custom = true;
      }
      var q = new URLSearchParams();
      q.set("metric", metric || state.metric);
      if (custom) {
        q.set("start", start);
        q.set("end", end);
      } else {
        q.set("period", period === "custom" ? state.period : period);
      }
      q.set("compare", compare || state.compare);
      q.set("method", method || state.method);
      /* "keep breaks": ticked, the shown map's bounds go into the URL for its level;
         unticked, they leave it; otherwise kept breaks ride along unchanged */
      var keepNow = !!(keep && keep.length);
      var keptHere = !!(state.breaks && state.breaks.length &&
                        state.breaks_level === state.child_level);
      var breaks = state.breaks, level = state.breaks_level;
      if (keepNow && !keptHere && state.bounds && state.bounds.length >= 2) {
        breaks = state.bounds; level = state.child_level;
      } else if (!keepNow && keptHere) {
        breaks = null; level = null;
      }
      if (breaks && breaks.length && level) {
        q.set("breaks", breaks.join(","));
        q.set("breaks_level", level);
      }
      if (state.lang && state.lang !== "zh") { q.set("lang", state.lang); }
      var unchanged = (metric || state.metric) === state.metric &&
        (compare || state.compare) === state.compare &&
        (method || state.method) === state.method &&
        breaks === state.breaks &&
        (custom ? (state.period === "custom" && !datesMoved) : period === state.period);
      if (unchanged) { return nu; }  /* a component settling on mount, not a person */
      return state.prefix + encodeURIComponent(state.code) + "?" + q.toString();
    },
    clickToUrl: function (click, state) {
      var nu = window.dash_clientside.no_update;
      if (!click || !click.points || !click.points.length || !state) { return nu; }
      var point = click.points[0];
      var code = point.location || (point.customdata && point.customdata[0]);  /* a shape, or an alert marker */
      if (!code) { return nu; }
      return state.prefix + encodeURIComponent(code) + window.location.search;
    },
    wallClock: function (tick, asofMs) {
      /* each second: fit the 1920x1080 stage to the screen, and turn "data as of" red
         when the last good refresh is older than the limit (three refresh intervals) */
      var stage = document.getElementById("wall-stage");
      if (stage) {
        var s = Math.min(window.innerWidth / 1920, window.innerHeight / 1080);
        var want = "scale(" + s + ")";
        if (stage.style.transform !== want) { stage.style.transform = want; }
      }
      var el = document.getElementById("wall-asof");
      var limit = el ? Number(el.getAttribute("data-limit-ms")) : 180000;
      if (!asofMs) { return "asof stale"; }
      return (Date.now() - asofMs) > limit ? "asof stale" : "asof";
    }
  }
});
